"""Long commands: a progress bar only on a terminal's stderr, and a summary line everywhere, never mixed into data."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner

from artifacts_app.progress import counted, progress
from tests.factories import make_run, make_user

EMAIL = "ada@example.com"


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as a person's stderr is."""

    def isatty(self) -> bool:
        return True


@pytest.mark.engine_agnostic
def test_the_bar_is_drawn_on_a_terminal() -> None:
    terminal = Terminal()

    with progress("Repricing runs", 4, stream=terminal) as advance:
        advance(2)
        advance(2)

    drawn = terminal.getvalue()
    assert "Repricing runs" in drawn
    assert "100%" in drawn


@pytest.mark.engine_agnostic
def test_nothing_is_drawn_when_the_stream_is_not_a_terminal() -> None:
    log = io.StringIO()

    with progress("Repricing runs", 4, stream=log) as advance:
        advance(4)

    assert log.getvalue() == ""  # not even the label: a log gets only the summary line


@pytest.mark.engine_agnostic
def test_counts_read_with_separators_and_plurals() -> None:
    assert counted(1, "run") == "1 run"
    assert counted(0, "run") == "0 runs"
    assert counted(1234, "run") == "1,234 runs"
    assert counted(2, "batch", "batches") == "2 batches"


def test_export_to_stdout_says_how_many_runs_on_stderr_only(runner: FlaskCliRunner) -> None:
    user = make_user(EMAIL)
    for _ in range(3):
        make_run(user)

    result = runner.invoke(args=["runs", "export", "--user", EMAIL])

    assert result.exit_code == 0, result.output
    assert result.stderr == "Exported 3 runs to standard output\n"
    *runs, summary = result.stdout.splitlines()
    assert len(runs) == 3 and all(json.loads(line)["status"] == "completed" for line in runs)
    assert json.loads(summary) == {"export": {"runs": 3, "complete": True}}


def test_export_to_a_file_names_the_file(runner: FlaskCliRunner, tmp_path: Path) -> None:
    make_run(make_user(EMAIL))
    target = tmp_path / "runs.jsonl"

    result = runner.invoke(args=["runs", "export", "--user", EMAIL, "--output", str(target)])

    assert result.exit_code == 0, result.output
    assert result.stderr == f"Exported 1 run to {target}\n"
    assert result.stdout == ""
    *runs, summary = target.read_text(encoding="utf-8").splitlines()
    assert len(runs) == 1 and json.loads(summary) == {"export": {"runs": 1, "complete": True}}


def test_exporting_nothing_still_says_so(runner: FlaskCliRunner) -> None:
    make_user(EMAIL)

    result = runner.invoke(args=["runs", "export", "--user", EMAIL])

    assert result.exit_code == 0, result.output
    assert result.stdout == '{"export":{"runs":0,"complete":true}}\n'  # an empty export, and complete
    assert result.stderr == "Exported 0 runs to standard output\n"


def test_import_and_seed_print_no_bar_off_a_terminal_only_their_summary(runner: FlaskCliRunner, tmp_path: Path) -> None:
    make_run(make_user(EMAIL))
    run, summary = runner.invoke(args=["runs", "export", "--user", EMAIL]).stdout.splitlines()
    source = tmp_path / "runs.jsonl"
    # Without its id, so the copy is a new run.
    source.write_text(json.dumps({k: v for k, v in json.loads(run).items() if k != "id"}) + "\n" + summary + "\n")
    make_user("copy@example.com")

    imported = runner.invoke(args=["runs", "import", str(source), "--user", "copy@example.com"])
    seeded = runner.invoke(args=["demo", "seed"])

    assert imported.exit_code == 0, imported.output
    assert "Importing runs" not in imported.output
    assert imported.stdout == "Imported 1 run for copy@example.com.\n"
    assert seeded.exit_code == 0, seeded.output
    assert "Seeding demo runs" not in seeded.output
    assert seeded.stdout.startswith("Seeded 200 runs.")
