"""Paging through runs, for the list page, the API and the exports: filters from the query string,
the opaque keyset cursor, and the one next-page helper."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.datastructures import MultiDict

from .filters import DEFAULT_STATUS, STATUS_CHOICES, Cursor, ListFilters

PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
FILTER_PARAMS = ("pipeline", "model", "status", "from", "to")
MAX_FILTER_LENGTH = 200
LIMIT_DIGITS = re.compile(r"[0-9]{1,3}")


R = TypeVar("R")


class BadListRequest(ValueError):
    """A filter, cursor or limit that cannot be used; the message says which and why."""


EARLIEST_DATE = date(1970, 1, 1)
LATEST_DATE = date(9998, 12, 31)  # the range end is the next day, which must still be a date


def parse_date(name: str, value: str) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise BadListRequest(f"{name} must be a date like 2025-11-30") from None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise BadListRequest(f"{name} must be between {EARLIEST_DATE} and {LATEST_DATE}")
    return day


def parse_filters(args: MultiDict[str, str]) -> ListFilters:
    """Filters from the query string: pipeline and model by exact name, status, a date range."""
    values = {name: args.get(name, "").strip() for name in FILTER_PARAMS}
    for name, value in values.items():
        if len(value) > MAX_FILTER_LENGTH:
            raise BadListRequest(f"{name} is too long")
        if any(ord(char) < 0x20 for char in value):
            # No pipeline or model name holds control characters (PostgreSQL refuses NUL outright).
            raise BadListRequest(f"{name} must not contain control characters")
    status = values["status"] or DEFAULT_STATUS
    if status not in STATUS_CHOICES:
        raise BadListRequest(f"status must be one of {', '.join(STATUS_CHOICES)}")
    filters = ListFilters(
        pipeline=values["pipeline"],
        model=values["model"],
        status=status,
        completed_from=parse_date("from", values["from"]),
        completed_to=parse_date("to", values["to"]),
    )
    if filters.completed_from and filters.completed_to and filters.completed_from > filters.completed_to:
        raise BadListRequest("from must not be after to")
    return filters


def parse_limit(args: MultiDict[str, str]) -> int:
    """The page size: 25 unless `limit` asks for 1 to 100."""
    raw = args.get("limit", "")
    if not raw:
        return PAGE_SIZE
    # ASCII digits only: str.isdigit() also accepts "²" and "①", which int() refuses.
    if not LIMIT_DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise BadListRequest(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(raw)


def serializer() -> URLSafeSerializer:
    # Signed, not encrypted: the cursor is opaque to clients and tampering is detected.
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="artifact-list-cursor")


def cursor_after(row: Any, filters: ListFilters) -> Cursor:
    """The keyset position just after `row` (a finished run, or a list row: completed_at and id)."""
    if row.completed_at is None:
        raise ValueError("only finished runs have a place in the list's keyset order")
    return Cursor(completed_at=row.completed_at, run_id=row.id, filters=filters)


def next_page(rows: Sequence[R], limit: int, filters: ListFilters) -> tuple[Sequence[R], Cursor | None]:
    """Rows fetched with `limit + 1`: the page to show, and the cursor after it when there is more."""
    if len(rows) <= limit:
        return rows, None
    shown = rows[:limit]
    return shown, cursor_after(shown[-1], filters)


def encode_cursor(cursor: Cursor) -> str:
    """An opaque token for "the page after this row, under these filters"."""
    payload: dict[str, Any] = {"t": cursor.completed_at.isoformat(), "i": cursor.run_id,
                               "f": cursor.filters.as_params()}
    return serializer().dumps(payload)


def decode_cursor(token: str) -> Cursor:
    """The cursor a token stands for; a malformed or tampered token is a BadListRequest."""
    try:
        payload = serializer().loads(token)
        completed_at = datetime.fromisoformat(payload["t"])
        run_id = payload["i"]
        filters = parse_filters(MultiDict(payload["f"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        raise BadListRequest("cursor is not valid; start again from the first page") from None
    if completed_at.tzinfo is None or not isinstance(run_id, str):
        raise BadListRequest("cursor is not valid; start again from the first page")
    return Cursor(completed_at=completed_at, run_id=run_id, filters=filters)


def filters_and_cursor(args: MultiDict[str, str]) -> tuple[ListFilters, Cursor | None]:
    """The filters in force: from the cursor when there is one (page 2 stays filtered).

    Filter parameters given beside a cursor must agree with it; a mismatch is a 400, not a
    silent choice between them.
    """
    token = args.get("cursor", "")
    if not token:
        return parse_filters(args), None
    cursor = decode_cursor(token)
    if any(args.get(name) for name in FILTER_PARAMS) and parse_filters(args) != cursor.filters:
        raise BadListRequest("the filters do not match the cursor; start again from the first page")
    return cursor.filters, cursor


