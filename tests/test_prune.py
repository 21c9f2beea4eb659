"""`flask runs prune`: finished runs older than an age go, with everything of them, in batches;
running runs and newer ones stay; --user narrows it; --dry-run deletes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Flask
from flask.testing import FlaskCliRunner

from artifacts_app import queries, rollups
from artifacts_app.extensions import db
from artifacts_app.filters import ListFilters
from artifacts_app.models import User
from tests.factories import make_user, record_many, start_run
from tests.test_deleting import rows_mentioning, summaries

NOW = datetime.now(timezone.utc)


def listed(user: User) -> set[str]:
    return {row.id for row in queries.list_runs(user, ListFilters(), None, 100)}


def test_old_finished_runs_go_in_batches_and_the_rest_stay(app: Flask, runner: FlaskCliRunner, user: User) -> None:
    old = record_many(user, 7, start=NOW - timedelta(days=200), tags=["old"])
    recent = record_many(user, 2, start=NOW - timedelta(days=10))
    open_run = start_run(user, pipeline="Live", input="still going", created_at=NOW - timedelta(days=300)).id
    other = make_user()
    others_old = record_many(other, 2, start=NOW - timedelta(days=200))
    db.session.commit()

    dry = runner.invoke(args=["runs", "prune", "--older-than", "90d", "--user", user.email, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"Dry run: 7 runs of {user.email}'s completed before" in dry.output
    assert listed(user) == {*old, *recent, open_run}

    done = runner.invoke(args=["runs", "prune", "--older-than", "90d", "--user", user.email, "--batch-size", "3"])

    assert done.exit_code == 0, done.output
    assert f"Deleted 7 runs of {user.email}'s completed before" in done.output
    db.session.rollback()
    assert listed(user) == {*recent, open_run}
    assert listed(other) == set(others_old)
    assert all(rows_mentioning(run_id) == {} for run_id in old)
    before = summaries(user)
    rollups.rebuild(user.id)
    assert summaries(user) == before
    db.session.rollback()
    # Everyone's, by the week.
    everyone = runner.invoke(args=["runs", "prune", "--older-than", "2w"])
    assert "Deleted 2 runs of everyone's" in everyone.output
    db.session.rollback()
    assert listed(other) == set() and listed(user) == {*recent, open_run}


def test_a_bad_age_or_user_is_a_clear_error_and_deletes_nothing(
    app: Flask, runner: FlaskCliRunner, user: User
) -> None:
    ids = record_many(user, 2, start=NOW - timedelta(days=200))
    for age in ("90", "d", "0d", "-5d", "1.5d", "90 days", "3m"):
        result = runner.invoke(args=["runs", "prune", "--older-than", age])
        assert result.exit_code == 2 and "is not an age" in result.output, age
    unknown = runner.invoke(args=["runs", "prune", "--older-than", "1d", "--user", "nobody@example.com"])
    assert unknown.exit_code == 1 and "No user with email nobody@example.com" in unknown.output
    assert runner.invoke(args=["runs", "prune"]).exit_code == 2  # --older-than is required
    db.session.rollback()
    assert listed(user) == set(ids)
