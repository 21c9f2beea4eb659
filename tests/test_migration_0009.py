"""Migration 0009 on steps already stored: a cost that could not have been priced here is the
provider's, any other stays of unknown origin; the reprice tables come and go with it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask

from artifacts_app.extensions import db
from tests.test_migrations import (  # noqa: F401 (fixtures)
    COMPLETED_RUN_ID,
    FAILED_RUN_ID,
    check_constraint_names,
    column_names,
    empty_database_url,
    insert_legacy_rows,
    migrate_down_to,
    migrate_to,
    migration_app,
    table_names,
)

STEP_COLUMNS = "run_id, step_order, agent_id, agent_name, output, status, model, input_tokens, output_tokens, cost"


def insert_steps(rows: list[dict[str, Any]]) -> None:
    """Steps as 0007 stored them; cost is the column's raw value (on SQLite a count of 10^-12 dollars)."""
    with db.engine.begin() as connection:
        connection.execute(sa.text(
            f"INSERT INTO pipeline_run_steps ({STEP_COLUMNS}) VALUES (:run_id, :step_order, 'a', 'A', '', 'completed',"
            " :model, :input_tokens, :output_tokens, :cost)"
        ), rows)


def step_sources() -> dict[tuple[str, int], str | None]:
    with db.engine.connect() as connection:
        return {(run_id, order): source for run_id, order, source in connection.execute(sa.text(
            "SELECT run_id, step_order, cost_source FROM pipeline_run_steps"
        ))}


def test_a_cost_that_could_not_have_been_computed_is_the_providers(migration_app: Flask, engine_name: str) -> None:
    migrate_to("0001")
    insert_legacy_rows()
    migrate_to("0007")
    cost = 123 if engine_name == "sqlite" else 0.000000000123
    with db.engine.begin() as connection:
        connection.execute(sa.text("UPDATE pipeline_runs SET model = 'gpt-4o' WHERE id = :id"), {"id": COMPLETED_RUN_ID})
    insert_steps([
        # The run has a model: priced here or reported, no telling.
        {"run_id": COMPLETED_RUN_ID, "step_order": 0, "model": None, "input_tokens": 10, "output_tokens": 2, "cost": cost},
        # No token counts: never priced here.
        {"run_id": COMPLETED_RUN_ID, "step_order": 1, "model": "gpt-4o", "input_tokens": None, "output_tokens": 2,
         "cost": cost},
        {"run_id": COMPLETED_RUN_ID, "step_order": 2, "model": "gpt-4o", "input_tokens": 1, "output_tokens": 2,
         "cost": None},
        # Neither the step nor its run has a model: never priced here.
        {"run_id": FAILED_RUN_ID, "step_order": 0, "model": None, "input_tokens": 10, "output_tokens": 2, "cost": cost},
        {"run_id": FAILED_RUN_ID, "step_order": 1, "model": "o3", "input_tokens": 10, "output_tokens": 2, "cost": cost},
    ])

    migrate_to("head")

    assert step_sources() == {
        (COMPLETED_RUN_ID, 0): None, (COMPLETED_RUN_ID, 1): "provider", (COMPLETED_RUN_ID, 2): None,
        (FAILED_RUN_ID, 0): "provider", (FAILED_RUN_ID, 1): None,
    }
    assert {"cost_reprices", "cost_reprice_runs"} <= table_names()
    assert "ck_pipeline_run_steps_cost_source" in check_constraint_names("pipeline_run_steps")
    with db.engine.connect() as connection, connection.begin():
        try:
            connection.execute(sa.text(
                "UPDATE pipeline_run_steps SET cost_source = 'unpriced' WHERE run_id = :id"), {"id": FAILED_RUN_ID})
        except sa.exc.IntegrityError:
            pass
        else:
            raise AssertionError("a step's cost_source must be computed or provider")


def test_the_downgrade_drops_the_column_and_the_tables_and_keeps_the_steps(migration_app: Flask) -> None:
    migrate_to("0001")
    insert_legacy_rows()
    migrate_to("0007")
    insert_steps([{"run_id": COMPLETED_RUN_ID, "step_order": 0, "model": None, "input_tokens": None,
                   "output_tokens": None, "cost": None}])
    migrate_to("head")

    migrate_down_to("0007")

    assert "cost_source" not in column_names("pipeline_run_steps")
    assert not {"cost_reprices", "cost_reprice_runs"} & table_names()
    assert check_constraint_names("pipeline_run_steps") == {"ck_pipeline_run_steps_status"}
    with db.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM pipeline_run_steps")).scalar_one() == 1
