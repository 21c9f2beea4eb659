"""A run's detail page; each tab's panel is a fragment of the same template, fetched when chosen."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import abort, current_app, make_response, request
from flask_login import current_user
from jinja2_fragments.flask import render_block
from werkzeug import Response

from .. import queries, rendering
from ..errors import error_response
from ..htmx import is_htmx, render_fragment, render_page, vary_on_htmx
from ..models import PipelineRun
from ..statuses import FINISHED_STATUSES, RunStatus
from ..types import utcnow
from . import bp
from .list_views import poll_seconds
from .tabs import BadTab, NoSuchTab, Tab, find_tab, opening_tab, tabs_for

DETAIL_TEMPLATE = "artifacts/detail.html"
LONG_INPUT_CHARS = 600
STEP_COUNT = re.compile(r"0|[1-9][0-9]{0,5}")
RENDERED, RAW = "rendered", "raw"
VIEWS = (RENDERED, RAW)


class BadView(ValueError):
    """A ?view= that is neither "rendered" nor "raw"."""


@bp.errorhandler(BadTab)
def bad_tab(error: BadTab) -> Response:
    """A malformed tab or part name is a 400."""
    return error_response(400, str(error))


@bp.errorhandler(BadView)
def bad_view(error: BadView) -> Response:
    """A view that does not exist is a 400."""
    return error_response(400, str(error))


@bp.errorhandler(NoSuchTab)
def no_such_tab(error: NoSuchTab) -> Response:
    """A step number the run does not have is a 404."""
    return error_response(404, str(error))


def shown_part(read: Callable[[int], queries.OutputText | None]) -> rendering.FirstPart | None:
    """The part of a long text (an output, the input, the error) a page shows: its first
    RENDER_LIMIT_BYTES. `read(n)` fetches the text's first n characters and its size; None if absent."""
    limit = current_app.config["RENDER_LIMIT_BYTES"]
    # limit + 1 characters always cover limit + 1 bytes, so the cut can tell a text of exactly
    # `limit` bytes from a longer one it must cut.
    start = read(limit + 1)
    return None if start is None else rendering.first_part(start.text, start.total_bytes, limit)


def run_text_part(run_id: str, which: str) -> rendering.FirstPart | None:
    """The part of the run's input or error ("input" or "error") the page shows; None if it has none."""
    return shown_part(lambda chars: queries.run_text(current_user, run_id, which, chars))


def panel_context(run_id: str, tab: Tab, view: str = RENDERED,
                  run_error: rendering.FirstPart | None = None) -> dict[str, Any]:
    """One tab's panel in one view: the start of its output rendered (cached), or that start as raw
    text; how much is hidden; the run's error beside a failed step (`run_error`, when the caller has
    read it already). Only the view asked for is sent: the other is a request away."""
    output = shown_part(lambda chars: queries.output_text(current_user, run_id, tab.number, max_chars=chars))
    if output is None:
        abort(404)
    context: dict[str, Any] = {
        "tab": tab,
        "view": view,
        "output": output,
        "empty": output.total_bytes == 0,
        "hidden_bytes": output.hidden_bytes,
        "step_error": (run_error or run_text_part(run_id, "error")) if tab.failed else None,
    }
    if view == RAW:
        # Exactly the stored bytes that are shown, without a closing fence that truncation may
        # have added for the renderer.
        context["raw"] = output.text
    else:
        limit = current_app.config["RENDER_LIMIT_BYTES"]
        context["rendered"] = rendering.render_cached(
            rendering.panel_cache_key(run_id, tab.key, limit), output.for_render)
    return context


def view_asked() -> str:
    """The view ?view= names: "rendered" (the default) or "raw"; anything else is BadView."""
    view = request.args.get("view") or RENDERED
    if view not in VIEWS:
        raise BadView(f"{view!r} is not a view; use \"rendered\" or \"raw\"")
    return view


def run_end(run: PipelineRun) -> datetime | None:
    """Where the run's timeline ends: its completion, or now while it is still open."""
    if run.status in FINISHED_STATUSES:
        return run.completed_at
    return utcnow()


def page_context(run: PipelineRun, tabs: list[Tab]) -> dict[str, Any]:
    """What the page's live parts need besides the open tab: the failing step, the polling pace, when
    its cost was last recomputed (only a finished run's can have been)."""
    failing = next((tab for tab in tabs if tab.failed), None) if run.status == RunStatus.FAILED else None
    recomputed = queries.cost_recomputed(current_user, run.id) if run.status in FINISHED_STATUSES else None
    return {"failing": failing, "poll_seconds": poll_seconds(), "recomputed": recomputed}


@bp.get("/artifacts/<id:run_id>")
def detail(run_id: str) -> Response:
    """The run's page with the active tab's panel; htmx asking for a tab gets only that panel.

    Without ?tab= a failed run opens on the step that failed, any other on its final output.
    ?view=raw shows the panel's raw text instead of its rendered markdown.
    """
    # Only the full page shows the input and the error (their first parts); a tab's panel reads
    # the error only beside a failed step.
    found = queries.run_summary(current_user, run_id)
    if found is None:
        abort(404)
    run, pipeline_name = found
    tabs = tabs_for(queries.step_headers(current_user, run_id), run.created_at, run_end(run))
    key = request.args.get("tab")
    active = find_tab(tabs, key) if key else opening_tab(tabs, run.status)
    view = view_asked()
    if is_htmx():
        return render_fragment(DETAIL_TEMPLATE, "tab_panel", run=run, **panel_context(run_id, active, view))
    run_input = run_text_part(run_id, "input")
    if run_input is None:  # deleted since the summary was read
        abort(404)
    # Read once for the page's error and the failed step's panel beside it.
    run_error = run_text_part(run_id, "error")
    return render_page(
        DETAIL_TEMPLATE, run=run, pipeline_name=pipeline_name, tabs=tabs, active=active, run_input=run_input,
        long_input=run_input.hidden_bytes > 0 or len(run_input.text) > LONG_INPUT_CHARS,
        run_error=run_error, **page_context(run, tabs), **panel_context(run_id, active, view, run_error),
    )


@bp.get("/artifacts/<id:run_id>/live")
def live(run_id: str) -> Response:
    """What changed on an open run's page since it had `steps` steps: the new steps' tabs and
    panels, the run's facts, the timeline bars of the steps it shows (re-scaled to the run's time so
    far), and once it has finished, its final output and any error (out of band, so the open tab and
    the reader's place stay as they are). The answer for a finished run has no trigger, so polling
    stops. `steps` must be a whole number from 0 to the run's step count."""
    found = queries.run_summary(current_user, run_id)
    if found is None:
        abort(404)
    run, _ = found
    known = request.args.get("steps", "")
    if not STEP_COUNT.fullmatch(known):
        return error_response(400, "steps must be a whole number")
    tabs = tabs_for(queries.step_headers(current_user, run_id), run.created_at, run_end(run))
    if int(known) > len(tabs) - 1:
        return error_response(400, f"this run has {len(tabs) - 1} steps")
    finished = run.status in FINISHED_STATUSES
    context = {"run": run, "tabs": tabs, "shown_tabs": tabs[1:1 + int(known)], "new_tabs": tabs[1 + int(known):],
               "finished": finished, "oob": True,
               # An open run has no error yet: a poll reads it only once the run has ended.
               "run_error": run_text_part(run_id, "error") if finished else None,
               **page_context(run, tabs)}
    body = render_block(DETAIL_TEMPLATE, "live_update", **context)
    if finished:
        final = panel_context(run_id, tabs[0])
        body += render_block(DETAIL_TEMPLATE, "final_panel_oob", run=run, oob=True, **final)
    return vary_on_htmx(make_response(body))


