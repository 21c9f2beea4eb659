"""How numbers, money and time read on a page (and the Jinja filters for them): one place decides."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

from flask import Flask
from markupsafe import Markup

from .types import utcnow

DASH = "\u2014"  # an em dash: "no value", distinct from a real zero
CENT = Decimal("0.01")

UNITS = (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400),
         ("hour", 3600), ("minute", 60))


def _plain(value: Decimal) -> str:
    """A Decimal in positional notation with trailing fractional zeros dropped."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_cost(cost: Decimal | int | None) -> str:
    """A cost for display: "$1,234.57" at a cent or more, two significant digits below it."""
    if cost is None:
        return DASH
    # Floats are banned for money: by the time one arrives here it has already been rounded wrongly.
    if isinstance(cost, bool) or not isinstance(cost, (Decimal, int)):
        raise TypeError(f"format_cost takes a Decimal or int, got {type(cost).__name__}")
    value = Decimal(cost)
    if not value.is_finite():
        raise ValueError(f"cannot format {value} as a cost")
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value == 0:
        return "$0.00"
    # Enough precision that quantize never fails for large amounts (default is 28 digits).
    with localcontext(Context(prec=max(28, value.adjusted() + 10), rounding=ROUND_HALF_UP)):
        if value < CENT:
            # Two significant digits: the quantum is one below the leading digit's place.
            small = value.quantize(Decimal(1).scaleb(value.adjusted() - 1), rounding=ROUND_HALF_UP)
            if small < CENT:
                return f"{sign}${_plain(small)}"
            value = small  # rounded up to a cent (0.00999 -> 0.01): show it as cents
        cents = value.quantize(CENT, rounding=ROUND_HALF_UP)
        return f"{sign}${cents:,.2f}"


TOKEN_UNITS = ((3, "K"), (6, "M"), (9, "B"), (12, "T"))


def format_tokens(n: int | None) -> str:
    """A token count for display: 950, 1.1K, 12.3K, 1M, 3.4M, 2.5B."""
    if n is None:
        return DASH
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"format_tokens takes an int, got {type(n).__name__}")
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n < 1000:
        return f"{sign}{n}"
    with localcontext(Context(prec=max(28, len(str(n)) + 2), rounding=ROUND_HALF_UP)):
        for places, unit in TOKEN_UNITS:  # noqa: B007  (unit is read after the loop)
            scaled = Decimal(n).scaleb(-places).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
            # The unit is chosen after rounding, so 999,999 becomes "1M" and never "1000K".
            if scaled < 1000:
                break
    # Past the largest unit the number just grows: "12,345.6T".
    return f"{sign}{scaled:,f}".removesuffix(".0") + unit


def relative_time(moment: datetime | None, now: datetime | None = None) -> str:
    """"3 hours ago"; the exact time goes in the <time datetime> beside it."""
    if moment is None:
        return "—"
    seconds = int(((now or utcnow()) - moment).total_seconds())
    if seconds < 0:
        return "in the future"
    if seconds < 60:
        return "just now"
    for name, size in UNITS:
        if seconds >= size:
            count = seconds // size
            return f"{count} {name}{'s' if count != 1 else ''} ago"
    return "just now"


def duration(start: datetime | None, end: datetime | None) -> str:
    """How long a run took: "850 ms", "42 s", "3 min 5 s", "2 h 4 min"."""
    if start is None or end is None:
        return "—"
    return format_elapsed(end - start)


def format_elapsed(elapsed: timedelta) -> str:
    """A length of time as duration() shows it; "—" for a negative one."""
    if elapsed < timedelta(0):
        return "—"
    if elapsed < timedelta(seconds=1):
        return f"{elapsed.microseconds // 1000} ms"
    seconds = int(elapsed.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def exact_cost(cost: Decimal | None) -> str:
    """The stored amount in full, for a title attribute: "$0.000000500000"."""
    return "no price known" if cost is None else f"${cost:f}"


def plain_cost(cost: Decimal | None) -> str:
    """The stored amount in full, without trailing zeros: "$0.0403625" (two close costs told apart)."""
    return DASH if cost is None else f"${_plain(cost)}"


def exact_count(n: int | None) -> str:
    """A token count with separators: "12,345 tokens"."""
    return "unknown" if n is None else f"{n:,} tokens"


def iso(moment: datetime | None) -> str:
    """ISO 8601 for <time datetime>."""
    return "" if moment is None else moment.isoformat()


TIME_FORMATS = {"minute": "%Y-%m-%d %H:%M", "second": "%Y-%m-%d %H:%M:%S"}


def when(moment: datetime | None, precision: str = "minute", *, zone: bool = True) -> str:
    """A moment as people read it here: "2025-11-30 12:00 UTC" (or to the second); "—" when unknown."""
    if moment is None:
        return DASH
    text = moment.strftime(TIME_FORMATS[precision])
    return f"{text} UTC" if zone else text


def _in_utc(moment: datetime) -> datetime:
    """The same instant in UTC (a naive value is taken to be UTC already, as the database keeps it)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def time_tag(moment: datetime | None, precision: str = "minute") -> Markup:
    """A moment as a <time>: its ISO form, the UTC time to the second on hover, and the UTC text.

    static/local_times.js rewrites the text into the reader's time zone and keeps the UTC title;
    without JavaScript the UTC text stays. "—" when unknown.
    """
    if moment is None:
        return Markup(DASH)
    moment = _in_utc(moment)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        moment.isoformat(), when(moment, "second"), when(moment, precision)
    )


def relative_time_tag(moment: datetime | None, now: datetime | None = None) -> Markup:
    """"3 hours ago" as a <time> whose title is the UTC time (local_times.js adds the local one)."""
    if moment is None:
        return Markup(DASH)
    moment = _in_utc(moment)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        moment.isoformat(), when(moment, "second"), relative_time(moment, now)
    )


def register_filters(app: Flask) -> None:
    """Make the filters available to every template."""
    app.jinja_env.filters.update(
        cost=format_cost, tokens=format_tokens, exact_cost=exact_cost, plain_cost=plain_cost, exact_count=exact_count,
        relative_time=relative_time, duration=duration, elapsed=format_elapsed, iso=iso, when=when,
        time_tag=time_tag, relative_time_tag=relative_time_tag,
    )
