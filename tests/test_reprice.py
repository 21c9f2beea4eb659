"""`flask runs reprice`: computed costs recomputed from the current prices as of each run's completion,
a provider's never touched, the rollups exact, every change recorded and shown on the run's page."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from artifacts_app import pricing, rollups
from artifacts_app.extensions import db
from artifacts_app.models import CostReprice, CostRepriceRun, PipelineRun, RunRollup, RunStep, User
from tests.factories import make_run, make_user, steps_with_usage

MARCH = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
JULY = datetime(2025, 7, 1, 12, 0, tzinfo=timezone.utc)
AUGUST = datetime(2025, 8, 15, 12, 0, tzinfo=timezone.utc)
# gpt-4o costs more from June 2025, and acme-1, unknown until now, gets a price.
NEW_PRICES = """
[[price]]
model = "gpt-4o"
provider = "openai"
input = "5.00"
output = "20.00"
effective = 2025-06-01

[[price]]
model = "acme-1"
provider = "acme"
input = "1.00"
output = "2.00"
effective = 2025-01-01
"""
USAGE = {"inputTokens": 1234, "outputTokens": 567}


def use_prices(app: Flask, path: Path, text: str = NEW_PRICES) -> pricing.PriceTable:
    """Start the app with PRICES_FILE set to a file of `text`, as an operator would."""
    path.write_text(text, encoding="utf-8")
    app.config["PRICES_FILE"] = str(path)
    table = pricing.PriceTable.load(path)
    app.extensions["price_table"] = table
    return table


def reprice(runner: FlaskCliRunner, *args: str) -> Result:
    result = runner.invoke(args=["runs", "reprice", *args])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    return result


def runs_by_name(user: User) -> dict[str, PipelineRun]:
    db.session.expire_all()
    runs = db.session.execute(sa.select(PipelineRun).where(PipelineRun.user_id == user.id)).scalars()
    return {run.input: run for run in runs}


def costs(user: User) -> dict[str, tuple[Any, ...]]:
    """Each run's cost, source and sort key, and its steps' costs and sources."""
    return {
        name: (run.cost, run.cost_source, run.sort_cost, [(step.cost, step.cost_source) for step in run.steps])
        for name, run in runs_by_name(user).items()
    }


def rollup_rows() -> list[tuple[Any, ...]]:
    db.session.expire_all()
    return [
        (row.user_id, row.pipeline_id, row.model, row.status, row.day, row.runs, row.input_tokens, row.output_tokens,
         row.cost, row.unpriced_runs)
        for row in db.session.execute(sa.select(RunRollup).order_by(
            RunRollup.user_id, RunRollup.pipeline_id, RunRollup.model, RunRollup.status, RunRollup.day)).scalars()
    ]


def old_price(model: str, at: datetime, tokens: dict[str, int] = USAGE) -> Decimal:
    cost = pricing.calculate_cost(model, tokens["inputTokens"], tokens["outputTokens"], at=at,
                                  table=pricing.PriceTable.load())
    assert cost is not None
    return cost


def new_price(table: pricing.PriceTable, model: str, at: datetime, tokens: dict[str, int] = USAGE) -> Decimal:
    cost = pricing.calculate_cost(model, tokens["inputTokens"], tokens["outputTokens"], at=at, table=table)
    assert cost is not None
    return cost


def mixed_steps() -> list[dict[str, Any]]:
    """gpt-4o-mini and claude-sonnet-4-5 priced here, llama-local's cost reported by its provider;
    the second step is made a gpt-4o one, whose price changes."""
    steps = steps_with_usage()
    steps[1]["model"] = "gpt-4o"
    return steps


@pytest.fixture
def history(app: Flask) -> User:
    """Runs of every kind: computed before and after the new gpt-4o price, another model's, a
    provider's, an unpriced one, a mixed-model one and one outside the date range."""
    user = make_user("ops@example.com")
    make_run(user, input="gpt-4o in March", model="gpt-4o", completed_at=MARCH, usage=USAGE)
    make_run(user, input="gpt-4o in July", model="gpt-4o", completed_at=JULY, usage=USAGE)
    make_run(user, input="gpt-4o in August", model="gpt-4o", completed_at=AUGUST, usage=USAGE)
    make_run(user, input="mini in July", model="gpt-4o-mini", completed_at=JULY, usage=USAGE)
    make_run(user, input="reported in July", model="gpt-4o", completed_at=JULY, usage={**USAGE, "cost": "0.5"})
    make_run(user, input="acme in July", model="acme-1", completed_at=JULY, usage=USAGE)
    make_run(user, input="mixed in July", model="claude-haiku-4-5", completed_at=JULY, steps=mixed_steps(), usage=None)
    return user


def test_a_dry_run_says_what_would_change_and_changes_nothing(
    app: Flask, runner: FlaskCliRunner, history: User, tmp_path: Path
) -> None:
    before, summaries = costs(history), rollup_rows()
    use_prices(app, tmp_path / "prices.toml")

    result = reprice(runner, "--dry-run")

    assert "Dry run: 4 of 7 runs would change (1 unpriced run priced); nothing was written." in result.output
    assert costs(history) == before
    assert rollup_rows() == summaries
    assert db.session.execute(sa.select(sa.func.count()).select_from(CostReprice)).scalar_one() == 0
    assert db.session.execute(sa.select(sa.func.count()).select_from(CostRepriceRun)).scalar_one() == 0


def test_a_new_price_changes_exactly_the_computed_runs_it_applies_to(
    app: Flask, runner: FlaskCliRunner, history: User, tmp_path: Path
) -> None:
    before = costs(history)
    table = use_prices(app, tmp_path / "prices.toml")

    result = reprice(runner, "--batch-size", "2")

    after = costs(history)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"gpt-4o in July", "gpt-4o in August", "acme in July", "mixed in July"}
    assert after["gpt-4o in July"][:2] == (new_price(table, "gpt-4o", JULY), "computed")
    assert after["gpt-4o in August"][:2] == (new_price(table, "gpt-4o", AUGUST), "computed")
    # Priced as of completion: March is before the new price took effect.
    assert after["gpt-4o in March"][:2] == (old_price("gpt-4o", MARCH), "computed")
    assert after["acme in July"][:3] == (new_price(table, "acme-1", JULY), "computed", new_price(table, "acme-1", JULY))
    assert "Repriced 4 of 7 runs (1 unpriced run priced); recorded as reprice" in result.output
    assert "gpt-4o " in result.output and "acme-1 " in result.output


def test_a_step_priced_here_is_repriced_and_the_run_is_their_exact_sum(
    app: Flask, runner: FlaskCliRunner, history: User, tmp_path: Path
) -> None:
    table = use_prices(app, tmp_path / "prices.toml")

    reprice(runner)

    run = runs_by_name(history)["mixed in July"]
    tokens = [{"inputTokens": step.input_tokens, "outputTokens": step.output_tokens} for step in run.steps]
    assert [(step.cost, step.cost_source) for step in run.steps] == [
        (old_price("gpt-4o-mini", JULY, tokens[0]), "computed"),
        (new_price(table, "gpt-4o", JULY, tokens[1]), "computed"),
        (Decimal("0.000123"), "provider"),  # as its provider reported it
    ]
    assert run.cost == sum((step.cost for step in run.steps if step.cost is not None), Decimal(0))
    assert run.cost_source == "computed"


def test_a_providers_cost_is_never_touched(
    app: Flask, runner: FlaskCliRunner, history: User, tmp_path: Path
) -> None:
    # Prices for everything the provider's runs used, all new: still nothing of theirs changes.
    use_prices(app, tmp_path / "prices.toml", NEW_PRICES + """
[[price]]
model = "llama-local"
provider = "meta"
input = "9.00"
output = "9.00"
effective = 2024-01-01
""")
    before = runs_by_name(history)
    reported = (before["reported in July"].cost, before["reported in July"].cost_source)

    reprice(runner)

    runs = runs_by_name(history)
    assert (runs["reported in July"].cost, runs["reported in July"].cost_source) == reported == (Decimal("0.5"), "provider")
    assert (runs["mixed in July"].steps[2].cost, runs["mixed in July"].steps[2].cost_source) == (
        Decimal("0.000123"), "provider")


def test_an_unpriced_run_gets_a_cost_when_its_model_gets_a_price(
    app: Flask, runner: FlaskCliRunner, history: User, tmp_path: Path
) -> None:
    assert runs_by_name(history)["acme in July"].cost_source == "unpriced"
    unpriced_before = sum(row[-1] for row in rollup_rows())
    table = use_prices(app, tmp_path / "prices.toml")

    reprice(runner, "--model", "acme-1")

    run = runs_by_name(history)["acme in July"]
    assert (run.cost, run.cost_source) == (new_price(table, "acme-1", JULY), "computed")
    assert sum(row[-1] for row in rollup_rows()) == unpriced_before - 1


def test_the_model_and_the_days_narrow_what_is_repriced(
    app: Flask, runner: FlaskCliRunner, history: User, tmp_path: Path
) -> None:
    before = costs(history)
    use_prices(app, tmp_path / "prices.toml")

    # A provider's spelling of the model finds its family; the mixed run used it in a step.
    result = reprice(runner, "--model", "openai/gpt-4o-2024-08-06", "--since", "2025-06-15", "--until", "2025-07-31")

    after = costs(history)
    assert {name for name in before if before[name] != after[name]} == {"gpt-4o in July", "mixed in July"}
    assert "runs completed from 2025-06-15 to 2025-07-31; model openai/gpt-4o-2024-08-06." in result.output
    assert "Repriced 2 of 3 runs; recorded as reprice" in result.output  # the provider's run was read, not changed


def test_the_rollups_afterwards_equal_a_fresh_count(
    app: Flask, runner: FlaskCliRunner, history: User, tmp_path: Path
) -> None:
    summaries = rollup_rows()
    use_prices(app, tmp_path / "prices.toml")

    reprice(runner, "--batch-size", "3")

    kept = rollup_rows()
    assert kept != summaries  # the totals moved with the costs
    rollups.rebuild()
    db.session.commit()
    assert rollup_rows() == kept
    runs = runs_by_name(history).values()
    assert sum(row[8] for row in kept) == sum((run.cost for run in runs if run.cost is not None), Decimal(0))


def test_a_reprice_is_recorded_with_the_prices_it_used_and_the_runs_it_changed(
    app: Flask, runner: FlaskCliRunner, history: User, tmp_path: Path
) -> None:
    before = runs_by_name(history)
    costs_before = {run.id: (run.cost, run.cost_source) for run in before.values()}
    table = use_prices(app, tmp_path / "prices.toml")

    reprice(runner)

    record = db.session.execute(sa.select(CostReprice)).scalar_one()
    assert record.prices_fingerprint == table.fingerprint() != pricing.PriceTable.load().fingerprint()
    assert record.prices_file == str(tmp_path / "prices.toml")
    assert record.finished_at is not None and record.started_at <= record.finished_at
    assert (record.model, record.completed_from, record.completed_to) == (None, None, None)
    assert (record.runs_considered, record.runs_changed) == (7, 4)
    runs = runs_by_name(history)
    assert record.total_before == sum((cost for cost, _ in costs_before.values() if cost is not None), Decimal(0))
    assert record.total_after == sum((run.cost for run in runs.values() if run.cost is not None), Decimal(0))
    changed = db.session.execute(sa.select(CostRepriceRun)).scalars().all()
    by_id = {run.id: run for run in runs.values()}
    assert {row.run_id for row in changed} == {runs[name].id for name in
                                               ("gpt-4o in July", "gpt-4o in August", "acme in July", "mixed in July")}
    for row in changed:
        assert (row.cost_before, row.cost_source_before) == costs_before[row.run_id]
        assert (row.cost_after, row.cost_source_after) == (by_id[row.run_id].cost, "computed")
        assert row.reprice_id == record.id


def test_repricing_again_with_the_same_prices_changes_nothing_and_records_nothing(
    app: Flask, runner: FlaskCliRunner, history: User, tmp_path: Path
) -> None:
    use_prices(app, tmp_path / "prices.toml")
    reprice(runner)
    after_first = costs(history)

    again = reprice(runner)

    assert "Nothing changed: the 7 runs already cost what these prices say." in again.output
    assert costs(history) == after_first
    assert db.session.execute(sa.select(sa.func.count()).select_from(CostReprice)).scalar_one() == 1


def test_a_step_cost_of_unknown_origin_is_kept(
    app: Flask, runner: FlaskCliRunner, history: User, tmp_path: Path
) -> None:
    run = runs_by_name(history)["mixed in July"]
    # As stored before migration 0009: no telling whether the gpt-4o step's cost was reported.
    db.session.execute(sa.update(RunStep).where(RunStep.run_id == run.id, RunStep.step_order == 1)
                       .values(cost_source=None))
    db.session.commit()
    before = costs(history)["mixed in July"]
    use_prices(app, tmp_path / "prices.toml")

    result = reprice(runner, "--model", "gpt-4o")

    assert costs(history)["mixed in July"] == before
    assert "1 run kept step costs of unknown origin (stored before migration 0009, or imported)." in result.output


def test_a_computed_cost_whose_model_lost_its_price_is_kept_not_made_unpriced(
    app: Flask, runner: FlaskCliRunner, history: User
) -> None:
    before = costs(history)
    packaged = pricing.PriceTable.load()
    app.extensions["price_table"] = pricing.PriceTable(
        [row for row in packaged.rows if row.model != "gpt-4o-mini"], packaged.aliases)

    result = reprice(runner)

    assert costs(history) == before
    assert "2 runs kept a computed cost whose model has no price now." in result.output


def test_a_run_whose_usage_does_not_add_up_is_reported_and_left_alone(
    app: Flask, runner: FlaskCliRunner, history: User, tmp_path: Path
) -> None:
    run = runs_by_name(history)["mixed in July"]
    db.session.execute(sa.update(PipelineRun).where(PipelineRun.id == run.id).values(input_tokens=1))
    db.session.commit()
    before = costs(history)["mixed in July"]
    use_prices(app, tmp_path / "prices.toml")

    result = reprice(runner)

    assert costs(history)["mixed in July"] == before
    assert f"1 run left as they are: their usage does not add up to their steps' ({run.id})." in result.stderr


def test_until_before_since_is_refused(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["runs", "reprice", "--since", "2025-07-01", "--until", "2025-06-30"])

    assert result.exit_code == 2
    assert "must not be before --since" in result.output


def test_the_run_page_says_when_its_cost_was_recomputed(
    app: Flask, runner: FlaskCliRunner, signed_in: FlaskClient, user: User, tmp_path: Path
) -> None:
    repriced = make_run(user, input="repriced", model="gpt-4o", completed_at=JULY, usage=USAGE)
    untouched = make_run(user, input="untouched", model="gpt-4o", completed_at=MARCH, usage=USAGE)
    table = use_prices(app, tmp_path / "prices.toml")
    reprice(runner)
    record = db.session.execute(sa.select(CostReprice)).scalar_one()

    page = signed_in.get(f"/artifacts/{repriced.id}").get_data(as_text=True)
    other = signed_in.get(f"/artifacts/{untouched.id}").get_data(as_text=True)

    assert "<dt>Cost recomputed</dt>" in page
    assert f'<time datetime="{record.started_at.isoformat()}"' in page
    assert f"(prices {table.fingerprint()[:12]})" in page
    assert "Cost recomputed" not in other
