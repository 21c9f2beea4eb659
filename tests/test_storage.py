"""What the database gives back is what was written, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.exc import IntegrityError

from artifacts_app import accounts
from artifacts_app.extensions import db
from artifacts_app.models import Pipeline, PipelineRun, User
from tests.factories import make_run, make_user


def reread(run_id: str) -> PipelineRun:
    """The run as a fresh read from the database, not the session's copy."""
    db.session.expire_all()
    run = db.session.get(PipelineRun, run_id)
    assert run is not None
    return run


@pytest.mark.parametrize(
    "cost",
    [
        Decimal("0.000000500000"),  # ten tokens of a cheap model: six places would read $0
        Decimal("0.000000000001"),  # the smallest amount the column holds
        Decimal("1234.567890123456"),
        Decimal("999999.999999999999"),  # the largest
        Decimal("0.1") + Decimal("0.2"),  # exactly 0.3, unlike floats
    ],
)
def test_cost_reads_back_as_the_exact_decimal_written(app: Flask, cost: Decimal) -> None:
    run = make_run(make_user(), usage={"inputTokens": 1, "outputTokens": 1, "cost": str(cost)})
    stored = reread(run.id)
    assert isinstance(stored.cost, Decimal)
    assert stored.cost == cost
    assert stored.cost.as_tuple().exponent == -12
    assert stored.cost_source == "provider"


def test_sum_of_costs_is_exact_in_sql(app: Flask) -> None:
    user = make_user()
    for _ in range(10):
        make_run(user, usage={"inputTokens": 1, "outputTokens": 1, "cost": "0.100000000001"})
    total = db.session.execute(sa.select(sa.func.sum(PipelineRun.cost))).scalar_one()
    assert total == Decimal("1.000000000010")


def test_money_refuses_floats_and_excess_precision(app: Flask) -> None:
    run = make_run(make_user())
    run.cost = 0.5  # type: ignore[assignment]
    with pytest.raises(sa.exc.StatementError, match="must be a Decimal"):
        db.session.flush()
    db.session.rollback()
    run = reread(run.id)
    run.cost = Decimal("0.0000000000001")
    with pytest.raises(sa.exc.StatementError, match="more than 12 decimal places"):
        db.session.flush()
    db.session.rollback()


def test_timestamps_read_back_aware_in_utc(app: Flask) -> None:
    paris = timezone(timedelta(hours=1))
    completed = datetime(2025, 3, 9, 13, 30, 15, 123456, tzinfo=paris)
    run = make_run(make_user(), completed_at=completed)
    stored = reread(run.id)
    assert stored.completed_at == completed
    assert stored.completed_at.tzinfo is not None
    assert stored.completed_at.utcoffset() == timedelta(0)
    assert stored.completed_at.microsecond == 123456


def test_artifact_data_reads_back_as_the_document(app: Flask) -> None:
    run = make_run(make_user())
    stored = reread(run.id)
    assert isinstance(stored.artifact_data, dict)
    assert stored.artifact_data == {"finalOutput": "Final **draft**"}
    assert [step.agent_name for step in stored.steps] == ["Researcher", "Analyst", "Writer"]
    assert stored.variables == {"audience": "engineers"}


@pytest.mark.postgres_only
def test_artifact_data_is_a_jsonb_object_not_a_string(app: Flask) -> None:
    """Seed pitfall 1: a double-encoded document would be a JSON string inside JSONB."""
    run = make_run(make_user())
    kinds = db.session.execute(
        sa.text(
            "SELECT jsonb_typeof(artifact_data), jsonb_typeof(artifact_data->'finalOutput'), "
            "jsonb_typeof(variables), variables->>'audience' "
            "FROM pipeline_runs WHERE id = :id"
        ),
        {"id": run.id},
    ).one()
    assert tuple(kinds) == ("object", "string", "object", "engineers")


def test_emails_are_case_insensitive(app: Flask) -> None:
    make_user("Ada@Example.com")
    assert db.session.execute(sa.select(User.email)).scalar_one() == "ada@example.com"
    with pytest.raises(accounts.AccountError, match="already exists"):
        accounts.create_user("ADA@example.COM", "another password")
    db.session.rollback()
    # Even a writer that skipped create_user's check meets the unique constraint.
    db.session.add(User(email="ADA@EXAMPLE.COM", password_hash="x"))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_deleting_a_user_deletes_their_pipelines_and_runs(app: Flask) -> None:
    keep, gone = make_user(), make_user()
    make_run(keep)
    make_run(gone)
    db.session.execute(sa.delete(User).where(User.id == gone.id))
    db.session.commit()
    assert db.session.execute(sa.select(sa.func.count()).select_from(PipelineRun)).scalar_one() == 1
    assert db.session.execute(sa.select(sa.func.count()).select_from(Pipeline)).scalar_one() == 1


def test_status_outside_the_four_is_refused_by_the_database(app: Flask) -> None:
    run = make_run(make_user())
    with pytest.raises(IntegrityError):
        db.session.execute(sa.text("UPDATE pipeline_runs SET status = 'done' WHERE id = :id"), {"id": run.id})
    db.session.rollback()
