"""Paging through runs, for the list page, the API and the exports: filters from the query string,
the opaque keyset cursor, and the one next-page helper."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.datastructures import MultiDict

from . import limits
from .filters import DEFAULT_SORT, SORTS, STATUS_CHOICES, Cursor, ListFilters, SortValue
from .schemas import Label

PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
# How many rows a page may render at once to restore a place far down the list (`shown=`).
MAX_SHOWN = 500
LIST_PARAMS = ("pipeline", "model", "tag")
SINGLE_PARAMS = ("q", "status", "from", "to", "sort")
META_PREFIX = "meta."
MAX_FILTER_LENGTH = 200
MAX_QUERY_LENGTH = 500
MAX_VALUES = 20  # of one repeated parameter, and of meta.* parameters
COUNT_DIGITS = re.compile(r"[1-9][0-9]{0,8}")  # no leading zeros, as a person writes a count


R = TypeVar("R")


class BadListRequest(ValueError):
    """A filter, cursor or limit that cannot be used; the message says which and why, `field` names
    the parameter (so a form can show the message beside it)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


EARLIEST_DATE = date(1970, 1, 1)
LATEST_DATE = date(9998, 12, 31)  # the range end is the next day, which must still be a date


def parse_date(name: str, value: str) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise BadListRequest(f"{name} must be a date like 2025-11-30", name) from None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise BadListRequest(f"{name} must be between {EARLIEST_DATE} and {LATEST_DATE}", name)
    return day


def checked(name: str, value: str, most: int = MAX_FILTER_LENGTH) -> str:
    """A parameter's value, stripped; too long or with control characters is a BadListRequest."""
    value = value.strip()
    if len(value) > most:
        raise BadListRequest(f"{name} is too long (at most {most} characters)", name)
    if any(ord(char) < 0x20 for char in value):
        # No name, tag or search holds control characters (PostgreSQL refuses NUL outright).
        raise BadListRequest(f"{name} must not contain control characters", name)
    return value


def values_of(args: MultiDict[str, str], name: str) -> tuple[str, ...]:
    """A repeatable parameter's distinct non-empty values, in the order given."""
    values = [checked(name, value) for value in args.getlist(name)]
    values = list(dict.fromkeys(value for value in values if value))
    if len(values) > MAX_VALUES:
        raise BadListRequest(f"{name} may be given at most {MAX_VALUES} times", name)
    return tuple(values)


def metadata_of(args: MultiDict[str, str]) -> tuple[tuple[str, str], ...]:
    """`meta.KEY=VALUE` parameters, sorted by key; a key given twice must match both values, which
    no run does, so it is refused as a mistake."""
    pairs: dict[str, str] = {}
    for name, value in args.items(multi=True):
        if not name.startswith(META_PREFIX):
            continue
        key = name[len(META_PREFIX):]
        # The same rules as the API's (schemas.Label), so every key a run can carry can be asked for.
        if not key or len(key) > limits.value("MAX_LABEL_LENGTH") or not set(key) <= Label.KEY_CHARS:
            raise BadListRequest(f"{name}: a metadata key uses only letters, digits and _ . : -", name)
        value = checked(name, value, limits.value("MAX_METADATA_CHARS"))
        if not value:
            continue
        if key in pairs and pairs[key] != value:
            raise BadListRequest(f"{name} is given twice with different values", name)
        pairs[key] = value
    if len(pairs) > MAX_VALUES:
        raise BadListRequest(f"at most {MAX_VALUES} meta.* filters", "meta")
    return tuple(sorted(pairs.items()))


def parse_filters(args: MultiDict[str, str]) -> ListFilters:
    """Filters from the query string; what each parameter does is in the API's document (openapi.py)."""
    single = {name: checked(name, args.get(name, ""), MAX_QUERY_LENGTH if name == "q" else MAX_FILTER_LENGTH)
              for name in SINGLE_PARAMS}
    status = single["status"]
    if status == "all":
        status = ""  # the earlier name of the default, kept so old links still work
    if status not in STATUS_CHOICES:
        raise BadListRequest(f"status must be one of {', '.join(choice for choice in STATUS_CHOICES if choice)}",
                             "status")
    sort = single["sort"] or DEFAULT_SORT
    if sort not in SORTS:
        raise BadListRequest(f"sort must be one of {', '.join(SORTS)}", "sort")
    if sort == "relevance" and not single["q"]:
        sort = DEFAULT_SORT  # relevance ranks a search; without one the list is newest first
    filters = ListFilters(
        pipelines=values_of(args, "pipeline"),
        models=values_of(args, "model"),
        status=status,
        tags=values_of(args, "tag"),
        metadata=metadata_of(args),
        listed_from=parse_date("from", single["from"]),
        listed_to=parse_date("to", single["to"]),
        query=single["q"],
        sort=sort,
    )
    if filters.listed_from and filters.listed_to and filters.listed_from > filters.listed_to:
        raise BadListRequest("from must not be after to", "to")
    return filters


def parse_count(args: MultiDict[str, str], name: str, default: int, most: int) -> int:
    raw = args.get(name, "")
    if not raw:
        return default
    # ASCII digits only: str.isdigit() also accepts "²" and "①", which int() refuses.
    if not COUNT_DIGITS.fullmatch(raw) or not 1 <= int(raw) <= most:
        raise BadListRequest(f"{name} must be a whole number from 1 to {most}", name)
    return int(raw)


def parse_limit(args: MultiDict[str, str]) -> int:
    """The page size: 25 unless `limit` asks for 1 to 100."""
    return parse_count(args, "limit", PAGE_SIZE, MAX_PAGE_SIZE)


def parse_shown(args: MultiDict[str, str]) -> int | None:
    """`shown=N`: how many rows the list had loaded (so a reload or Back renders as many), at most 500."""
    return parse_count(args, "shown", 0, MAX_SHOWN) or None


def serializer() -> URLSafeSerializer:
    # Signed, not encrypted: the cursor is opaque to clients and tampering is detected.
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="artifact-list-cursor")


def cursor_after(row: Any, filters: ListFilters) -> Cursor:
    """The keyset position just after `row`: a list row (its `sort_key` and id)."""
    return Cursor(value=row.sort_key, run_id=row.id, filters=filters)


def next_page(rows: Sequence[R], limit: int, filters: ListFilters) -> tuple[Sequence[R], Cursor | None]:
    """Rows fetched with `limit + 1`: the page to show, and the cursor after it when there is more."""
    if len(rows) <= limit:
        return rows, None
    shown = rows[:limit]
    return shown, cursor_after(shown[-1], filters)


def sort_value_text(value: SortValue) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def sort_value_from(sort: str, text: str) -> SortValue:
    """A cursor's sort value read back as the type its order compares."""
    if sort in ("newest", "oldest"):
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError("a cursor's time has a time zone")
        return moment
    if sort in ("cost", "relevance"):
        number = Decimal(text)
        if not number.is_finite():
            raise ValueError("not a number")
        return number
    return int(text)


def encode_cursor(cursor: Cursor) -> str:
    """An opaque token for "the page after this row, under these filters"."""
    payload: dict[str, Any] = {"v": sort_value_text(cursor.value), "i": cursor.run_id,
                               "f": cursor.filters.as_params()}
    return serializer().dumps(payload)


def decode_cursor(token: str) -> Cursor:
    """The cursor a token stands for; a malformed or tampered token is a BadListRequest."""
    invalid = BadListRequest("cursor is not valid; start again from the first page", "cursor")
    try:
        payload = serializer().loads(token)
        filters = parse_filters(MultiDict(payload["f"]))
        value = sort_value_from(filters.sort, payload["v"])
        run_id = payload["i"]
    except (BadSignature, KeyError, TypeError, ValueError, InvalidOperation, BadListRequest):
        raise invalid from None
    if not isinstance(run_id, str):
        raise invalid
    return Cursor(value=value, run_id=run_id, filters=filters)


def has_filter_params(args: MultiDict[str, str]) -> bool:
    return any(args.get(name) for name in (*LIST_PARAMS, *SINGLE_PARAMS)) or any(
        name.startswith(META_PREFIX) for name in args
    )


def filters_and_cursor(args: MultiDict[str, str]) -> tuple[ListFilters, Cursor | None]:
    """The filters in force: from the cursor when there is one (page 2 stays filtered).

    Filter parameters given beside a cursor must agree with it; a mismatch is a 400, not a
    silent choice between them.
    """
    token = args.get("cursor", "")
    if not token:
        return parse_filters(args), None
    cursor = decode_cursor(token)
    if has_filter_params(args) and parse_filters(args) != cursor.filters:
        raise BadListRequest("the filters do not match the cursor; start again from the first page", "cursor")
    return cursor.filters, cursor
