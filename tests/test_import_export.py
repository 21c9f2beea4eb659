"""`flask runs export` and `flask runs import`: an exact round trip into a fresh database, bad lines reported."""

from __future__ import annotations

import json
import os
import random
import shutil
import string
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from artifacts_app import accounts, queries, recording, rollups
from artifacts_app.artifacts import exports
from artifacts_app.extensions import db
from artifacts_app.filters import ListFilters
from artifacts_app.models import Pipeline, PipelineRun, User
from artifacts_app.schemas import ExportSummary, RunRecord
from artifacts_app.serialization import json_line
from tests import databases
from tests.conftest import dispose, make_app, migrate
from tests.factories import PASSWORD, make_run, make_user, start_run, steps_with_usage, three_steps
from tests.test_deleting import summaries

EMAIL = "exporter@example.com"
T0 = datetime(2024, 11, 1, 9, 0, tzinfo=timezone.utc)
FAILED_STEPS = [
    {**three_steps()[0], "startedAt": "2024-11-01T09:00:00.250000+00:00", "completedAt": "2024-11-01T09:00:04+00:00"},
    {**three_steps()[1], "status": "failed", "startedAt": "2024-11-01T09:00:04+00:00"},
]


def seed_mixed_runs(user: User) -> list[str]:
    """One of each kind of finished run the export must carry; their ids."""
    runs = [
        # completed, each step with its own model and usage: the run's totals are their sums
        make_run(user, steps=steps_with_usage(), usage=None, completed_at=T0,
                 variables={"audience": "engineers", "depth": 2, "draft": True, "ratio": 0.5, "note": None},
                 name="Battery brief", tags=["nightly", "eval"], metadata={"env": "prod", "git.sha": "3f2a9c1"}),
        # failed part-way: its error and the steps that ran, the second the one that failed, with their times
        make_run(user, status="failed", error="Timeout: step 3 exceeded 120 s", steps=FAILED_STEPS,
                 final_output="", usage={"inputTokens": 500, "outputTokens": 50}, completed_at=T0 + timedelta(hours=1)),
        # an unknown model: unpriced, never zero
        make_run(user, model="llama-3.1-70b-local", completed_at=T0 + timedelta(hours=2)),
        # a cost the provider reported
        make_run(user, usage={"inputTokens": 1234, "outputTokens": 567, "cost": "0.0123"},
                 completed_at=T0 + timedelta(hours=3)),
        # the same completion time as the one before: the id breaks the tie
        make_run(user, pipeline="Übersetzung ✓", input="Grüße — 日本語", final_output="```python\nprint('ok')\n```",
                 steps=[{"agentId": "t", "agentName": "Übersetzer", "output": "« ok » \\ \"quoted\"\n\ttab \x01\x1f\x7f </script>",
                         "stepOrder": 0}],
                 completed_at=T0 + timedelta(hours=3)),
    ]
    legacy = recording.record_legacy_run(
        user, pipeline="Old pipeline", input="before artifact storage", final_output="plain **text** output",
        created_at=T0 - timedelta(days=300, seconds=3), completed_at=T0 - timedelta(days=300),
    )
    db.session.commit()
    return [run.id for run in runs] + [legacy.id]


def invoke(runner: FlaskCliRunner, *args: str) -> Result:
    return runner.invoke(args=list(args))


@pytest.fixture
def second_app(engine_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """An app on a second, fresh, migrated and empty database of the same engine."""
    base: str | None = None
    if engine_name == "sqlite":
        path = tmp_path / "second.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        base = databases.postgres_base_url()
        assert base is not None
        url = databases.create_postgres_database(base)
        migrate(url, tmp_path)
    other = make_app(url, tmp_path / "second")
    try:
        yield other
    finally:
        with other.app_context():
            dispose(other)
        if base is not None:
            databases.drop_postgres_database(base, url)


def in_app(app: Flask, runner_args: list[str]) -> Result:
    """Run a `flask` command against this app (its own app context, not the fixture's)."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=runner_args)


def test_export_then_import_into_a_fresh_database_is_an_exact_round_trip(
    runner: FlaskCliRunner, second_app: Flask, tmp_path: Path
) -> None:
    user = make_user(EMAIL)
    ids = seed_mixed_runs(user)
    still_running = start_run(user, pipeline="Research brief", input="not finished")
    someone_else = make_run(make_user("other@example.com"), completed_at=T0)
    db.session.commit()
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"

    exported = invoke(runner, "runs", "export", "--user", EMAIL, "--output", str(first))

    assert exported.exit_code == 0, exported.output
    *documents, summary = [json.loads(line) for line in first.read_text(encoding="utf-8").splitlines()]
    assert summary == {"export": {"runs": 6, "complete": True}}
    assert sorted(document["id"] for document in documents) == sorted(ids)  # finished runs only, Ada's only
    assert still_running.id not in first.read_text() and someone_else.id not in first.read_text()
    by_id = {document["id"]: document for document in documents}
    assert by_id[ids[0]]["usage"] == {"inputTokens": 3300, "outputTokens": 330}
    assert (by_id[ids[0]]["name"], by_id[ids[0]]["tags"], by_id[ids[0]]["metadata"]) == (
        "Battery brief", ["nightly", "eval"], {"env": "prod", "git.sha": "3f2a9c1"})
    assert (by_id[ids[1]]["name"], by_id[ids[1]]["tags"], by_id[ids[1]]["metadata"]) == (
        "Summarise solid-state batteries", [], {})  # no name given: the input's first line
    assert by_id[ids[1]]["status"] == "failed"
    assert by_id[ids[1]]["steps"] == [{"status": "completed", **FAILED_STEPS[0]}, FAILED_STEPS[1]]
    assert (by_id[ids[2]]["cost"], by_id[ids[2]]["costSource"]) == (None, "unpriced")
    assert (by_id[ids[3]]["cost"], by_id[ids[3]]["costSource"]) == ("0.012300000000", "provider")
    assert by_id[ids[5]]["steps"] is None and by_id[ids[5]]["finalOutput"] == "plain **text** output"

    with second_app.app_context():
        accounts.create_user(EMAIL, PASSWORD)
        db.session.commit()
    imported = in_app(second_app, ["runs", "import", str(first), "--user", EMAIL])
    assert imported.exit_code == 0, imported.output
    assert "Imported 6 runs" in imported.output
    again = in_app(second_app, ["runs", "export", "--user", EMAIL, "--output", str(second)])

    assert again.exit_code == 0, again.output
    assert second.read_bytes() == first.read_bytes()
    with second_app.app_context():
        copies = {run.id: run for run in db.session.execute(sa.select(PipelineRun)).scalars()}
    assert set(copies) == set(ids)
    for run_id in ids:  # kept exactly, not recomputed from today's prices
        original, copy = db.session.get(PipelineRun, run_id), copies[run_id]
        assert (copy.cost, copy.cost_source, copy.input_tokens, copy.created_at, copy.completed_at) == (
            original.cost, original.cost_source, original.input_tokens, original.created_at, original.completed_at)
        assert (copy.name, copy.tags, copy.run_metadata, copy.listed_at) == (
            original.name, original.tags, original.run_metadata, original.listed_at)


def test_importing_a_file_twice_rejects_every_line_of_the_second_pass(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    user = make_user(EMAIL)
    seed_mixed_runs(user)
    export = tmp_path / "runs.jsonl"
    assert invoke(runner, "runs", "export", "--user", EMAIL, "--output", str(export)).exit_code == 0
    make_user("copy@example.com")
    db.session.commit()

    result = invoke(runner, "runs", "import", str(export), "--user", "copy@example.com")

    assert result.exit_code == 1
    assert "Imported 0 runs" in result.output
    assert result.stderr.count("a run with this id already exists") == 6
    db.session.rollback()
    owner = db.session.execute(sa.select(User).where(User.email == "copy@example.com")).scalar_one()
    assert db.session.execute(
        sa.select(sa.func.count()).select_from(PipelineRun).where(PipelineRun.user_id == owner.id)
    ).scalar_one() == 0


def good_line(pipeline: str, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": str(uuid.uuid4()), "pipeline": pipeline, "status": "completed", "input": "x",
        "variables": None, "model": "gpt-4o", "steps": three_steps(), "finalOutput": "done",
        "usage": {"inputTokens": 10, "outputTokens": 5}, "cost": "0.000075000000", "costSource": "computed",
        "error": None, "createdAt": "2025-01-01T10:00:00+00:00", "completedAt": "2025-01-01T10:01:00+00:00",
    }
    document.update(fields)
    return document


def ending_with_summary(lines: list[str]) -> str:
    """A file of these lines as an export writes them: the summary line counts every line but blank ones."""
    runs = sum(1 for line in lines if line.strip())
    return "\n".join(lines) + "\n" + json.dumps({"export": {"runs": runs, "complete": True}}) + "\n"


def test_a_file_with_bad_lines_imports_the_good_ones_and_reports_each_bad_line(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    importer = make_user(EMAIL)
    theirs = make_run(make_user("other@example.com"), completed_at=T0)
    first, second, third = good_line("Good 1"), good_line("Good 2", status="failed", error="boom"), good_line("Good 3")
    lines = [
        json.dumps(first),  # 1
        '{"id": "x", "pipeline": "Broken",',  # 2: not JSON
        json.dumps(good_line("Bad status", status="running")),  # 3
        json.dumps(good_line("Bad tokens", usage={"inputTokens": -5, "outputTokens": 1})),  # 4
        json.dumps(second),  # 5
        json.dumps(good_line("Duplicate", id=first["id"])),  # 6: the id of line 1
        "",  # 7: blank lines are skipped, not rejected
        json.dumps(good_line("Someone else's id", id=theirs.id)),  # 8
        json.dumps(third),  # 9
        json.dumps(good_line("Bad step order", steps=[{**three_steps()[0], "stepOrder": 4}])),  # 10
    ]
    source = tmp_path / "mixed.jsonl"
    source.write_text(ending_with_summary(lines), encoding="utf-8")

    result = invoke(runner, "runs", "import", str(source), "--user", EMAIL)

    assert result.exit_code == 1, result.output
    assert "Imported 3 runs" in result.stdout
    reported = {line.split(":", 1)[0].strip(): line for line in result.stderr.splitlines() if "line " in line}
    assert set(reported) == {"line 2", "line 3", "line 4", "line 6", "line 8", "line 10"}, result.stderr
    assert "not valid JSON" in reported["line 2"]
    assert "status" in reported["line 3"]
    assert "usage.inputTokens" in reported["line 4"] and "negative" in reported["line 4"]
    assert "already exists" in reported["line 6"]
    assert "already exists" in reported["line 8"]
    assert "steps" in reported["line 10"]
    db.session.rollback()
    stored = db.session.execute(
        sa.select(PipelineRun.id, Pipeline.name).join(Pipeline).where(PipelineRun.user_id == importer.id)
    ).all()
    assert sorted(stored) == sorted([(first["id"], "Good 1"), (second["id"], "Good 2"), (third["id"], "Good 3")])
    # A rejected line leaves nothing behind, not even its pipeline.
    assert set(db.session.execute(sa.select(Pipeline.name).where(Pipeline.user_id == importer.id)).scalars()) == {
        "Good 1", "Good 2", "Good 3"}
    assert db.session.get(PipelineRun, theirs.id).user_id != importer.id
    # The list's totals count the three runs kept and none of the lines rolled back: a recount agrees.
    kept = summaries(importer)
    assert sum(row[4] for row in kept[0]) == 3
    rollups.rebuild(importer.id)
    db.session.commit()
    assert summaries(importer) == kept


@pytest.mark.parametrize("command", ["import", "export"])
def test_an_unknown_user_is_a_clear_error_and_changes_nothing(
    runner: FlaskCliRunner, tmp_path: Path, command: str
) -> None:
    make_run(make_user(EMAIL), completed_at=T0)
    source = tmp_path / "runs.jsonl"
    source.write_text(json.dumps(good_line("Orphan")) + "\n", encoding="utf-8")
    target = tmp_path / "out.jsonl"
    args = (["runs", "import", str(source)] if command == "import" else ["runs", "export", "--output", str(target)])

    result = invoke(runner, *args, "--user", "nobody@example.com")

    assert result.exit_code != 0
    assert "No user with email nobody@example.com" in result.output
    db.session.rollback()
    assert db.session.execute(sa.select(sa.func.count()).select_from(PipelineRun)).scalar_one() == 1
    assert not target.exists()  # an export for nobody writes no file


def test_export_to_stdout_is_the_same_as_to_a_file(runner: FlaskCliRunner, tmp_path: Path) -> None:
    seed_mixed_runs(make_user(EMAIL))
    target = tmp_path / "runs.jsonl"

    to_file = invoke(runner, "runs", "export", "--user", EMAIL, "--output", str(target))
    to_stdout = invoke(runner, "runs", "export", "--user", EMAIL)

    assert to_file.exit_code == 0 and to_stdout.exit_code == 0
    assert to_stdout.stdout == target.read_text(encoding="utf-8")
    assert len(to_stdout.stdout.splitlines()) == 6 + 1  # and the summary line


def test_a_line_the_database_cannot_store_is_reported_and_the_good_lines_are_kept(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    importer = make_user(EMAIL)
    good = good_line("Good")
    overflowing = good_line("Overflow", createdAt="9999-12-31T23:59:59-23:59", completedAt="9999-12-31T23:59:59-23:59")
    source = tmp_path / "runs.jsonl"
    source.write_text(ending_with_summary([json.dumps(good), json.dumps(overflowing)]), encoding="utf-8")

    result = invoke(runner, "runs", "import", str(source), "--user", EMAIL)

    assert result.exit_code == 1
    assert "line 2:" in result.stderr
    db.session.rollback()
    assert list(db.session.execute(
        sa.select(PipelineRun.id).where(PipelineRun.user_id == importer.id)
    ).scalars()) == [good["id"]]


def test_a_line_with_a_cost_too_large_for_the_column_is_reported_and_the_good_lines_are_kept(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    importer = make_user(EMAIL)
    good = good_line("Good")
    source = tmp_path / "runs.jsonl"
    source.write_text(ending_with_summary([json.dumps(good), json.dumps(good_line("Huge", cost="10000000000000000"))]),
                      encoding="utf-8")

    result = invoke(runner, "runs", "import", str(source), "--user", EMAIL)

    assert result.exit_code == 1
    assert "line 2: cost:" in result.stderr
    db.session.rollback()
    assert list(db.session.execute(
        sa.select(PipelineRun.id).where(PipelineRun.user_id == importer.id)
    ).scalars()) == [good["id"]]


def test_an_imported_steps_cost_is_of_unknown_origin(runner: FlaskCliRunner, tmp_path: Path) -> None:
    make_run(make_user(EMAIL), steps=steps_with_usage(), usage=None)
    exported = json.loads(invoke(runner, "runs", "export", "--user", EMAIL).stdout.splitlines()[0])
    source = tmp_path / "runs.jsonl"
    source.write_text(ending_with_summary([json.dumps({**exported, "id": str(uuid.uuid4())})]), encoding="utf-8")
    make_user("copy@example.com")

    assert invoke(runner, "runs", "import", str(source), "--user", "copy@example.com").exit_code == 0

    db.session.expire_all()
    copy = db.session.execute(
        sa.select(PipelineRun).join(User).where(User.email == "copy@example.com")).scalar_one()
    # The export does not say which step costs were computed: a reprice must keep all of them.
    assert [(step.cost is not None, step.cost_source) for step in copy.steps] == [(True, None)] * 3


def exported_text(runner: FlaskCliRunner, email: str = EMAIL) -> str:
    result = invoke(runner, "runs", "export", "--user", email)
    assert result.exit_code == 0, result.output
    return result.stdout


def stored_runs(email: str) -> int:
    db.session.rollback()
    return db.session.execute(
        sa.select(sa.func.count()).select_from(PipelineRun).join(User).where(User.email == email)).scalar_one()


def test_every_export_line_is_a_run_record_byte_for_byte_and_the_last_one_the_summary(
    runner: FlaskCliRunner, signed_in: FlaskClient, user: User
) -> None:
    seed_mixed_runs(user)
    text = exported_text(runner, user.email)
    *lines, last = text.splitlines(keepends=True)

    assert json.loads(last) == {"export": {"runs": 6, "complete": True}}
    assert ExportSummary.model_validate_json(last).export.runs == len(lines) == 6
    for line in lines:  # what the export writes straight is what RunRecord would have written
        record = RunRecord.model_validate(json.loads(line)).model_dump(mode="json", exclude_unset=True)
        assert json_line(record) == line
        # and it is the run's own JSON download
        download = signed_in.get(f"/artifacts/{record['id']}/download?part=all&format=json")
        assert download.status_code == 200
        assert list(json.loads(download.get_data()).items()) == list(json.loads(line).items())
    # The web export of the whole list is the same file, byte for byte.
    web = signed_in.get("/artifacts/export?format=jsonl")
    assert web.status_code == 200 and web.get_data(as_text=True) == text


@pytest.mark.postgres_only
def test_postgresql_and_sqlite_write_the_same_export(
    runner: FlaskCliRunner, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    seed_mixed_runs(make_user(EMAIL))
    from_postgres = tmp_path / "postgres.jsonl"
    assert invoke(runner, "runs", "export", "--user", EMAIL, "--output", str(from_postgres)).exit_code == 0
    path = tmp_path / "sqlite.db"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    sqlite_app = make_app(f"sqlite:///{path}", tmp_path / "sqlite")
    try:
        with sqlite_app.app_context():
            accounts.create_user(EMAIL, PASSWORD)
            db.session.commit()
        assert in_app(sqlite_app, ["runs", "import", str(from_postgres), "--user", EMAIL]).exit_code == 0
        from_sqlite = tmp_path / "sqlite.jsonl"
        assert in_app(sqlite_app, ["runs", "export", "--user", EMAIL, "--output", str(from_sqlite)]).exit_code == 0
    finally:
        with sqlite_app.app_context():
            dispose(sqlite_app)

    # Variables and metadata included: jsonb reorders their keys, SQLite keeps them as written.
    assert '"variables":{"audience":"engineers","depth":2,"draft":true,"note":null,"ratio":0.5}' in (
        from_postgres.read_text(encoding="utf-8"))
    assert from_sqlite.read_bytes() == from_postgres.read_bytes()


def import_into(other: Flask, source: Path, *options: str) -> Result:
    """`flask runs import` of the file into the other database, for EMAIL (created there first)."""
    with other.app_context():
        if queries.user_by_email(EMAIL) is None:
            accounts.create_user(EMAIL, PASSWORD)
            db.session.commit()
    return in_app(other, ["runs", "import", str(source), "--user", EMAIL, *options])


def runs_and_pipelines_in(other: Flask) -> tuple[int, int]:
    with other.app_context():
        return (db.session.execute(sa.select(sa.func.count()).select_from(PipelineRun)).scalar_one(),
                db.session.execute(sa.select(sa.func.count()).select_from(Pipeline)).scalar_one())


@pytest.mark.parametrize("cut", ["mid-line", "at a line's end"])
def test_a_cut_off_export_imports_nothing_and_says_so_then_imports_whole(
    runner: FlaskCliRunner, second_app: Flask, tmp_path: Path, cut: str
) -> None:
    seed_mixed_runs(make_user(EMAIL))
    whole = exported_text(runner).encode()
    lines = whole.splitlines(keepends=True)
    # What a download cut by a worker's timeout leaves: the start of the file, maybe half a line.
    kept = b"".join(lines[:3]) + (lines[3][:100] if cut == "mid-line" else b"")
    source = tmp_path / "cut.jsonl"
    source.write_bytes(kept)

    result = import_into(second_app, source)

    assert result.exit_code == 1
    assert f"{source} is incomplete: it does not end with the export's summary line, so it was cut off" in result.stderr
    assert "Nothing was imported (the 3 good runs read were discarded)" in result.stderr
    assert runs_and_pipelines_in(second_app) == (0, 0)  # all or nothing: the three whole lines were not kept

    source.write_bytes(whole)  # exported again, whole: it imports, nothing in the way
    again = import_into(second_app, source)
    assert again.exit_code == 0, again.output
    assert "Imported 6 runs" in again.stdout and runs_and_pipelines_in(second_app)[0] == 6


def test_a_summary_line_whose_count_disagrees_imports_nothing(
    runner: FlaskCliRunner, second_app: Flask, tmp_path: Path
) -> None:
    seed_mixed_runs(make_user(EMAIL))
    *lines, _ = exported_text(runner).splitlines(keepends=True)
    source = tmp_path / "dropped.jsonl"
    # A line lost from the middle (an edit, a bad copy): the summary still says 6.
    source.write_text("".join(lines[:2] + lines[3:]) + '{"export":{"runs":6,"complete":true}}\n', encoding="utf-8")

    result = import_into(second_app, source)

    assert result.exit_code == 1
    assert "is incomplete: its summary line says 6 runs, but 5 lines of runs come before it" in result.stderr
    assert runs_and_pipelines_in(second_app) == (0, 0)


def test_lines_after_the_summary_line_import_nothing(runner: FlaskCliRunner, second_app: Flask, tmp_path: Path) -> None:
    seed_mixed_runs(make_user(EMAIL))
    text = exported_text(runner)
    source = tmp_path / "joined.jsonl"
    # Two exports joined: the first one's summary line is in the middle.
    source.write_text(text + json.dumps(good_line("Later")) + "\n", encoding="utf-8")

    result = import_into(second_app, source)

    assert result.exit_code == 1
    assert "is incomplete: line 8 comes after the summary line (line 7), so it is not one export as written" in (
        result.stderr)
    assert runs_and_pipelines_in(second_app) == (0, 0)


def test_a_summary_line_that_is_not_valid_imports_nothing(runner: FlaskCliRunner, tmp_path: Path) -> None:
    make_user(EMAIL)
    source = tmp_path / "false.jsonl"
    source.write_text(json.dumps(good_line("One")) + "\n" + '{"export":{"runs":1,"complete":false}}\n',
                      encoding="utf-8")

    result = invoke(runner, "runs", "import", str(source), "--user", EMAIL)

    assert result.exit_code == 1
    assert "its summary line (line 2) is not valid: export.complete:" in result.stderr
    assert stored_runs(EMAIL) == 0


def test_allow_incomplete_imports_the_runs_of_a_file_without_a_summary_line_and_warns(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    make_user(EMAIL)
    source = tmp_path / "by-hand.jsonl"
    source.write_text(json.dumps(good_line("One")) + "\n" + json.dumps(good_line("Two")) + "\n", encoding="utf-8")

    result = invoke(runner, "runs", "import", str(source), "--user", EMAIL, "--allow-incomplete")

    assert result.exit_code == 0, result.output
    assert "Imported 2 runs" in result.stdout
    assert "Warning:" in result.stderr and "does not end with the export's summary line" in result.stderr
    assert stored_runs(EMAIL) == 2


def test_import_reads_standard_input(runner: FlaskCliRunner, second_app: Flask) -> None:
    seed_mixed_runs(make_user(EMAIL))
    text = exported_text(runner)
    import_into(second_app, Path(os.devnull), "--allow-incomplete")  # creates the user; an empty file

    with second_app.app_context():
        cut = second_app.test_cli_runner().invoke(args=["runs", "import", "-", "--user", EMAIL],
                                                  input=text[: len(text) // 2])
        whole = second_app.test_cli_runner().invoke(args=["runs", "import", "-", "--user", EMAIL], input=text)

    assert cut.exit_code == 1 and "standard input is incomplete" in cut.stderr
    assert whole.exit_code == 0, whole.output
    assert runs_and_pipelines_in(second_app)[0] == 6


def test_an_export_costs_a_query_or_two_a_batch_however_many_steps_its_runs_have(
    signed_in: FlaskClient, user: User, engine_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "JSONL_BATCH", 5)
    for index in range(12):  # batches of 5, 5 and 2
        make_run(user, steps=steps_with_usage(), usage=None, completed_at=T0 + timedelta(minutes=index))
    db.session.commit()
    statements: list[str] = []

    def remember(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", remember)
    try:
        response = signed_in.get("/artifacts/export?format=jsonl")
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", remember)

    assert response.status_code == 200
    *lines, summary = response.get_data(as_text=True).splitlines()
    assert len(lines) == 12 and json.loads(summary)["export"]["runs"] == 12
    assert all(len(json.loads(line)["steps"]) == 3 for line in lines)
    reading_runs = [statement for statement in statements if "pipeline_run" in statement]
    # PostgreSQL writes the steps inside the runs' query; elsewhere each batch's steps are one more.
    assert len(reading_runs) == (3 if engine_name == "postgresql" else 6), reading_runs


def test_an_export_of_large_runs_holds_a_few_at_a_time_and_still_exports_every_one(
    signed_in: FlaskClient, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch holds at most JSONL_BYTES (as run_bytes counts them), or one run larger than that, so
    1,000 runs of 5 MB are never read at once: here a budget of 25 KB and runs of about 10 KB make
    batches of two, a run of 60 KB is a batch of its own, and the file still holds every run once,
    newest first, then its summary."""
    monkeypatch.setattr(exports, "JSONL_BYTES", 25_000)
    noise = random.Random(15)

    def text(characters: int) -> str:  # does not compress, as PostgreSQL would compress repeated text
        return "".join(noise.choice(string.ascii_letters) for _ in range(characters))

    sizes = [4_000] * 5 + [30_000] + [4_000] * 2
    ids = [make_run(user, final_output=text(size), completed_at=T0 + timedelta(minutes=index)).id
           for index, size in enumerate(sizes)]
    batches: list[tuple[int, int]] = []  # (runs asked for, runs taken)
    export_runs = queries.export_runs

    def counted(user: User, filters: ListFilters, after: Any, limit: int, budget: int) -> list[Any]:
        rows = export_runs(user, filters, after, limit, budget)
        batches.append((limit, len(rows)))
        return rows

    monkeypatch.setattr(queries, "export_runs", counted)
    chunks = list(exports.jsonl_lines(user, ListFilters()))

    *lines, summary = "".join(chunks).splitlines()
    assert [json.loads(line)["id"] for line in lines] == ids[::-1]
    assert json.loads(summary) == {"export": {"runs": len(sizes), "complete": True}}
    # Newest first: two runs, the large one alone, two, two, one; after a cut batch, the next sizes at
    # most twice the runs it took (not 1,000 runs sized again for two taken). A final output counts
    # twice (its column and the run's document), so a run of 4,000 characters is about 10 KB.
    assert batches == [(1000, 2), (4, 1), (2, 2), (4, 2), (4, 1)]
    for chunk in chunks[:-1]:
        assert chunk.count("\n") == 1 or len(chunk.encode()) <= exports.JSONL_BYTES
    whole = signed_in.get("/artifacts/export?format=jsonl").get_data(as_text=True)
    assert whole == "".join(chunks)


def test_runs_of_many_short_steps_count_toward_an_exports_byte_budget(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step's line is more than its output (its agent, order, status, usage and keys): runs of 200
    empty-output steps fill a batch too, rather than 1,000 of them passing for runs of no size."""
    monkeypatch.setattr(exports, "JSONL_BYTES", 100_000)
    many = [{"agentId": f"agent-{order}", "agentName": f"Agent number {order}", "output": "", "stepOrder": order}
            for order in range(200)]
    for index in range(3):
        make_run(user, steps=many, usage=None, completed_at=T0 + timedelta(minutes=index))
    chunks = list(exports.jsonl_lines(user, ListFilters()))
    runs_per_chunk = [chunk.count("\n") for chunk in chunks]
    assert runs_per_chunk == [1, 1, 2]  # one run a batch; the summary line ends the last chunk
    assert max(len(chunk.encode()) for chunk in chunks) < exports.JSONL_BYTES
