"""The usage reader: the filtered runs summed per period (UTC day or ISO week) and per model or
pipeline, in one grouped query.

It narrows with queries.filtered, the list's own WHERE clause (the user first), so the sums are the
list's runs exactly. It reads pipeline_runs itself rather than run_rollups: the rollups keep how many
runs were unpriced but not their tokens, and they cannot answer tags, metadata or a search.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Date, and_, cast, func, literal_column, select, type_coerce

from .. import queries
from ..extensions import db
from ..filters import FINISHED, ListFilters
from ..models import Pipeline, PipelineRun, User
from ..types import MoneyTotal

PERIODS = ("day", "week")
GROUPS = ("model", "pipeline")
# The most (period, model or pipeline) sums one page may add up and draw: 366 days of 50 models.
MAX_GROUPS = 20_000


class TooManyGroups(Exception):
    """The range and filters match more than MAX_GROUPS (period, key) sums."""


@dataclass(frozen=True)
class Usage:
    """What some runs add up to. `cost` sums the priced runs only; unpriced runs (finished without
    a cost) are counted apart with their tokens, and open runs have no cost yet."""

    runs: int = 0
    priced_runs: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)
    unpriced_runs: int = 0
    unpriced_input_tokens: int = 0
    unpriced_output_tokens: int = 0
    open_runs: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{field.name: getattr(self, field.name) + getattr(other, field.name) for field in fields(self)})

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def unpriced_tokens(self) -> int:
        return self.unpriced_input_tokens + self.unpriced_output_tokens

    def as_totals(self) -> queries.Totals:
        """The same sums as the list's totals."""
        return queries.Totals(
            runs=self.runs, input_tokens=self.input_tokens, output_tokens=self.output_tokens, cost=self.cost,
            unpriced_runs=self.unpriced_runs, open_runs=self.open_runs,
        )


@dataclass(frozen=True)
class Group:
    """The runs of one period (its first day) and one model ("" for none) or pipeline."""

    period: date
    key: str
    usage: Usage


def period_start(period: str, dialect: str) -> ColumnElement[date]:
    """The first day of the UTC day or ISO week (Monday) a run is listed in. Constants are inlined, so
    the GROUP BY repeats the SELECT's expression exactly (PostgreSQL compares bound parameters by
    position, not value)."""
    listed = PipelineRun.listed_at
    if dialect == "postgresql":
        utc = func.timezone(literal_column("'UTC'"), listed)
        start = func.date_trunc(literal_column("'week'"), utc) if period == "week" else utc
        return cast(start, Date)
    # SQLite keeps naive UTC text; 'weekday 0' moves on to Sunday (or stays), 6 days back is Monday.
    if period == "week":
        return type_coerce(func.date(listed, literal_column("'weekday 0'"), literal_column("'-6 days'")), Date)
    return type_coerce(func.date(listed), Date)


def group_key(by: str) -> ColumnElement[str]:
    if by == "pipeline":
        return Pipeline.name.expression
    return func.coalesce(PipelineRun.model, literal_column("''"))


def usage_groups(user: User, filters: ListFilters, period: str, by: str) -> list[Group]:
    """The user's runs under the list's filters, summed per period and model or pipeline: one query,
    no run loaded. Raises TooManyGroups past MAX_GROUPS."""
    dialect = db.session.get_bind().dialect.name
    start = period_start(period, dialect)
    key = group_key(by)
    finished = PipelineRun.status.in_(FINISHED)
    unpriced = and_(PipelineRun.cost.is_(None), finished)
    statement = select(
        start.label("period"),
        key.label("key"),
        func.count(),
        func.count(PipelineRun.cost),
        func.coalesce(func.sum(PipelineRun.input_tokens), 0),
        func.coalesce(func.sum(PipelineRun.output_tokens), 0),
        type_coerce(func.sum(PipelineRun.cost), MoneyTotal()),
        func.count().filter(unpriced),
        func.coalesce(func.sum(PipelineRun.input_tokens).filter(unpriced), 0),
        func.coalesce(func.sum(PipelineRun.output_tokens).filter(unpriced), 0),
        func.count().filter(~finished),
    ).select_from(PipelineRun)
    if by == "pipeline":
        statement = statement.join(Pipeline, Pipeline.id == PipelineRun.pipeline_id)
    statement = queries.filtered(statement, user, filters).group_by(start, key).limit(MAX_GROUPS + 1)
    rows = db.session.execute(statement).all()
    if len(rows) > MAX_GROUPS:
        raise TooManyGroups
    return [group_of(row) for row in rows]


def group_of(row: Any) -> Group:
    day = row[0] if isinstance(row[0], date) else date.fromisoformat(str(row[0])[:10])
    usage = Usage(
        runs=int(row[2]), priced_runs=int(row[3]), input_tokens=int(row[4]), output_tokens=int(row[5]),
        cost=row[6] if row[6] is not None else Decimal(0), unpriced_runs=int(row[7]),
        unpriced_input_tokens=int(row[8]), unpriced_output_tokens=int(row[9]), open_runs=int(row[10]),
    )
    return Group(period=day, key=row[1], usage=usage)
