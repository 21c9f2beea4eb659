"""Deleting runs from the web: one from its page, several ticked in the list.

GET /artifacts/delete?id=…&id=… asks first, saying what will go (a page, or for htmx the
confirmation fragment shown above the list); POST /artifacts/delete (the form's CSRF token checked
app-wide) deletes them and goes back to the list, or for htmx answers with the rows to drop, the
totals to reload and a message. Every id must be one of the user's runs (else 404, and nothing is
deleted); at most MAX_SELECTED at a time; a malformed or missing id is a 400.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from .. import deleting, queries
from ..converters import IdConverter
from ..errors import error_response
from ..extensions import db
from ..htmx import is_htmx, render_fragment, render_page
from . import bp
from .list_views import FORM_FIELDS

TEMPLATE = "artifacts/delete.html"
MAX_SELECTED = 100  # a page of the list and then some; more is a 400, not a long transaction


def selected_ids() -> list[str]:
    """The `id` values of the request, each a run id, without repeats: 400 when none, too many or malformed."""
    ids = list(dict.fromkeys(request.values.getlist("id")))
    if not ids:
        abort(error_response(400, "Choose at least one run to delete."))
    if len(ids) > MAX_SELECTED:
        abort(error_response(400, f"At most {MAX_SELECTED} runs can be deleted at a time."))
    if not all(re.fullmatch(IdConverter.regex, run_id) for run_id in ids):
        abort(error_response(400, "That is not a run id."))
    return ids


def list_query() -> str:
    """The list's filters the selection was made under (the `back` field), keeping only the list's
    own parameters, so going back lands on the same list and nowhere else."""
    given = parse_qsl(request.values.get("back", ""), keep_blank_values=False)
    return urlencode([(key, value) for key, value in given if key in FORM_FIELDS or key.startswith("meta.")])


def back_url(query: str) -> str:
    return url_for("artifacts.index") + (f"?{query}" if query else "")


@bp.get("/artifacts/delete")
def confirm_delete() -> Response:
    """What deleting these runs removes: each run, its steps and cost, and the sum."""
    ids = selected_ids()
    runs = queries.list_rows_by_id(current_user, ids)
    if len(runs) != len(ids):
        abort(404)
    context: dict[str, Any] = {
        "runs": runs, "back": list_query(),
        "steps": sum(run.step_count for run in runs),
        "cost": sum((run.cost for run in runs if run.cost is not None), start=Decimal(0)),
    }
    context["back_url"] = back_url(context["back"])
    if is_htmx():
        return render_fragment(TEMPLATE, "confirm", inline=True, **context)
    return render_page(TEMPLATE, inline=False, **context)


@bp.post("/artifacts/delete")
def delete() -> Response:
    """Delete the runs (all of them or, when one is not the user's, none)."""
    ids = selected_ids()
    deleted = deleting.delete_runs(current_user, ids)
    if len(deleted) != len(ids):
        db.session.rollback()
        abort(404)
    db.session.commit()
    message = f"Deleted {len(deleted)} run{'s' if len(deleted) != 1 else ''}."
    query = list_query()
    if is_htmx():
        totals_url = url_for("artifacts.totals") + (f"?{query}" if query else "")
        return render_fragment(TEMPLATE, "deleted", deleted=deleted, message=message, totals_url=totals_url)
    flash(message)
    return redirect(back_url(query), 303)
