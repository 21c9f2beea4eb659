"""Migration 0007 on runs already stored: each step of an artifact_data document becomes a row,
the document keeps only its final output, and the API answers with the same run as before; the
downgrade puts the array back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import Flask

from artifacts_app import queries
from artifacts_app.extensions import db
from artifacts_app.models import RunStep, User
from artifacts_app.serialization import run_record
from artifacts_app.types import JSONDocument
from tests.test_migrations import (  # noqa: F401 (fixtures)
    COMPLETED_RUN_ID,
    FAILED_RUN_ID,
    RUNNING_RUN_ID,
    USER_ID,
    empty_database_url,
    insert_legacy_rows,
    migrate_down_to,
    migrate_to,
    migration_app,
    typed_runs,
)

STEPS = [
    {"agentId": "r", "agentName": "Researcher", "output": "# Notes ☕\n\n- one", "stepOrder": 0},
    {"agentId": "w", "agentName": "Writer", "output": "", "stepOrder": 1, "model": "gpt-4o-mini",
     "inputTokens": 1000, "outputTokens": 100, "cost": "0.000210000000"},
    # A provider's cost as it was sent: fewer places than the column keeps.
    {"agentId": "c", "agentName": "Critic", "output": "LGTM", "stepOrder": 2, "model": "claude-sonnet-4-5",
     "inputTokens": 5, "outputTokens": 7, "cost": "123456.5"},
]
DOCUMENTS: dict[str, Any] = {
    COMPLETED_RUN_ID: {"steps": STEPS, "finalOutput": "Final ✓"},
    FAILED_RUN_ID: {"steps": STEPS[:1], "finalOutput": ""},
    RUNNING_RUN_ID: {"steps": [], "finalOutput": ""},
}


def store_documents() -> None:
    with db.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE pipeline_runs SET artifact_data = :doc WHERE id = :id").bindparams(
                sa.bindparam("doc", type_=JSONDocument)
            ),
            [{"id": run_id, "doc": document} for run_id, document in DOCUMENTS.items()],
        )


def api_steps(run_id: str) -> list[dict[str, Any]] | None:
    user = db.session.get(User, USER_ID)
    assert user is not None
    found = queries.run_with_artifact(user, run_id)
    assert found is not None
    record = run_record(*found).model_dump(mode="json", exclude_unset=True)
    return record["steps"]


def test_each_step_becomes_a_row_and_reads_back_as_it_was(migration_app: Flask) -> None:
    migrate_to("0001")
    insert_legacy_rows()
    migrate_to("0006")
    store_documents()

    migrate_to("head")

    rows = db.session.execute(sa.select(RunStep).order_by(RunStep.run_id, RunStep.step_order)).scalars().all()
    assert [(row.run_id, row.step_order) for row in rows] == [
        (COMPLETED_RUN_ID, 0), (COMPLETED_RUN_ID, 1), (COMPLETED_RUN_ID, 2), (FAILED_RUN_ID, 0)]
    assert rows[2].cost == Decimal("123456.5") and rows[1].cost == Decimal("0.00021")
    assert {row.status for row in rows} == {"completed"}
    assert {(row.started_at, row.completed_at) for row in rows} == {(None, None)}  # unknown stays unknown
    documents = typed_runs(("id", "artifact_data"))
    assert documents[COMPLETED_RUN_ID]["artifact_data"] == {"finalOutput": "Final ✓"}  # one copy: the rows
    # The API's run: the same steps, with their status; a cost written with the column's places.
    expected = [{"status": "completed", **step} for step in STEPS]
    expected[2]["cost"] = "123456.500000000000"
    assert api_steps(COMPLETED_RUN_ID) == expected
    assert api_steps(RUNNING_RUN_ID) == []
    user = db.session.get(User, USER_ID)
    assert user is not None
    assert [header.agent_name for header in queries.step_headers(user, COMPLETED_RUN_ID)] == [
        "Researcher", "Writer", "Critic"]
    assert queries.output_text(user, COMPLETED_RUN_ID, 1) == queries.OutputText(STEPS[0]["output"], len(STEPS[0]["output"].encode()))


def test_the_downgrade_puts_the_steps_back_into_the_document(migration_app: Flask) -> None:
    migrate_to("0001")
    insert_legacy_rows()
    migrate_to("0006")
    store_documents()
    migrate_to("head")

    migrate_down_to("0006")

    documents = typed_runs(("id", "artifact_data"))
    completed = documents[COMPLETED_RUN_ID]["artifact_data"]
    assert completed["finalOutput"] == "Final ✓"
    assert [{**step, "cost": Decimal(step["cost"])} if "cost" in step else step for step in completed["steps"]] == [
        {**step, "cost": Decimal(step["cost"])} if "cost" in step else step for step in STEPS]
    assert documents[FAILED_RUN_ID]["artifact_data"] == DOCUMENTS[FAILED_RUN_ID]
    assert documents[RUNNING_RUN_ID]["artifact_data"] == DOCUMENTS[RUNNING_RUN_ID]
    assert "pipeline_run_steps" not in sa.inspect(db.engine).get_table_names()
