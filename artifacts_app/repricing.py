"""Repricing stored runs from the current price table (`flask runs reprice`).

The costs computed here are recomputed as of each run's completion, the way the writer derives them
(recording.complete_run: price_steps, then price_run); a cost a provider reported, the run's or a
step's, is never touched, nor is a step cost of unknown origin (RunStep.cost_source). A run whose
model has no price any more keeps what it was charged rather than becoming unpriced.

It walks every user's runs (an operator's command, not a reader's: queries.py is the user's reader)
in batches in id order (keyset), one transaction each: the runs, their steps, their share of the
rollups and the reprice's record change together, so a reprice cut short leaves exact summaries and
a record of what it did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import defer, load_only

from . import rollups
from .extensions import db
from .models import CostReprice, CostRepriceRun, PipelineRun, RunStep
from .pricing import PriceTable, price_run, price_steps
from .recording import listing_columns
from .schemas import InvalidBody, UsageIn
from .statuses import FINISHED_STATUSES, CostSource
from .types import utcnow

BATCH = 500
NO_MODEL = "(no model)"
COMPUTED, PROVIDER, UNPRICED = CostSource.COMPUTED.value, CostSource.PROVIDER.value, CostSource.UNPRICED.value


@dataclass(frozen=True)
class Scope:
    """Which runs to reprice: those that used a model (by price family), completed in a range of UTC days."""

    model: str | None = None
    completed_from: date | None = None
    completed_to: date | None = None  # inclusive


@dataclass(frozen=True)
class Outcome:
    """A run as the current prices charge it."""

    cost: Decimal | None
    cost_source: str
    step_costs: dict[int, Decimal]  # step_order: the new cost, of the steps whose cost changes
    unknown_steps: bool  # it has step costs of unknown origin, kept as they are
    kept_without_price: bool  # a computed cost kept because its model has no price any more

    def differs(self, run: PipelineRun) -> bool:
        return bool(self.step_costs) or (self.cost, self.cost_source) != (run.cost, run.cost_source)


@dataclass
class Tally:
    """Runs of one model (or all of them): how many, how many change, their costs before and after."""

    runs: int = 0
    changed: int = 0
    before: Decimal = Decimal(0)
    after: Decimal = Decimal(0)
    unpriced_before: int = 0
    unpriced_after: int = 0

    def add(self, run: PipelineRun, outcome: Outcome) -> None:
        self.runs += 1
        self.changed += outcome.differs(run)
        self.before += run.cost or Decimal(0)
        self.after += outcome.cost or Decimal(0)
        self.unpriced_before += run.cost_source == UNPRICED
        self.unpriced_after += outcome.cost_source == UNPRICED


@dataclass
class Report:
    """What a reprice found (or, in a dry run, would have changed), per model as the runs name it."""

    by_model: dict[str, Tally] = field(default_factory=dict)
    total: Tally = field(default_factory=Tally)
    newly_priced: int = 0  # unpriced runs that now have a cost
    unknown_steps: int = 0  # runs that keep step costs of unknown origin
    kept_without_price: int = 0
    refused: list[str] = field(default_factory=list)  # runs whose stored usage the writer would refuse
    reprice_id: int | None = None  # its cost_reprices row, once something changed

    def add(self, run: PipelineRun, outcome: Outcome) -> None:
        self.by_model.setdefault(run.model or NO_MODEL, Tally()).add(run, outcome)
        self.total.add(run, outcome)
        self.newly_priced += run.cost_source == UNPRICED and outcome.cost_source != UNPRICED
        self.unknown_steps += outcome.unknown_steps
        self.kept_without_price += outcome.kept_without_price


def recomputed(run: PipelineRun, rows: list[RunStep], table: PriceTable) -> Outcome:
    """What the writer would charge this finished run with these prices, as of its completion.
    Raises InvalidBody when its stored usage and steps do not add up the way the writer requires."""
    assert run.completed_at is not None
    steps = []
    for row in rows:
        step = row.values(output=False)
        if row.cost_source == COMPUTED:
            del step["cost"]  # ours to recompute; a provider's or an unknown one stays
        steps.append(step)
    price_steps(steps, run.model, run.completed_at, table)
    step_costs: dict[int, Decimal] = {}
    kept = False
    for row, step in zip(rows, steps, strict=True):
        if "cost" not in step:
            if row.cost_source == COMPUTED:  # its model has no price any more: keep what it was charged
                assert row.cost is not None
                step["cost"] = format(row.cost, "f")
                kept = True
            continue
        if Decimal(step["cost"]) != row.cost:
            step_costs[row.step_order] = Decimal(step["cost"])
    unknown = any(row.cost is not None and row.cost_source is None for row in rows)
    if run.cost_source == PROVIDER:
        return Outcome(run.cost, PROVIDER, step_costs, unknown, kept)
    usage = UsageIn(input_tokens=run.input_tokens, output_tokens=run.output_tokens)
    pricing = price_run(steps, run.model, usage, run.completed_at, table)
    if pricing.cost is None and run.cost_source == COMPUTED:
        return Outcome(run.cost, COMPUTED, step_costs, unknown, True)
    return Outcome(pricing.cost, pricing.cost_source, step_costs, unknown, kept)


def family(name: str, table: PriceTable) -> str:
    """The model a name is priced as, or the name itself when it has no price."""
    return table.resolve(name) or name.strip().lower()


def uses_model(run: PipelineRun, rows: list[RunStep], wanted: str, table: PriceTable) -> bool:
    """Whether the run or one of its steps used a model of the family `wanted`."""
    names = {run.model, *(row.model for row in rows)} - {None}
    return any(family(name, table) == wanted for name in names if name)


def candidates(scope: Scope) -> Select[Any]:
    """Finished runs with a cost source (legacy and open runs have none), completed in the scope's days."""
    statement = select(PipelineRun).where(
        PipelineRun.status.in_(FINISHED_STATUSES), PipelineRun.cost_source.is_not(None),
        PipelineRun.completed_at.is_not(None),
    )
    if scope.completed_from is not None:
        statement = statement.where(PipelineRun.completed_at >= datetime.combine(scope.completed_from, time.min, UTC))
    if scope.completed_to is not None:
        end = datetime.combine(scope.completed_to + timedelta(days=1), time.min, UTC)
        statement = statement.where(PipelineRun.completed_at < end)
    return statement


def candidate_count(scope: Scope) -> int:
    """How many runs a reprice of this scope reads (the model is told apart only as they are read)."""
    return db.session.execute(
        select(func.count()).select_from(candidates(scope).with_only_columns(PipelineRun.id).subquery())
    ).scalar_one()


def batch_of(scope: Scope, after: str, size: int, *, lock: bool) -> list[PipelineRun]:
    """The next `size` candidates after the id `after`, only the columns pricing and the rollups read;
    locked when they will be written, so a concurrent delete counts a run's share once."""
    statement = candidates(scope).options(load_only(
        *rollups.SHARE_COLUMNS, PipelineRun.cost_source, PipelineRun.created_at, PipelineRun.completed_at,
    )).where(PipelineRun.id > after).order_by(PipelineRun.id).limit(size)
    if lock:
        statement = statement.with_for_update()
    return list(db.session.execute(statement).scalars())


def step_rows(run_ids: list[str]) -> dict[str, list[RunStep]]:
    """The batch's step rows without their outputs, by run, in step order."""
    rows: dict[str, list[RunStep]] = {run_id: [] for run_id in run_ids}
    for row in db.session.execute(
        select(RunStep).options(defer(RunStep.output)).where(RunStep.run_id.in_(run_ids))
        .order_by(RunStep.run_id, RunStep.step_order)
    ).scalars():
        rows[row.run_id].append(row)
    return rows


def write(record: CostReprice, changes: list[tuple[PipelineRun, list[RunStep], Outcome]]) -> None:
    """Store the batch's new costs, its runs' moves in the rollups, and the runs in the record."""
    shares = []
    for run, rows, outcome in changes:
        before = rollups.share_of(run)
        assert run.cost_source is not None
        db.session.add(CostRepriceRun(
            run_id=run.id, reprice_id=record.id, cost_before=run.cost, cost_after=outcome.cost,
            cost_source_before=run.cost_source, cost_source_after=outcome.cost_source,
        ))
        for row in rows:
            if row.step_order in outcome.step_costs:
                row.cost, row.cost_source = outcome.step_costs[row.step_order], COMPUTED
        run.cost, run.cost_source = outcome.cost, outcome.cost_source
        run.sort_cost = listing_columns(
            run.status, run.created_at, run.completed_at, run.input_tokens, run.output_tokens, run.cost
        )["sort_cost"]
        shares += [(before, -1), (rollups.share_of(run), +1)]
    db.session.flush()
    rollups.count(shares)


def reprice(
    scope: Scope, table: PriceTable, *, prices_file: str | None = None, dry_run: bool = False,
    batch_size: int = BATCH, advance: Callable[[int], None] = lambda done: None,
) -> Report:
    """Reprice the scope's runs with `table`, committing batch by batch (a dry run writes nothing);
    `advance` is told how many runs each batch read."""
    report = Report()
    wanted = family(scope.model, table) if scope.model else None
    record: CostReprice | None = None
    started = utcnow()
    after = ""
    while runs := batch_of(scope, after, batch_size, lock=not dry_run):
        after = runs[-1].id
        rows = step_rows([run.id for run in runs])
        changes = []
        for run in runs:
            if wanted is not None and not uses_model(run, rows[run.id], wanted, table):
                continue
            try:
                outcome = recomputed(run, rows[run.id], table)
            except InvalidBody:
                report.refused.append(run.id)
                continue
            report.add(run, outcome)
            if outcome.differs(run):
                changes.append((run, rows[run.id], outcome))
        if changes and not dry_run:
            if record is None:
                record = CostReprice(
                    started_at=started, prices_fingerprint=table.fingerprint(), prices_file=prices_file,
                    model=scope.model, completed_from=scope.completed_from, completed_to=scope.completed_to,
                )
                db.session.add(record)
                db.session.flush()
            write(record, changes)
        if record is not None:
            tell(record, report)
        if dry_run:
            db.session.rollback()
        else:
            db.session.commit()
        advance(len(runs))
    if record is not None:
        record.finished_at = utcnow()
        db.session.commit()
        report.reprice_id = record.id
    return report


def tell(record: CostReprice, report: Report) -> None:
    """The record says what has been committed so far."""
    record.runs_considered, record.runs_changed = report.total.runs, report.total.changed
    record.total_before, record.total_after = report.total.before, report.total.after
