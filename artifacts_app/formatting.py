"""Jinja filters for numbers, money and time: one place decides how each reads."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from flask import Flask

from .pricing import format_cost, format_tokens
from .types import utcnow

UNITS = (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400),
         ("hour", 3600), ("minute", 60))


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
    elapsed = end - start
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


def exact_count(n: int | None) -> str:
    """A token count with separators: "12,345 tokens"."""
    return "unknown" if n is None else f"{n:,} tokens"


def iso(moment: datetime | None) -> str:
    """ISO 8601 for <time datetime>."""
    return "" if moment is None else moment.isoformat()


def register_filters(app: Flask) -> None:
    """Make the filters available to every template."""
    app.jinja_env.filters.update(
        cost=format_cost, tokens=format_tokens, exact_cost=exact_cost, exact_count=exact_count,
        relative_time=relative_time, duration=duration, iso=iso,
    )
