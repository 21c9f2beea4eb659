"""The `flask users …` and `flask demo seed` commands, on every database engine."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from artifacts_app import accounts
from artifacts_app.extensions import db
from artifacts_app.models import Pipeline, PipelineRun, User

STRONG_PASSWORD = "correct horse battery"
# What the README promises of `make run`'s demo: this login, about 200 runs, six pipelines, seven models.
DEMO_EMAIL, DEMO_PASSWORD = "demo@example.com", "demo-password"
DEMO_RUNS, DEMO_PIPELINES, DEMO_MODELS = 200, 6, 7
RENDER_LIMIT = 64 * 1024
FENCE = re.compile(r"^```([A-Za-z0-9_+-]+)\s*$", re.MULTILINE)


def users_with_email(email: str) -> list[User]:
    """Every stored user with exactly this (stored) email, read fresh from the database."""
    db.session.expire_all()
    return list(db.session.execute(select(User).where(User.email == email)).scalars())


def user_count() -> int:
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(User)).scalar_one()


def demo_user() -> User:
    db.session.expire_all()
    return db.session.execute(select(User).where(User.email == DEMO_EMAIL)).scalar_one()


def demo_run_rows() -> list[PipelineRun]:
    user = demo_user()
    return list(db.session.execute(select(PipelineRun).where(PipelineRun.user_id == user.id)).scalars())


def texts_of(run: PipelineRun) -> Iterator[str]:
    """Every piece of markdown a run carries: each step's output and the final output."""
    if run.artifact_data:
        for step in run.steps:
            yield step.output
        yield run.artifact_data["finalOutput"]
    if run.final_output:
        yield run.final_output


# ---------------------------------------------------------------- flask users create


def test_users_create_reads_password_from_stdin_and_stores_lowercased_email(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["users", "create", "Alice@Example.COM", "--password-stdin"],
                           input=STRONG_PASSWORD + "\n")

    assert result.exit_code == 0, result.output
    assert "Created user alice@example.com" in result.output
    [user] = users_with_email("alice@example.com")
    assert user.email == "alice@example.com"
    assert users_with_email("Alice@Example.COM") == []


def test_users_create_refuses_an_email_that_differs_only_in_case(runner: FlaskCliRunner) -> None:
    first = runner.invoke(args=["users", "create", "Alice@Example.COM", "--password-stdin"],
                          input=STRONG_PASSWORD + "\n")
    assert first.exit_code == 0, first.output

    second = runner.invoke(args=["users", "create", "alice@example.com", "--password-stdin"],
                           input="another password\n")

    assert second.exit_code != 0
    assert "An account with that email already exists." in second.output
    assert "Traceback" not in second.output
    assert len(users_with_email("alice@example.com")) == 1
    # The first user's password is untouched by the refused second attempt.
    [user] = users_with_email("alice@example.com")
    assert accounts.password_matches(user, STRONG_PASSWORD)


def test_users_create_refuses_a_password_shorter_than_eight_characters(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["users", "create", "bob@example.com", "--password-stdin"],
                           input="7-chars\n")

    assert result.exit_code != 0
    assert "Password must be at least 8 characters." in result.output
    assert user_count() == 0


def test_users_create_accepts_a_password_of_exactly_eight_characters(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["users", "create", "bob@example.com", "--password-stdin"], input="8-chars!\n")

    assert result.exit_code == 0, result.output
    [user] = users_with_email("bob@example.com")
    assert accounts.password_matches(user, "8-chars!")


def test_users_create_refuses_an_invalid_email(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["users", "create", "not-an-address", "--password-stdin"],
                           input=STRONG_PASSWORD + "\n")

    assert result.exit_code != 0
    assert "Enter a valid email address." in result.output
    assert user_count() == 0


def test_users_create_prompts_for_the_password_twice(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["users", "create", "carol@example.com"],
                           input=f"{STRONG_PASSWORD}\n{STRONG_PASSWORD}\n")

    assert result.exit_code == 0, result.output
    assert "Created user carol@example.com" in result.output
    [user] = users_with_email("carol@example.com")
    assert accounts.password_matches(user, STRONG_PASSWORD)
    # The prompt hides what is typed.
    assert STRONG_PASSWORD not in result.output


def test_users_create_prompt_repeats_until_the_confirmation_matches(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["users", "create", "carol@example.com"],
                           input=f"{STRONG_PASSWORD}\nsomething else\n{STRONG_PASSWORD}\n{STRONG_PASSWORD}\n")

    assert result.exit_code == 0, result.output
    [user] = users_with_email("carol@example.com")
    assert accounts.password_matches(user, STRONG_PASSWORD)
    assert not accounts.password_matches(user, "something else")


def test_users_create_stores_a_hash_that_password_matches_accepts(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["users", "create", "dave@example.com", "--password-stdin"],
                           input=STRONG_PASSWORD + "\r\n")

    assert result.exit_code == 0, result.output
    [user] = users_with_email("dave@example.com")
    assert user.password_hash != STRONG_PASSWORD
    assert STRONG_PASSWORD not in user.password_hash
    assert accounts.password_matches(user, STRONG_PASSWORD)  # the trailing \r\n is not part of it
    assert not accounts.password_matches(user, STRONG_PASSWORD + "x")
    assert not accounts.password_matches(user, "")


# ---------------------------------------------------------------- flask demo seed


def test_demo_seed_creates_the_demo_user_and_varied_runs(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["demo", "seed"])

    assert result.exit_code == 0, result.output
    assert f"Seeded {DEMO_RUNS} runs" in result.output
    assert DEMO_EMAIL in result.output

    user = demo_user()
    assert accounts.password_matches(user, DEMO_PASSWORD)
    assert user.password_hash != DEMO_PASSWORD
    runs = demo_run_rows()
    assert len(runs) == DEMO_RUNS
    assert db.session.execute(select(func.count()).select_from(PipelineRun)).scalar_one() == DEMO_RUNS

    # Six pipelines (one of them the 40-step run's), all the demo user's.
    pipelines = list(db.session.execute(select(Pipeline)).scalars())
    assert len(pipelines) == DEMO_PIPELINES
    assert {pipeline.user_id for pipeline in pipelines} == {user.id}
    assert {run.pipeline.name for run in runs} == {pipeline.name for pipeline in pipelines}

    # Seven models, one of them unpriced.
    models = {run.model for run in runs if run.model}
    assert len(models) == DEMO_MODELS, models
    unpriced = [run for run in runs if run.cost_source == "unpriced"]
    assert unpriced, "no run shows an unpriced model"
    assert all(run.cost is None for run in unpriced)
    assert any(run.model and run.artifact_data is not None for run in unpriced)

    # Failed runs keep their error and the steps that ran before the failure.
    failed = [run for run in runs if run.status == "failed"]
    assert failed
    for run in failed:
        assert run.error and run.error.strip()
        assert run.artifact_data is not None
        assert len(run.steps) >= 1
        assert run.completed_at is not None

    # One run has 40 steps; failed runs mark the step that failed; steps carry their times.
    assert max(len(run.steps) for run in runs) == 40
    assert all(run.steps[-1].status == "failed" for run in failed if run.steps)
    assert all(step.started_at and step.completed_at for run in runs if run.artifact_data for step in run.steps)
    # A few runs are still running, some steps in, so the list has live rows.
    running = [run for run in runs if run.status == "running"]
    assert len(running) == 3
    assert all(run.artifact_data and run.steps and run.completed_at is None for run in running)
    # Most runs carry tags and every non-legacy one metadata, for the list's filters.
    assert sum(1 for run in runs if run.tags) > DEMO_RUNS // 2
    assert all(run.run_metadata and run.run_metadata["env"] in ("prod", "staging")
               for run in runs if run.artifact_data is not None)

    # Legacy runs: no artifact document, only the text column.
    legacy = [run for run in runs if run.artifact_data is None]
    assert legacy
    for run in legacy:
        assert run.status == "completed"
        assert run.final_output and run.final_output.strip()

    # Mixed-model runs: each step reports its own model, tokens and cost.
    steps = [step for run in runs if run.artifact_data for step in run.steps]
    own_usage = [step for step in steps if None not in (step.model, step.input_tokens, step.output_tokens, step.cost)]
    assert own_usage
    for step in own_usage:
        assert isinstance(step.cost, Decimal)
        assert step.cost > 0
    assert len({step.model for step in own_usage}) >= 2

    # At least one step output is past the render limit, counted in bytes.
    assert any(len(step.output.encode("utf-8")) > RENDER_LIMIT for step in steps)

    # Markdown with a table and fenced code in several languages.
    texts = [text for run in runs for text in texts_of(run)]
    assert any("|---" in text for text in texts)
    languages = {language for text in texts for language in FENCE.findall(text)}
    assert len(languages) >= 3, languages

    # Every computed cost is a positive Decimal backed by token counts.
    computed = [run for run in runs if run.artifact_data is not None and run.cost_source == "computed"]
    assert computed
    for run in runs:
        if run.artifact_data is None or run.status != "completed" or run.cost_source != "computed":
            continue
        assert isinstance(run.cost, Decimal), run
        assert run.cost > 0, run
        assert run.input_tokens is not None and run.input_tokens > 0
        assert run.output_tokens is not None and run.output_tokens > 0

    # Timestamps are ordered and completed runs carry the final output of their last step.
    for run in runs:
        if run.status == "running":
            continue
        assert run.completed_at is not None and run.created_at <= run.completed_at
        if run.status == "completed" and run.artifact_data is not None:
            assert run.artifact_data["finalOutput"] == run.steps[-1].output


def test_demo_seed_a_second_time_adds_nothing(runner: FlaskCliRunner) -> None:
    first = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == 0, first.output
    pipelines_before = db.session.execute(select(func.count()).select_from(Pipeline)).scalar_one()

    second = runner.invoke(args=["demo", "seed"])

    assert second.exit_code == 0, second.output
    assert "already present" in second.output
    assert f"({DEMO_RUNS} runs)" in second.output
    db.session.expire_all()
    assert db.session.execute(select(func.count()).select_from(PipelineRun)).scalar_one() == DEMO_RUNS
    assert db.session.execute(select(func.count()).select_from(Pipeline)).scalar_one() == pipelines_before
    assert user_count() == 1
