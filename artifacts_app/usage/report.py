"""What the usage page is asked for (the list's filters, a bounded range, the period, the grouping and
the measure) and what it shows: the sums per period and per series, the largest models or pipelines
drawn on their own and the rest as "Other". Plain values, no request or database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

from ..filters import ListFilters
from ..paging import BadListRequest
from .query import GROUPS, PERIODS, Group, Usage

MEASURES = ("cost", "tokens")
# The range one page covers: a year of days, two years of weeks. A longer one is a 400 that says so
# (not clamped: the totals must be those of the dates asked for, as the list would add them up).
MAX_DAYS = 366
MAX_WEEKS = 104
# Without dates: the last 30 days, or the last 12 weeks (this one included), to today (UTC).
DEFAULT_DAYS = 30
DEFAULT_WEEKS = 12
# The chart draws the largest models or pipelines in colours of their own and adds the rest up.
MAX_SERIES = 7
NO_MODEL = "No model"


@dataclass(frozen=True)
class UsageRequest:
    """The list's filters with the range resolved (both dates set), and how to group and measure."""

    filters: ListFilters
    period: str = "day"
    by: str = "model"
    measure: str = "cost"

    @property
    def start(self) -> date:
        assert self.filters.listed_from is not None
        return self.filters.listed_from

    @property
    def end(self) -> date:
        assert self.filters.listed_to is not None
        return self.filters.listed_to

    @property
    def narrowed(self) -> bool:
        """Whether a filter besides the dates narrows the runs."""
        return replace(self.filters, listed_from=None, listed_to=None).active

    def as_params(self, **changes: str) -> dict[str, str | list[str]]:
        """The request as query-string parameters (defaults left out), with `changes` applied."""
        chosen = {"period": self.period, "by": self.by, "measure": self.measure, **changes}
        defaults = {"period": PERIODS[0], "by": GROUPS[0], "measure": MEASURES[0]}
        params = {**self.filters.as_params(), **{k: v for k, v in chosen.items() if v != defaults[k]}}
        params.pop("sort", None)  # the list's order means nothing here
        return params


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def choice(args: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = args.get(name, "") or choices[0]
    if value not in choices:
        raise BadListRequest(f"{name} must be one of {', '.join(choices)}", name)
    return value


def usage_request(args: Mapping[str, str], filters: ListFilters, today: date) -> UsageRequest:
    """The usage request from the query string and the list's filters (paging.parse_filters): a
    missing date is filled in, a range past MAX_DAYS or MAX_WEEKS is a BadListRequest."""
    period = choice(args, "period", PERIODS)
    by = choice(args, "by", GROUPS)
    measure = choice(args, "measure", MEASURES)
    end = filters.listed_to or max(today, filters.listed_from or today)
    start = filters.listed_from
    if start is None and period == "day":
        start = end - timedelta(days=DEFAULT_DAYS - 1)
    elif start is None:
        start = monday(end) - timedelta(weeks=DEFAULT_WEEKS - 1)
    if start > end:
        raise BadListRequest("from must not be after to", "to")
    days = (end - start).days + 1
    if period == "day" and days > MAX_DAYS:
        raise BadListRequest(
            f"the range spans {days:,} days; per day shows at most {MAX_DAYS}: choose a shorter range, "
            f"or per week (at most {MAX_WEEKS} weeks)", "from")
    weeks = (monday(end) - monday(start)).days // 7 + 1
    if period == "week" and weeks > MAX_WEEKS:
        raise BadListRequest(
            f"the range spans {weeks:,} weeks; per week shows at most {MAX_WEEKS}: choose a shorter range", "from")
    return UsageRequest(replace(filters, listed_from=start, listed_to=end), period, by, measure)


@dataclass(frozen=True)
class Period:
    """One bar of the chart, one row of the table: a UTC day, or an ISO week cut to the range."""

    start: date  # the day, or the week's Monday (the key the query groups by)
    first: date  # its first day inside the range
    last: date  # its last day inside the range
    name: str  # as ISO 8601 writes it: 2025-11-03, or 2025-W45
    partial: bool = False  # a week the range starts or ends inside


def periods(request: UsageRequest) -> list[Period]:
    """Every period of the range, empty ones included, oldest first."""
    if request.period == "day":
        count = (request.end - request.start).days + 1
        days = (request.start + timedelta(days=n) for n in range(count))
        return [Period(day, day, day, day.isoformat()) for day in days]
    weeks = []
    week = monday(request.start)
    while week <= request.end:
        first, last = max(week, request.start), min(week + timedelta(days=6), request.end)
        year, number, _ = week.isocalendar()
        weeks.append(Period(week, first, last, f"{year}-W{number:02d}", partial=(last - first).days < 6))
        week += timedelta(weeks=1)
    return weeks


def measure_of(usage: Usage, measure: str) -> Decimal | int:
    """What the chart draws: priced cost, or every run's tokens in and out."""
    return usage.cost if measure == "cost" else usage.tokens


@dataclass(frozen=True)
class Series:
    """A model or pipeline the chart draws in its own colour, or "Other" (several keys added up)."""

    index: int  # its place in the stack (0 at the bottom) and its colour
    label: str
    keys: tuple[str, ...]
    usage: Usage
    other: bool = False  # drawn in grey

    @property
    def colour(self) -> str:
        """Its CSS class (static/app.css has each, light and dark)."""
        return "series-other" if self.other else f"series-{self.index}"


@dataclass(frozen=True)
class KeyUsage:
    key: str
    label: str
    usage: Usage


@dataclass(frozen=True)
class Report:
    request: UsageRequest
    periods: list[Period]
    series: list[Series]
    cells: dict[tuple[date, int], Usage]  # (period start, series index) -> sums
    period_totals: dict[date, Usage]
    key_cells: dict[tuple[date, str], Usage]  # (period start, model or pipeline) -> sums, as the query gave them
    by_key: list[KeyUsage]  # every model or pipeline, largest first
    total: Usage

    def cell(self, period: Period, series: Series) -> Usage:
        return self.cells.get((period.start, series.index), Usage())

    def period_total(self, period: Period) -> Usage:
        return self.period_totals.get(period.start, Usage())

    def share(self, usage: Usage) -> Decimal | None:
        """Its part of the whole range's measure, in percent to one place; None when the whole is 0."""
        whole = measure_of(self.total, self.request.measure)
        if whole <= 0:
            return None
        return (Decimal(measure_of(usage, self.request.measure)) * 100 / Decimal(whole)).quantize(Decimal("0.1"))

    def largest(self) -> tuple[Period, Usage] | None:
        """The period with the most of the measure (the earliest of equals), when any has some."""
        measure = self.request.measure
        best = max(self.periods, key=lambda p: (measure_of(self.period_total(p), measure), -p.start.toordinal()))
        usage = self.period_total(best)
        return (best, usage) if measure_of(usage, measure) > 0 else None


def key_label(key: str, by: str) -> str:
    return NO_MODEL if by == "model" and key == "" else key


def build(request: UsageRequest, groups: list[Group]) -> Report:
    """The report from the query's sums: a per-group fold, never per run."""
    by_key: dict[str, Usage] = {}
    period_totals: dict[date, Usage] = {}
    for group in groups:
        by_key[group.key] = by_key.get(group.key, Usage()) + group.usage
        period_totals[group.period] = period_totals.get(group.period, Usage()) + group.usage
    ranked = sorted(
        by_key.items(), key=lambda item: (-measure_of(item[1], request.measure), -item[1].tokens, item[0]))
    shown = ranked if len(ranked) <= MAX_SERIES + 1 else ranked[:MAX_SERIES]
    series = [Series(index, key_label(key, request.by), (key,), usage) for index, (key, usage) in enumerate(shown)]
    rest = ranked[len(shown):]
    if rest:
        noun = "models" if request.by == "model" else "pipelines"
        total_rest = sum((usage for _, usage in rest), Usage())
        series.append(
            Series(MAX_SERIES, f"Other ({len(rest)} {noun})", tuple(key for key, _ in rest), total_rest, other=True))
    index_of = {key: item.index for item in series for key in item.keys}
    cells: dict[tuple[date, int], Usage] = {}
    for group in groups:
        place = (group.period, index_of[group.key])
        cells[place] = cells.get(place, Usage()) + group.usage
    return Report(
        request=request, periods=periods(request), series=series, cells=cells, period_totals=period_totals,
        key_cells={(group.period, group.key): group.usage for group in groups},
        by_key=[KeyUsage(key, key_label(key, request.by), usage) for key, usage in ranked],
        total=sum(by_key.values(), Usage()),
    )
