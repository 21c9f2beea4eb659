"""A run's detail page; each tab's panel is a fragment of the same template, fetched when chosen."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, request
from flask_login import current_user
from werkzeug import Response

from .. import queries, rendering
from ..errors import error_response
from ..htmx import is_htmx, render_fragment, render_page
from . import bp
from .tabs import BadTab, NoSuchTab, Tab, find_tab, tabs_for

DETAIL_TEMPLATE = "artifacts/detail.html"
LONG_INPUT_CHARS = 600


@bp.errorhandler(BadTab)
def bad_tab(error: BadTab) -> Response:
    """A malformed tab or part name is a 400."""
    return error_response(400, str(error))


@bp.errorhandler(NoSuchTab)
def no_such_tab(error: NoSuchTab) -> Response:
    """A step number the run does not have is a 404."""
    return error_response(404, str(error))


def panel_context(run_id: str, tab: Tab) -> dict[str, Any]:
    """One tab's panel: the start of its output rendered (cached), how much is hidden, the raw text."""
    limit = current_app.config["RENDER_LIMIT_BYTES"]
    # limit + 1 characters always cover limit + 1 bytes, so the truncation can tell an output
    # of exactly `limit` bytes from a longer one it must cut.
    output = queries.output_text(current_user, run_id, tab.number, max_chars=limit + 1)
    if output is None:
        abort(404)
    to_render, cut_bytes = rendering.truncate_for_render(output.text, limit)
    shown_bytes = len(output.text.encode()) - cut_bytes
    return {
        "tab": tab,
        # The raw view shows exactly the stored bytes that are shown, without a closing fence
        # that truncation may have added for the renderer.
        "raw": output.text.encode()[:shown_bytes].decode(),
        "rendered": rendering.render_cached(f"{run_id}:{tab.key}:{limit}", to_render),
        "hidden_bytes": output.total_bytes - shown_bytes,
        "total_bytes": output.total_bytes,
    }


@bp.get("/artifacts/<id:run_id>")
def detail(run_id: str) -> Response:
    """The run's page with the active tab's panel; htmx asking for a tab gets only that panel."""
    found = queries.run_summary(current_user, run_id)
    if found is None:
        abort(404)
    run, pipeline_name = found
    tabs = tabs_for(queries.step_headers(current_user, run_id))
    active = find_tab(tabs, request.args.get("tab"))
    panel = panel_context(run_id, active)
    if is_htmx():
        return render_fragment(DETAIL_TEMPLATE, "tab_panel", run=run, **panel)
    return render_page(
        DETAIL_TEMPLATE, run=run, pipeline_name=pipeline_name, tabs=tabs, active=active,
        long_input=len(run.input) > LONG_INPUT_CHARS, **panel,
    )
