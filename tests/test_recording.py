"""The run writer: one transaction, pricing at write time, the checks that need the stored run, and safe concurrent completion."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from artifacts_app import pricing, recording, schemas
from artifacts_app.extensions import db
from artifacts_app.models import Pipeline, PipelineRun
from artifacts_app.recording import RunNotFound, RunStateError
from tests.factories import make_run, make_user, start_run, steps_with_usage, three_steps

# The packaged prices, as the app loads them without a PRICES_FILE.
PRICES = pricing.PriceTable.load()

NOV_2024 = datetime(2024, 11, 1, 9, 0, tzinfo=timezone.utc)
JUN_2024 = datetime(2024, 6, 1, 9, 0, tzinfo=timezone.utc)


def completion(**fields: Any) -> schemas.RunComplete:
    return schemas.parse(schemas.RunComplete, fields)


def count(model: type) -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def test_record_run_stores_the_artifact_and_prices_it_at_completion(app: Flask) -> None:
    user = make_user()
    run = make_run(user, model="gpt-4o-2024-08-06", completed_at=NOV_2024,
                   usage={"inputTokens": 1234, "outputTokens": 567})
    assert run.status == "completed"
    assert run.artifact_data == {"finalOutput": "Final **draft**"}
    assert [step.values() for step in run.steps] == [{"status": "completed", **step} for step in three_steps()]
    assert run.final_output == "Final **draft**"  # the legacy column, written during the transition
    assert (run.input_tokens, run.output_tokens) == (1234, 567)
    # gpt-4o from 2024-10-02: $2.50 in, $10.00 out per million tokens.
    assert run.cost == Decimal("0.008755000000")
    assert run.cost_source == "computed"
    assert run.completed_at == NOV_2024


def test_cost_uses_the_price_in_force_when_the_run_completed(app: Flask) -> None:
    user = make_user()
    before = make_run(user, model="gpt-4o", completed_at=JUN_2024, usage={"inputTokens": 10**6, "outputTokens": 0})
    after = make_run(user, model="gpt-4o", completed_at=NOV_2024, usage={"inputTokens": 10**6, "outputTokens": 0})
    assert before.cost == Decimal("5.00")
    assert after.cost == Decimal("2.50")


def test_provider_reported_cost_wins(app: Flask) -> None:
    run = make_run(make_user(), usage={"inputTokens": 1234, "outputTokens": 567, "cost": "0.0123"})
    assert run.cost == Decimal("0.0123")
    assert run.cost_source == "provider"


def test_unknown_model_is_unpriced_never_zero(app: Flask) -> None:
    run = make_run(make_user(), model="llama-3.1-70b-local")
    assert run.cost is None
    assert run.cost_source == "unpriced"
    assert (run.input_tokens, run.output_tokens) == (1234, 567)


def test_run_without_usage_is_unpriced(app: Flask) -> None:
    run = make_run(make_user(), usage=None)
    assert (run.input_tokens, run.output_tokens, run.cost, run.cost_source) == (None, None, None, "unpriced")


def test_steps_with_their_own_usage_sum_exactly_to_the_run(app: Flask) -> None:
    run = make_run(make_user(), steps=steps_with_usage(), usage=None, completed_at=NOV_2024)
    steps = run.steps
    mini = pricing.calculate_cost("gpt-4o-mini", 1000, 100, at=NOV_2024, table=PRICES)
    sonnet = pricing.calculate_cost("claude-sonnet-4-5", 2000, 200, at=NOV_2024, table=PRICES)
    assert [step.cost for step in steps] == [mini, sonnet, Decimal("0.000123")]
    assert (run.input_tokens, run.output_tokens) == (3300, 330)
    assert run.cost == mini + sonnet + Decimal("0.000123")
    assert run.cost_source == "computed"


def test_each_step_cost_says_whether_it_was_reported_or_computed(app: Flask) -> None:
    run = make_run(make_user(), steps=steps_with_usage(), usage=None, completed_at=NOV_2024)
    assert [step.cost_source for step in run.steps] == ["computed", "computed", "provider"]
    unpriced = make_run(make_user(), steps=three_steps(), usage={"inputTokens": 10, "outputTokens": 5})
    assert [step.cost_source for step in unpriced.steps] == [None, None, None]  # no cost of their own


def test_a_step_posted_without_a_cost_and_priced_at_completion_is_computed(app: Flask) -> None:
    user = make_user()
    run = start_run(user, pipeline="Code review", input="PR #482")  # no model yet: the step cannot be priced
    recording.add_step(user, run.id, schemas.parse(schemas.StepIn, {**three_steps()[0], "inputTokens": 10,
                                                                    "outputTokens": 5}))
    done = recording.complete_run(user, run.id, completion(finalOutput="LGTM", model="gpt-4o"))
    db.session.commit()
    [step] = done.steps
    assert step.cost is not None and step.cost_source == "computed"


def test_run_usage_that_disagrees_with_its_steps_is_rejected(app: Flask) -> None:
    user = make_user()
    with pytest.raises(schemas.InvalidBody) as error:
        make_run(user, steps=steps_with_usage(), usage={"inputTokens": 9999, "outputTokens": 330})
    assert error.value.field == "usage.inputTokens"
    db.session.rollback()
    assert count(PipelineRun) == 0


def test_one_unpriced_step_makes_the_run_unpriced(app: Flask) -> None:
    steps = steps_with_usage()
    del steps[2]["cost"]  # llama-local has no price and no reported cost
    run = make_run(make_user(), steps=steps, usage=None)
    assert run.cost is None and run.cost_source == "unpriced"
    assert run.steps[2].cost is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"steps": [{**three_steps()[0], "stepOrder": 1}]}, "steps"),  # does not start at 0
        ({"steps": [three_steps()[0], three_steps()[0]]}, "steps"),  # duplicate order
        ({"steps": [three_steps()[0], three_steps()[2]]}, "steps"),  # a gap
        ({"steps": [{**three_steps()[0], "stepOrder": "0"}]}, "steps[0].stepOrder"),
        ({"steps": [{**three_steps()[0], "output": 42}]}, "steps[0].output"),
        ({"steps": [{**three_steps()[0], "agentName": ""}]}, "steps[0].agentName"),
        ({"steps": [{**three_steps()[0], "output": "nul \x00 byte"}]}, "steps[0].output"),
        ({"steps": "not a list"}, "steps"),
        ({"usage": {"inputTokens": -1, "outputTokens": 1}}, "usage.inputTokens"),
        ({"usage": {"inputTokens": 1.5, "outputTokens": 1}}, "usage.inputTokens"),
        ({"usage": {"inputTokens": True, "outputTokens": 1}}, "usage.inputTokens"),
        ({"usage": {"inputTokens": 2**31, "outputTokens": 1}}, "usage.inputTokens"),
        ({"usage": {"inputTokens": 1, "outputTokens": 1, "cost": 0.01}}, "usage.cost"),
        ({"usage": {"inputTokens": 1, "outputTokens": 1, "cost": "-0.01"}}, "usage.cost"),
        ({"usage": {"inputTokens": 1, "outputTokens": 1, "cost": "NaN"}}, "usage.cost"),
        ({"usage": {"inputTokens": 1, "outputTokens": 1, "cost": "0.0000000000001"}}, "usage.cost"),
        ({"pipeline": ""}, "pipeline"),
        ({"pipeline": "x" * 201}, "pipeline"),
        ({"input": None}, "input"),
        ({"variables": ["a"]}, "variables"),
        ({"variables": {"k": {"nested": 1}}}, "variables.k"),
        ({"final_output": 7}, "finalOutput"),
        ({"status": "done"}, "status"),
        ({"created_at": datetime(2025, 1, 1, tzinfo=timezone.utc), "completed_at": datetime(2025, 1, 1)},
         "completedAt"),  # naive
        ({"created_at": datetime(2025, 1, 2, tzinfo=timezone.utc),
          "completed_at": datetime(2025, 1, 1, tzinfo=timezone.utc)}, "completedAt"),
    ],
)
def test_invalid_runs_are_rejected_naming_the_field_and_store_nothing(
    app: Flask, change: dict[str, Any], field: str
) -> None:
    user = make_user()
    with pytest.raises(schemas.InvalidBody) as error:
        make_run(user, **change)
    assert error.value.field == field
    db.session.commit()  # whatever the writer left in the session would be stored now
    assert count(PipelineRun) == 0
    assert count(Pipeline) == 0


def test_step_by_step_run_then_complete(app: Flask) -> None:
    user = make_user()
    run = start_run(user, pipeline="Code review", input="PR #482", model="gpt-4o")
    db.session.commit()
    assert run.status == "running" and run.completed_at is None
    for step in three_steps():
        recording.add_step(user, run.id, schemas.parse(schemas.StepIn, step))
        db.session.commit()
    with pytest.raises(recording.RunStateError, match="already has step 0"):
        recording.add_step(user, run.id, schemas.parse(schemas.StepIn, three_steps()[0]))
    db.session.rollback()
    done = recording.complete_run(user, run.id, completion(finalOutput="LGTM", usage={"inputTokens": 10, "outputTokens": 5}))
    db.session.commit()
    assert [s.step_order for s in done.steps] == [0, 1, 2]
    assert done.artifact_data["finalOutput"] == "LGTM"
    assert done.status == "completed" and done.cost_source == "computed"


def test_the_pipeline_is_found_by_name_per_user(app: Flask) -> None:
    alice, bob = make_user(), make_user()
    first = make_run(alice, pipeline="Research brief")
    second = make_run(alice, pipeline="Research brief")
    theirs = make_run(bob, pipeline="Research brief")
    assert first.pipeline_id == second.pipeline_id
    assert theirs.pipeline_id != first.pipeline_id
    assert count(Pipeline) == 2


def test_an_import_or_legacy_run_finds_the_pipeline_other_writers_made_and_makes_it_once(app: Flask) -> None:
    """pipeline_for (imports, legacy runs) and the API's writer make pipelines the same way: the one a
    batch made is found, and one made by pipeline_for is the one the next API run lands in."""
    alice = make_user()
    recording.create_pipelines(alice, ["Made by a batch"])
    made = db.session.execute(sa.select(Pipeline.id).where(Pipeline.name == "Made by a batch")).scalar_one()
    assert recording.pipeline_for(alice, "Made by a batch").id == made
    fresh = recording.pipeline_for(alice, "Imported")
    assert recording.pipeline_for(alice, "Imported").id == fresh.id
    db.session.commit()
    assert make_run(alice, pipeline="Imported").pipeline_id == fresh.id
    assert count(Pipeline) == 2


def test_completing_a_completed_run_is_a_state_error(app: Flask) -> None:
    user = make_user()
    run = make_run(user)
    with pytest.raises(RunStateError):
        recording.complete_run(user, run.id, completion(finalOutput="again"))
    with pytest.raises(RunStateError):
        recording.fail_run(user, run.id, schemas.RunFail(error="late failure"))


def test_another_users_run_cannot_be_written(app: Flask) -> None:
    owner, other = make_user(), make_user()
    run = start_run(owner, pipeline="P", input="x")
    db.session.commit()
    with pytest.raises(RunNotFound):
        recording.complete_run(other, run.id, completion(finalOutput="hijack"))
    with pytest.raises(RunNotFound):
        recording.add_step(other, run.id, schemas.parse(schemas.StepIn, three_steps()[0]))
    assert db.session.get(PipelineRun, run.id).status == "running"


def test_failed_run_keeps_its_error_partial_steps_and_their_cost(app: Flask) -> None:
    user = make_user()
    partial = three_steps()[:2]
    run = make_run(user, status="failed", error="Timeout: step 3 exceeded 120 s", steps=partial,
                   final_output="", usage={"inputTokens": 500, "outputTokens": 50})
    assert run.status == "failed"
    assert run.error == "Timeout: step 3 exceeded 120 s"
    assert [s.agent_name for s in run.steps] == ["Researcher", "Analyst"]
    assert run.cost_source == "computed" and run.cost > 0


def test_legacy_run_has_only_text_output(app: Flask) -> None:
    user = make_user()
    when = datetime(2024, 1, 5, tzinfo=timezone.utc)
    run = recording.record_legacy_run(user, pipeline="Old", input="i", final_output="old text",
                                      created_at=when, completed_at=when + timedelta(seconds=3))
    db.session.commit()
    assert run.artifact_data is None and run.final_output == "old text" and run.cost is None


@pytest.mark.postgres_only
def test_two_concurrent_completions_leave_exactly_one_result(app: Flask) -> None:
    user = make_user()
    run = start_run(user, pipeline="Race", input="x", model="gpt-4o")
    db.session.commit()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def complete(label: str) -> None:
        with app.app_context():
            try:
                owner = db.session.get(type(user), user.id)
                barrier.wait()
                recording.complete_run(owner, run.id, completion(finalOutput=label,
                                                               usage={"inputTokens": 1, "outputTokens": 1}))
                db.session.commit()
                outcomes.append(f"won: {label}")
            except RunStateError:
                db.session.rollback()
                outcomes.append(f"refused: {label}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=complete, args=(label,)) for label in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcome.split(":")[0] for outcome in outcomes) == ["refused", "won"], outcomes
    [winner] = [outcome.removeprefix("won: ") for outcome in outcomes if outcome.startswith("won: ")]
    db.session.expire_all()
    stored = db.session.get(PipelineRun, run.id)
    assert stored.status == "completed"
    assert stored.final_output == winner  # the completion that was told it won is the one kept
    assert stored.artifact_data["finalOutput"] == stored.final_output
