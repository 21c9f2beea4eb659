"""Comparing two of the user's runs: their facts side by side, then a diff of each pair of parts.

GET /artifacts/compare?a=ID&b=ID is the comparison; ?tab= names the pair of parts open (the final
output by default), and htmx asking for a pair gets only its panel. With ?a= alone it offers the
other run to choose, from recent runs of the same pipeline. The list's ticked rows arrive as
?id=X&id=Y and are sent on to ?a=older&b=newer. Either id not the user's is a 404, a malformed or
missing one a 400, and so are the same run twice and a pair that is not of the form comparing.py names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import abort, current_app, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from .. import comparing, diffing, queries
from ..comparing import BadPair, NoSuchPair, Pair
from ..converters import IdConverter
from ..errors import error_response
from ..filters import ListFilters
from ..htmx import is_htmx, render_fragment, render_page, vary_on_htmx
from ..models import PipelineRun
from ..queries import StepHeader
from . import bp

TEMPLATE = "artifacts/compare.html"
CHOICES = 20  # recent runs of the same pipeline offered to compare with


@bp.errorhandler(BadPair)
def bad_pair(error: BadPair) -> Response:
    """A malformed pair name is a 400."""
    return error_response(400, str(error))


@bp.errorhandler(NoSuchPair)
def no_such_pair(error: NoSuchPair) -> Response:
    """A pair of steps these runs do not have is a 404."""
    return error_response(404, str(error))


@dataclass(frozen=True)
class Side:
    """One of the two runs: its facts and its steps' headers (no input or output is read)."""

    run: PipelineRun
    pipeline_name: str
    steps: list[StepHeader]


def run_id_arg(name: str) -> str | None:
    """The run id in ?name=, None when absent; malformed is a 400."""
    value = request.args.get(name)
    if value is None:
        return None
    if not re.fullmatch(IdConverter.regex, value):
        abort(error_response(400, f"{name} is not a run id."))
    return value


def side(run_id: str) -> Side:
    """The user's run, or a 404."""
    found = queries.run_summary(current_user, run_id)
    if found is None:
        abort(404)
    run, pipeline_name = found
    return Side(run, pipeline_name, queries.step_headers(current_user, run_id))


def ticked_runs() -> Response:
    """Two runs ticked in the list: compared older first. For htmx (the list's selection form), the
    browser is told to go there (HX-Redirect): the comparison is a page, not a fragment of the list."""
    ids = list(dict.fromkeys(request.args.getlist("id")))
    if len(ids) != 2:
        abort(error_response(400, "Choose exactly two runs to compare."))
    if not all(re.fullmatch(IdConverter.regex, run_id) for run_id in ids):
        abort(error_response(400, "That is not a run id."))
    rows = queries.list_rows_by_id(current_user, ids)  # newest first
    if len(rows) != 2:
        abort(404)
    url = url_for("artifacts.compare", a=rows[1].id, b=rows[0].id)
    if is_htmx():
        return vary_on_htmx(Response(status=204, headers={"HX-Redirect": url}))
    return vary_on_htmx(redirect(url, 303))


def choose_other(old: Side) -> Response:
    """The page offering runs to compare `old` with: the pipeline's most recent others."""
    rows = queries.list_runs(current_user, ListFilters(pipelines=(old.pipeline_name,)), None, CHOICES + 1)
    choices = [row for row in rows if row.id != old.run.id][:CHOICES]
    return render_page(TEMPLATE, choosing=True, old=old, choices=choices)


def part_text(pair: Pair, which: Side, step: StepHeader | None, limit: int) -> tuple[str, int]:
    """The start of one side's part (at most limit + 1 characters) and its whole size in bytes;
    a step the run does not have is empty."""
    if pair.is_step and step is None:
        return "", 0
    if pair.key == comparing.INPUT:
        output = queries.run_text(current_user, which.run.id, "input", limit + 1)
    else:
        output = queries.output_text(current_user, which.run.id, step.number if step else None, max_chars=limit + 1)
    if output is None:
        abort(404)
    return output.text, output.total_bytes


def pair_context(pair: Pair, old: Side, new: Side) -> dict[str, Any]:
    """One pair's panel: the diff of the two parts' first COMPARE_LIMIT_CHARS characters."""
    limit = current_app.config["COMPARE_LIMIT_CHARS"]
    old_text, old_bytes = part_text(pair, old, pair.old, limit)
    new_text, new_bytes = part_text(pair, new, pair.new, limit)
    cut = len(old_text) > limit or len(new_text) > limit
    return {
        "pair": pair, "diff": diffing.diff_texts(old_text[:limit], new_text[:limit]), "cut": cut,
        "limit": limit, "diff_max_lines": diffing.MAX_LINES, "sizes": (old_bytes, new_bytes),
        "step_facts": comparing.step_facts(pair.old, pair.new) if pair.is_step else None,
    }


@bp.get("/artifacts/compare")
def compare() -> Response:
    """Two runs compared, or the choice of a second (see the module's docstring)."""
    if "id" in request.args:
        return ticked_runs()
    old_id, new_id = run_id_arg("a"), run_id_arg("b")
    if old_id is None:
        return error_response(400, "Say which runs to compare: ?a=ID&b=ID.")
    old = side(old_id)
    if new_id is None:
        return choose_other(old)
    if new_id == old_id:
        return error_response(400, "Choose two different runs to compare.")
    new = side(new_id)
    pairs = comparing.pairs_for(old.steps, new.steps)
    active = comparing.find_pair(pairs, request.args.get("tab"))
    panel = pair_context(active, old, new)
    context = {"old": old, "new": new, **panel}
    if is_htmx():
        return render_fragment(TEMPLATE, "pair_panel", **context)
    return render_page(
        TEMPLATE, choosing=False, pairs=pairs, active=active,
        facts=comparing.facts(old.run, new.run, len(old.steps), len(new.steps)),
        token_totals=(comparing.total_tokens(old.run), comparing.total_tokens(new.run)),
        variables=comparing.variables(old.run.variables, new.run.variables), **context,
    )
