"""The artifact list: the page, its htmx fragments (results, next rows, totals), and exports."""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, request, url_for
from flask_login import current_user
from werkzeug import Response

from .. import queries
from ..errors import error_response
from ..filters import STATUS_CHOICES, ListFilters
from ..htmx import is_htmx, render_fragment, render_page
from ..paging import (
    BadListRequest,
    encode_cursor,
    filters_and_cursor,
    next_page,
    parse_limit,
)
from . import bp, exports

LIST_TEMPLATE = "artifacts/list.html"


@bp.errorhandler(BadListRequest)
def bad_list_request(error: BadListRequest) -> Response:
    """A bad filter, limit or cursor is the person's 400, never a 500."""
    return error_response(400, str(error))


@bp.get("/")
def home() -> Response:
    """The front door: the artifact list."""
    return redirect(url_for("artifacts.index"))


def list_context(filters: ListFilters, rows: list[Any], limit: int) -> dict[str, Any]:
    """What the list template needs for one page of rows."""
    shown, after = next_page(rows, limit, filters)
    rows = list(shown)
    next_url = None
    if after is not None:
        params: dict[str, Any] = {"cursor": encode_cursor(after)}
        if request.args.get("limit"):
            params["limit"] = limit
        next_url = url_for("artifacts.index", **params)
    first_page_empty = not rows and "cursor" not in request.args
    return {
        "rows": rows,
        "next_url": next_url,
        # Only an empty first page asks: is the list empty, or are the filters too narrow?
        "has_runs": queries.run_count(current_user) > 0 if first_page_empty else True,
        "filters": filters,
        "totals_url": url_for("artifacts.totals", **dict[str, Any](filters.as_params())),
        "export_params": filters.as_params(),
    }


@bp.get("/artifacts")
def index() -> Response:
    """The artifact list. htmx gets the results block (new filters) or the next rows (cursor)."""
    filters, cursor = filters_and_cursor(request.args)
    limit = parse_limit(request.args)
    rows = queries.list_runs(current_user, filters, cursor, limit + 1)
    context = list_context(filters, rows, limit)
    if is_htmx():
        block = "artifact_rows" if cursor else "results"
        return render_fragment(LIST_TEMPLATE, block, **context)
    return render_page(LIST_TEMPLATE, **page_context(filters, context))


def page_context(filters: ListFilters, context: dict[str, Any], totals: queries.Totals | None = None) -> dict[str, Any]:
    """The full page adds the filter menus, and whether the user has any runs at all."""
    return {
        **context,
        "pipelines": queries.pipeline_names(current_user),
        "models": queries.model_names(current_user),
        "tags": queries.tag_names(current_user),
        "statuses": list(STATUS_CHOICES),
        "totals": totals,
    }


@bp.get("/artifacts/totals")
def totals() -> Response:
    """The totals for the filtered list; a direct visit gets the whole list with totals in place."""
    filters, _ = filters_and_cursor(request.args)
    summary = queries.run_totals(current_user, filters)
    if is_htmx():
        return render_fragment(LIST_TEMPLATE, "totals_block", totals=summary, filters=filters)
    limit = parse_limit(request.args)
    context = list_context(filters, queries.list_runs(current_user, filters, None, limit + 1), limit)
    return render_page(LIST_TEMPLATE, **page_context(filters, context, summary))


@bp.get("/artifacts/export")
def export() -> Response:
    """The filtered list as CSV or JSONL, streamed in keyset batches."""
    filters, _ = filters_and_cursor(request.args)
    kind = request.args.get("format", "csv")
    if kind not in exports.FORMATS:
        abort(400, description=f"format must be one of {', '.join(exports.FORMATS)}")
    return exports.stream(current_user, filters, kind)

