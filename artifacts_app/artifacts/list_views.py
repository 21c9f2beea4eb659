"""The artifact list: the page, its htmx fragments (results, next rows, one row, totals), and exports."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import replace
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import abort, current_app, redirect, request, url_for
from flask_login import current_user
from werkzeug import Response
from werkzeug.datastructures import MultiDict

from .. import queries, search
from ..errors import error_response
from ..filters import SORTS, STATUS_CHOICES, ListFilters
from ..htmx import is_htmx, render_fragment, render_page
from ..paging import (
    MAX_SHOWN,
    BadListRequest,
    encode_cursor,
    filters_and_cursor,
    next_page,
    parse_count,
    parse_limit,
    parse_shown,
)
from ..types import utcnow
from . import bp, exports

LIST_TEMPLATE = "artifacts/list.html"
# The parameters the filter form has a place for: a message about one of them is shown beside it.
FORM_FIELDS = ("q", "pipeline", "model", "tag", "status", "from", "to", "sort")
SORT_LABELS = {
    "newest": "Newest first", "oldest": "Oldest first", "cost": "Highest cost", "tokens": "Most tokens",
    "duration": "Longest", "relevance": "Best match (with a search)",
}
DEFAULT_POLL_SECONDS = 3


@bp.errorhandler(BadListRequest)
def bad_list_request(error: BadListRequest) -> Response:
    """A bad filter, limit or cursor is the person's 400, never a 500: the list page shows the form
    with the message beside the field at fault; a cursor's or the totals' fragment gets the error
    fragment."""
    list_page = request.endpoint == "artifacts.index" or (request.endpoint == "artifacts.totals" and not is_htmx())
    if not list_page or (is_htmx() and "cursor" in request.args):
        return error_response(400, str(error))
    context: dict[str, Any] = {
        "rows": [], "next_url": None, "has_runs": True, "filters": ListFilters(), "snippets": {},
        "error": str(error), "error_field": error.field, "now": utcnow(), "poll_seconds": poll_seconds(),
        "totals_url": None, "export_params": {}, "list_query": "", "form_fields": FORM_FIELDS,
    }
    if is_htmx():
        # base.html's htmx-config swaps 4xx responses (each fragment route answers them with a
        # deliberate fragment), so a 400 keeps its honest status and still shows the message.
        # The bad URL is not pushed: history keeps the last list that could be shown.
        response = render_fragment(LIST_TEMPLATE, "results", status=400, oob_errors=True, **context)
        response.headers["HX-Push-Url"] = "false"
        return response
    return render_page(LIST_TEMPLATE, status=400, **page_context(context, request.args))


@bp.get("/")
def home() -> Response:
    """The front door: the artifact list."""
    return redirect(url_for("artifacts.index"))


def poll_seconds() -> int:
    """How often an open run's row, or its page, asks for its state (LIST_POLL_SECONDS; tests make it short)."""
    return int(current_app.config.get("LIST_POLL_SECONDS", DEFAULT_POLL_SECONDS))


def list_url(filters: ListFilters, **extra: Any) -> str:
    """The list under these filters, empty parameters left out (what goes into the address bar)."""
    if request.args.get("limit"):
        # The page explaining a bad limit links to lists without it.
        with suppress(BadListRequest):
            extra.setdefault("limit", parse_limit(request.args))
    return url_for("artifacts.index", **dict[str, Any](filters.as_params()), **extra)


def list_context(filters: ListFilters, rows: list[Any], limit: int, seen: int = 0) -> dict[str, Any]:
    """What the list template needs for one page of rows; `seen` rows are already above them."""
    shown, after = next_page(rows, limit, filters)
    rows = list(shown)
    next_url = None
    if after is not None:
        params: dict[str, Any] = {"seen": seen + len(rows)}
        if request.args.get("limit"):
            params["limit"] = parse_limit(request.args)
        params["cursor"] = encode_cursor(after)
        next_url = url_for("artifacts.index", **params)
    first_page_empty = not rows and "cursor" not in request.args
    return {
        "rows": rows,
        "next_url": next_url,
        # Only an empty first page asks: is the list empty, or are the filters too narrow?
        "has_runs": queries.run_count(current_user) > 0 if first_page_empty else True,
        "filters": filters,
        "snippets": search.snippets(current_user, filters.query, [row.id for row in rows]) if filters.query else {},
        "now": utcnow(),
        "poll_seconds": poll_seconds(),
        "totals_url": url_for("artifacts.totals", **dict[str, Any](filters.as_params())),
        "export_params": filters.as_params(),
        "list_query": urlencode(filters.as_params(), doseq=True),  # where deleting ticked runs comes back to
        "form_fields": FORM_FIELDS,
    }


@bp.get("/artifacts")
def index() -> Response:
    """The artifact list. htmx gets the results block (new filters) or the next rows (cursor);
    `shown=N` renders the first N rows at once (a reload or Back after scrolling down)."""
    filters, cursor = filters_and_cursor(request.args)
    limit = parse_limit(request.args)
    if cursor is None:
        first = parse_shown(request.args) or limit
        context = list_context(filters, queries.list_runs(current_user, filters, None, first + 1), first)
        if is_htmx():
            response = render_fragment(LIST_TEMPLATE, "results", oob_errors=True, **context)
            response.headers["HX-Push-Url"] = list_url(filters)
            return response
        return render_page(LIST_TEMPLATE, **page_context(context, filters.as_params()))
    seen = parse_count(request.args, "seen", 0, 10**9 - 1)
    context = list_context(filters, queries.list_runs(current_user, filters, cursor, limit + 1), limit, seen)
    if is_htmx():
        response = render_fragment(LIST_TEMPLATE, "artifact_rows", loaded=len(context["rows"]), **context)
        # The address records how far the list was loaded, so Back and reload show as many rows.
        response.headers["HX-Replace-Url"] = list_url(filters, shown=min(seen + len(context["rows"]), MAX_SHOWN))
        return response
    return render_page(LIST_TEMPLATE, **page_context(context, filters.as_params()))


def form_values(args: MultiDict[str, str] | dict[str, str | list[str]]) -> dict[str, list[str]]:
    """Each form field's values as given, so a refused form shows what the person asked for."""
    if isinstance(args, MultiDict):
        return {name: [value for value in args.getlist(name) if value] for name in args}
    return {name: value if isinstance(value, list) else [value] for name, value in args.items()}


def date_presets(filters: ListFilters) -> list[dict[str, Any]]:
    """Today, the last 7 and the last 30 days (UTC days, today included) as links under these filters."""
    today = utcnow().date()
    presets = []
    for label, days in (("Today", 1), ("7 days", 7), ("30 days", 30)):
        start: date = today - timedelta(days=days - 1)
        chosen = replace(filters, listed_from=start, listed_to=today)
        presets.append({
            "label": label, "from": start.isoformat(), "to": today.isoformat(), "url": list_url(chosen),
            "current": filters.listed_from == start and filters.listed_to == today,
        })
    return presets


def menu(names: list[str], chosen: list[str]) -> list[str]:
    """A filter menu's choices: the facet's names, and any chosen value they lack (a model family
    such as "gpt-4o", or a name whose runs are gone), so submitting the form keeps every filter."""
    return names + [name for name in chosen if name not in names]


def filter_menus(shown: dict[str, list[str]]) -> dict[str, list[str]]:
    """The filter form's choices, for the list and the usage page: the pipeline, model and tag menus
    (from the facets, never a scan of the runs) and the statuses."""
    return {
        "pipeline_options": menu(queries.pipeline_names(current_user), shown.get("pipeline", [])),
        "model_options": menu(queries.model_names(current_user), shown.get("model", [])),
        "tag_options": menu(queries.tag_names(current_user), shown.get("tag", [])),
        "statuses": list(STATUS_CHOICES),
    }


def page_context(context: dict[str, Any], values: MultiDict[str, str] | dict[str, str | list[str]],
                 totals: queries.Totals | None = None) -> dict[str, Any]:
    """The full page adds the filter form: its menus (from the facets, never a scan of the runs),
    the values it shows and the date presets."""
    filters: ListFilters = context["filters"]
    shown = form_values(values)
    return {
        **context,
        "values": shown,
        "menus": filter_menus(shown),
        "sorts": [(sort, SORT_LABELS[sort]) for sort in SORTS],
        "presets": date_presets(filters),
        "totals": totals,
    }


@bp.get("/artifacts/<id:run_id>/row")
def run_row(run_id: str) -> Response:
    """One row of the list, for an open run refreshing itself; a direct visit goes to the run."""
    row = queries.list_row(current_user, run_id)
    if row is None:
        abort(404)
    if not is_htmx():
        response = redirect(url_for("artifacts.detail", run_id=run_id))
        response.vary.add("HX-Request")
        return response
    return render_fragment(LIST_TEMPLATE, "run_row", run=row, snippets={}, now=utcnow(), poll_seconds=poll_seconds())


@bp.get("/artifacts/totals")
def totals() -> Response:
    """The totals for the filtered list; a direct visit gets the whole list with totals in place."""
    filters, _ = filters_and_cursor(request.args)
    summary = queries.run_totals(current_user, filters)
    if is_htmx():
        return render_fragment(LIST_TEMPLATE, "totals_block", totals=summary, filters=filters)
    limit = parse_limit(request.args)
    context = list_context(filters, queries.list_runs(current_user, filters, None, limit + 1), limit)
    return render_page(LIST_TEMPLATE, **page_context(context, filters.as_params(), summary))


@bp.get("/artifacts/export")
def export() -> Response:
    """The filtered list as CSV or JSONL, streamed in keyset batches."""
    filters, _ = filters_and_cursor(request.args)
    kind = request.args.get("format", "csv")
    if kind not in exports.FORMATS:
        abort(400, description=f"format must be one of {', '.join(exports.FORMATS)}")
    return exports.stream(current_user, filters, kind)
