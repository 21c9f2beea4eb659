"""The usage chart's geometry: stacked bars in an SVG the template writes out, and the words that go
with it. Coordinates are computed in Decimal and written as text, so no amount passes through a float."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from ..formatting import format_cost, format_tokens
from .query import Usage
from .report import Period, Report, measure_of

# The drawing's own units; the SVG scales to its box (viewBox), so these are proportions, not pixels.
WIDTH = 800
HEIGHT = 360
LEFT = 80  # room for the value axis' labels
RIGHT = 8
TOP = 12
BOTTOM = 34  # room for the period labels
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
BASELINE = TOP + PLOT_HEIGHT
BAR_SHARE = Decimal("0.72")  # of each period's slot; the rest is the gap between bars
MAX_PERIOD_LABELS = 8  # on a phone every other one is hidden (static/app.css)
HUNDREDTH = Decimal("0.01")


def units(value: Decimal | int) -> str:
    """A coordinate as the SVG reads it: at most two decimals, no exponent."""
    text = f"{Decimal(value).quantize(HUNDREDTH, rounding=ROUND_HALF_UP):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def amount(value: Decimal | int, measure: str) -> str:
    """A value of the measure as the page reads it."""
    return format_cost(value) if measure == "cost" else f"{format_tokens(int(value))} tokens"


def axis_label(value: Decimal, measure: str) -> str:
    """A value-axis label, short: "$0", "$1.50", "$2K", "500K"."""
    if measure == "tokens":
        return format_tokens(int(value))
    if value >= 1000:
        return "$" + format_tokens(int(value))
    text = format_cost(value)
    return text.removesuffix(".00")


def axis(top_value: Decimal | int, measure: str) -> tuple[Decimal, list[Decimal]]:
    """The value axis: its top (a round number at or above the largest bar) and its ticks, at most five,
    each step 1, 2 or 5 times a power of ten."""
    smallest = Decimal("0.01") if measure == "cost" else Decimal(1)
    highest = Decimal(top_value)
    if highest <= 0:
        return smallest, [Decimal(0), smallest]
    rough = highest / 4
    base = Decimal(1).scaleb(rough.adjusted())
    step = next(base * m for m in (1, 2, 5, 10) if base * m >= rough)
    step = max(step, smallest)
    count = int((highest / step).to_integral_value(rounding=ROUND_CEILING))
    return step * count, [step * n for n in range(count + 1)]


def short_date(day: date) -> str:
    return f"{day:%b} {day.day}"


def period_title(period: Period, kind: str) -> str:
    """A period in words, for titles and the summary: "2025-11-03", "week 2025-W45 (Nov 3–9)"."""
    if kind == "day":
        return period.name
    return f"week {period.name} ({short_date(period.first)}–{short_date(period.last)})"


@dataclass(frozen=True)
class Segment:
    colour: str
    y: str
    height: str
    title: str


@dataclass(frozen=True)
class Bar:
    period: Period
    x: str
    width: str
    slot_x: str
    slot_width: str
    label_x: str
    label: str | None  # only some periods are labelled, evenly
    minor: bool  # a label a phone leaves out
    title: str
    segments: list[Segment]


@dataclass(frozen=True)
class Tick:
    y: str
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    bars: list[Bar]
    ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    baseline: int = BASELINE


def title_of(report: Report) -> str:
    request = report.request
    measure = "Cost" if request.measure == "cost" else "Tokens"
    return f"{measure} per {request.period} by {request.by}, {request.start.isoformat()} to {request.end.isoformat()}"


def description_of(report: Report) -> str:
    """The chart said in words: what it draws, the total, the largest period and series. The table
    after it holds every number."""
    request = report.request
    measure = request.measure
    noun = f"{len(report.periods)} {request.period}{'s' if len(report.periods) != 1 else ''}"
    parts = [f"Stacked bars, one per {request.period} ({noun}), each split by {request.by}."]
    parts.append(f"Total {amount(measure_of(report.total, measure), measure)} over {report.total.runs:,} "
                 f"run{'s' if report.total.runs != 1 else ''}.")
    largest = report.largest()
    if largest is not None:
        period, usage = largest
        parts.append(f"Highest: {period_title(period, request.period)}, {amount(measure_of(usage, measure), measure)}.")
    leader = report.series[0] if report.series else None
    share = report.share(leader.usage) if leader is not None else None
    if leader is not None and share is not None:
        parts.append(f"Largest {request.by}: {leader.label}, {amount(measure_of(leader.usage, measure), measure)} "
                     f"({share}%).")
    if measure == "cost" and report.total.unpriced_runs:
        parts.append(f"{report.total.unpriced_runs:,} unpriced run{'s' if report.total.unpriced_runs != 1 else ''} "
                     "are not in the bars.")
    parts.append("The table below has every number.")
    return " ".join(parts)


def draw(report: Report) -> Chart:
    """The bars, one per period with a segment per series (the largest at the bottom), and the axis."""
    measure = report.request.measure
    kind = report.request.period
    periods = report.periods
    top_value, tick_values = axis(max(measure_of(report.period_total(p), measure) for p in periods), measure)

    def height_of(value: Decimal | int) -> Decimal:
        return Decimal(value) * PLOT_HEIGHT / top_value

    slot = Decimal(PLOT_WIDTH) / len(periods)
    bar_width = slot * BAR_SHARE
    every = -(-len(periods) // MAX_PERIOD_LABELS)
    bars = []
    for number, period in enumerate(periods):
        slot_x = LEFT + slot * number
        segments = []
        below = Decimal(0)
        for series in report.series:
            value = measure_of(report.cell(period, series), measure)
            if value <= 0:
                continue
            # Each top from the running sum, so rounding never opens a gap between segments.
            bottom_y = Decimal(BASELINE) - height_of(below)
            below += value
            top_y = Decimal(BASELINE) - height_of(below)
            segments.append(Segment(series.colour, units(top_y), units(bottom_y - top_y),
                                    f"{period_title(period, kind)} · {series.label}: {amount(value, measure)}"))
        labelled = number % every == 0
        total: Usage = report.period_total(period)
        bars.append(Bar(
            period=period, x=units(slot_x + (slot - bar_width) / 2), width=units(bar_width),
            slot_x=units(slot_x), slot_width=units(slot), label_x=units(slot_x + slot / 2),
            label=short_date(period.first) if labelled else None, minor=labelled and (number // every) % 2 == 1,
            title=f"{period_title(period, kind)}: {amount(measure_of(total, measure), measure)}, "
                  f"{total.runs:,} run{'s' if total.runs != 1 else ''}",
            segments=segments,
        ))
    ticks = [Tick(units(Decimal(BASELINE) - height_of(value)), axis_label(value, measure)) for value in tick_values]
    return Chart(title=title_of(report), description=description_of(report), bars=bars, ticks=ticks)
