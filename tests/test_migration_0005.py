"""Migration 0005 on runs already stored: each gets a name, its listed time and sort keys, and is
counted into the facets and rollups exactly as the writer would have counted it."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from flask import Flask

from artifacts_app import queries, rollups
from artifacts_app.extensions import db
from artifacts_app.filters import ListFilters
from artifacts_app.models import PipelineRun, RunFacet, RunRollup, User
from tests.test_migrations import (  # noqa: F401 (fixtures)
    COMPLETED_RUN_ID,
    FAILED_RUN_ID,
    LEGACY_RUNS,
    RUNNING_RUN_ID,
    T1,
    USER_ID,
    empty_database_url,
    insert_legacy_rows,
    migrate_to,
    migration_app,
)


def summary_rows() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    facets = db.session.execute(sa.select(RunFacet.kind, RunFacet.value, RunFacet.runs)).all()
    buckets = db.session.execute(sa.select(
        RunRollup.model, RunRollup.status, RunRollup.day, RunRollup.runs, RunRollup.cost, RunRollup.unpriced_runs,
    )).all()
    return sorted(tuple(row) for row in facets), sorted(tuple(row) for row in buckets)


def test_existing_runs_get_names_sort_keys_and_summaries(migration_app: Flask) -> None:
    migrate_to("0004")
    insert_legacy_rows()
    with db.engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, run_id, created_at) "
            "VALUES (:u, 'nightly-1', 'hash', :r, '2026-11-01 09:30:00')"), {"u": USER_ID, "r": COMPLETED_RUN_ID})

    migrate_to("head")

    # SQLite copies pipeline_runs to alter it; rows that refer to a run must survive the copy.
    assert db.session.execute(sa.text("SELECT key, run_id FROM idempotency_keys")).all() == [
        ("nightly-1", COMPLETED_RUN_ID)]

    runs = {run.id: run for run in db.session.execute(sa.select(PipelineRun)).scalars()}
    completed, failed, running = runs[COMPLETED_RUN_ID], runs[FAILED_RUN_ID], runs[RUNNING_RUN_ID]
    assert completed.name == "Summarise the attached notes ✍️"
    assert (completed.listed_at, failed.listed_at) == (T1, LEGACY_RUNS[1]["completed_at"])
    assert running.listed_at == LEGACY_RUNS[2]["created_at"]  # open: listed by its start
    assert completed.sort_duration_ms == round((T1 - LEGACY_RUNS[0]["created_at"]).total_seconds() * 1000)
    assert running.sort_duration_ms == -1 and completed.total_tokens == 0
    assert completed.sort_cost < 0 and (completed.tags, completed.run_metadata) == (None, None)

    user = db.session.get(User, USER_ID)
    assert user is not None
    assert queries.pipeline_names(user) == ["Légacy pipeline"]
    totals = queries.run_totals(user, ListFilters())
    assert (totals.runs, totals.unpriced_runs, totals.open_runs, totals.cost) == (3, 2, 1, Decimal(0))
    # Newest listed time first: started 09:33, failed 09:32, completed 09:31 (UTC).
    assert [row.id for row in queries.list_runs(user, ListFilters(), None, 10)] == [
        RUNNING_RUN_ID, FAILED_RUN_ID, COMPLETED_RUN_ID]
    migrated = summary_rows()
    rollups.rebuild()
    assert summary_rows() == migrated  # what the writer would have counted
