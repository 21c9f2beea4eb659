"""`flask runs backfill-artifacts`: legacy runs (only a text final_output) get the current shape, read the
same as before and like every other run; in batches, and a second pass changes nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from artifacts_app import queries, recording
from artifacts_app.extensions import db
from artifacts_app.filters import ListFilters
from artifacts_app.models import PipelineRun, RunStep, User
from artifacts_app.types import JSONDocument
from tests.factories import make_run

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)
EXPORTED_LEGACY_LINE = {  # an export's legacy run: `steps: null`
    "pipeline": "Old pipeline", "status": "completed", "input": "imported before artifact storage",
    "steps": None, "finalOutput": "imported **wombat** text", "createdAt": "2024-02-01T09:00:00+00:00",
    "completedAt": "2024-02-01T09:00:05+00:00",
}


def legacy_run(user: User, text: str, minutes: int) -> str:
    run = recording.record_legacy_run(
        user, pipeline="Old pipeline", input=f"legacy {minutes}", final_output=text,
        created_at=T0 + timedelta(minutes=minutes), completed_at=T0 + timedelta(minutes=minutes, seconds=5),
    )
    db.session.commit()
    return run.id


@pytest.fixture
def runs(app: Flask, user: User, runner: FlaskCliRunner, tmp_path: Path) -> dict[str, str]:
    """Legacy runs stored by the old writer and by an import, a legacy run that failed, and a current one."""
    ids = {
        "first": legacy_run(user, "first **aardvark** output", 1),
        "second": legacy_run(user, "second output", 2),
        "third": legacy_run(user, "third output", 3),
        "failed": legacy_run(user, "", 4),
        "current": make_run(user, final_output="current output").id,
    }
    # A legacy run that failed, as revision 0001 kept it: no output at all.
    db.session.execute(sa.update(PipelineRun).where(PipelineRun.id == ids["failed"])
                       .values(status="failed", final_output=None, error="boom"))
    db.session.commit()
    source = tmp_path / "legacy.jsonl"
    source.write_text(json.dumps(EXPORTED_LEGACY_LINE) + "\n", encoding="utf-8")
    # Written before exports ended with a summary line, so imported as such (--allow-incomplete).
    imported = runner.invoke(args=["runs", "import", str(source), "--user", user.email, "--allow-incomplete"])
    assert imported.exit_code == 0, imported.output
    ids["imported"] = db.session.execute(
        sa.select(PipelineRun.id).where(PipelineRun.input == EXPORTED_LEGACY_LINE["input"])).scalar_one()
    return ids


def backfill(runner: FlaskCliRunner, *args: str) -> Result:
    result = runner.invoke(args=["runs", "backfill-artifacts", *args])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    return result


def stored(ids: dict[str, str]) -> dict[str, tuple[Any, ...]]:
    """Each run's documents as stored, read back with the app's types."""
    db.session.expire_all()
    rows = db.session.execute(
        sa.text("SELECT id, artifact_data, final_output, status FROM pipeline_runs")
        .columns(artifact_data=JSONDocument)
    ).all()
    by_id = {row[0]: tuple(row[1:]) for row in rows}
    return {name: by_id[run_id] for name, run_id in ids.items()}


def final_texts(user: User, ids: dict[str, str]) -> dict[str, str | None]:
    texts = {name: queries.output_text(user, run_id, None) for name, run_id in ids.items()}
    return {name: text.text if text else None for name, text in texts.items()}


def test_legacy_runs_get_an_artifact_document_and_read_as_before(
    runner: FlaskCliRunner, user: User, runs: dict[str, str]
) -> None:
    before, texts = stored(runs), final_texts(user, runs)
    assert before["first"][0] is None and before["imported"][0] is None
    # The old writer left SQL NULL; an import of a legacy line writes JSON null.
    assert db.session.execute(sa.text("SELECT artifact_data IS NULL FROM pipeline_runs WHERE id = :id"),
                              {"id": runs["imported"]}).scalar_one() in (False, 0)

    result = backfill(runner)

    after = stored(runs)
    assert result.output.endswith("Backfilled 5 legacy runs; 0 legacy runs left.\n")
    for name in ("first", "second", "third", "imported"):
        assert after[name] == ({"finalOutput": before[name][1]}, before[name][1], "completed")  # final_output kept
    assert after["failed"] == ({"finalOutput": ""}, None, "failed")  # as fail_run writes a failed run
    assert after["current"] == before["current"]
    assert final_texts(user, runs) == texts
    assert db.session.execute(sa.select(sa.func.count()).select_from(RunStep).where(
        RunStep.run_id.in_([runs[name] for name in ("first", "second", "third", "failed", "imported")]))
    ).scalar_one() == 0


def test_a_backfilled_run_reads_like_any_run_without_steps(
    runner: FlaskCliRunner, signed_in: FlaskClient, user: User, runs: dict[str, str]
) -> None:
    backfill(runner)

    *exported, summary = [json.loads(line) for line in runner.invoke(args=["runs", "export", "--user", user.email])
                          .stdout.splitlines()]
    assert summary["export"] == {"runs": len(exported), "complete": True}
    by_input = {line["input"]: line for line in exported}
    assert (by_input["legacy 1"]["steps"], by_input["legacy 1"]["finalOutput"]) == ([], "first **aardvark** output")
    assert by_input[EXPORTED_LEGACY_LINE["input"]]["steps"] == []
    page = signed_in.get(f"/artifacts/{runs['first']}").get_data(as_text=True)
    assert "<strong>aardvark</strong>" in page
    # Search still finds it by its final output (the search text did not change).
    found = queries.list_runs(user, ListFilters(query="aardvark"), None, 10)
    assert [row.id for row in found] == [runs["first"]]
    found = queries.list_runs(user, ListFilters(query="wombat"), None, 10)
    assert [row.id for row in found] == [runs["imported"]]


def test_a_second_backfill_changes_nothing(runner: FlaskCliRunner, runs: dict[str, str]) -> None:
    backfill(runner)
    once = stored(runs)

    again = backfill(runner)

    assert again.output == "Backfilled 0 legacy runs; 0 legacy runs left.\n"
    assert stored(runs) == once


def test_a_dry_run_counts_and_changes_nothing(runner: FlaskCliRunner, runs: dict[str, str]) -> None:
    before = stored(runs)

    result = backfill(runner, "--dry-run")

    assert result.output == "Dry run: 5 legacy runs would get an artifact document; nothing was written.\n"
    assert stored(runs) == before


def test_it_works_through_batches(runner: FlaskCliRunner, runs: dict[str, str]) -> None:
    result = backfill(runner, "--batch-size", "2")

    assert "Backfilled 5 legacy runs; 0 legacy runs left." in result.output
    assert all(document is not None for document, *_ in stored(runs).values())


def test_its_help_answers_the_open_migration_question(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["runs", "backfill-artifacts", "--help"])

    assert result.exit_code == 0
    assert "open question" in result.output and "migrate them, with this command" in result.output
