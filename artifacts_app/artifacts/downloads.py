"""Downloads of one output or of the whole run, as Markdown, plain text or JSON, streamed."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from flask import Response, abort, request, stream_with_context
from flask_login import current_user

from .. import queries
from ..errors import error_response
from ..formatting import duration, when
from ..models import PipelineRun
from ..serialization import run_record
from ..statuses import OPEN_STATUSES, CostSource
from . import bp
from .tabs import FINAL, Tab, find_tab, tabs_for

FORMATS = {"md": "text/markdown", "txt": "text/plain", "json": "application/json"}  # Flask adds charset to text/*
CHUNK_CHARS = 64 * 1024


def slug(text: str) -> str:
    """A filename-safe version of a name: ASCII letters, digits and hyphens."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60] or "run"


def chunks(text: str) -> Iterator[str]:
    """A long text in pieces, so the response streams instead of being one giant write."""
    for start in range(0, len(text), CHUNK_CHARS):
        yield text[start:start + CHUNK_CHARS]


def attachment(body: Iterator[str], filename: str, fmt: str) -> Response:
    response = Response(stream_with_context(body), mimetype=FORMATS[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def fenced(text: str) -> str:
    """Text as a Markdown code block whose fence no line of the text can close."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}\n{text}\n{fence}\n"


def tokens_in_out(tokens_in: int | None, tokens_out: int | None) -> str:
    """ "1,234 in / 567 out", "unknown" for what was not reported."""
    def count(n: int | None) -> str:
        return "unknown" if n is None else f"{n:,}"
    return f"{count(tokens_in)} in / {count(tokens_out)} out"


def run_facts_markdown(run: PipelineRun, pipeline_name: str) -> str:
    """What the run was: status, model, tokens, cost and times, its input and variables, its error."""
    cost = "unpriced" if run.cost is None else f"${format(run.cost, 'f')}"
    if run.cost is None and run.status in OPEN_STATUSES:
        cost = run.status
    if run.cost_source == CostSource.PROVIDER:
        cost += " (reported by the provider)"
    facts = [
        ("Pipeline", pipeline_name), ("Run", run.id), ("Status", run.status), ("Model", run.model or "—"),
        ("Tokens", tokens_in_out(run.input_tokens, run.output_tokens)),
        ("Cost", cost), ("Created", when(run.created_at, "second")), ("Completed", when(run.completed_at, "second")),
        ("Duration", duration(run.created_at, run.completed_at)),
    ]
    lines = [f"- **{label}:** {value}" for label, value in facts]
    parts = ["\n".join(lines), "\n\n## Input\n\n", fenced(run.input)]
    if run.variables:
        parts += ["\n## Variables\n\n", fenced(json.dumps(run.variables, ensure_ascii=False, indent=2, sort_keys=True))]
    if run.error:
        parts += ["\n## Error\n\n", fenced(run.error)]
    return "".join(parts)


def whole_run_markdown(run: PipelineRun, pipeline_name: str, tabs: list[Tab]) -> Iterator[str]:
    """The run's facts, input, variables and error, then every step in order under its own heading
    with its own facts, then the final output; one output read from the database at a time."""
    yield f"# {run.name or pipeline_name}\n\n"
    yield run_facts_markdown(run, pipeline_name)
    for tab in tabs[1:]:
        assert tab.step is not None
        step = tab.step
        output = queries.output_text(current_user, run.id, tab.number)
        yield f"\n## Step {tab.label}\n\n"
        details = [step.status, duration(step.started_at, step.completed_at)]
        if step.model:
            details.append(step.model)
        if step.input_tokens is not None:
            details.append(f"tokens {tokens_in_out(step.input_tokens, step.output_tokens)}")
        if step.cost is not None:
            details.append(f"${format(step.cost, 'f')}")
        yield f"*{' · '.join(details)}*\n\n"
        if output is not None:
            yield from chunks(output.text)
        yield "\n"
    final = queries.output_text(current_user, run.id, None)
    yield "\n## Final output\n\n"
    if final is not None:
        yield from chunks(final.text)
    yield "\n"


@bp.get("/artifacts/<id:run_id>/download")
def download(run_id: str) -> Response:
    """part=final|step-N|input|error|all, format=md|txt|json; an attachment named after pipeline,
    run and part. The input and the error download as stored, like an output."""
    fmt = request.args.get("format", "md")
    if fmt not in FORMATS:
        return error_response(400, "format must be md, txt or json")
    part = request.args.get("part", FINAL)
    # Only the whole run in markdown or text writes the input and error out from the summary.
    whole_text = part == "all" and fmt != "json"
    found = queries.run_summary(current_user, run_id, with_input=whole_text, with_error=whole_text)
    if found is None:
        abort(404)
    run, pipeline_name = found
    tabs = tabs_for(queries.step_headers(current_user, run_id))
    filename = f"{slug(pipeline_name)}-{run.id[:8]}-{part}.{fmt}"

    if part == "all":
        if fmt == "json":
            whole = queries.run_with_artifact(current_user, run_id)
            if whole is None:
                abort(404)
            record = run_record(*whole).model_dump(mode="json", exclude_unset=True)
            document = json.dumps(record, ensure_ascii=False, indent=2)
            return attachment(chunks(document), filename, fmt)
        return attachment(whole_run_markdown(run, pipeline_name, tabs), filename, fmt)

    if part in queries.RUN_TEXTS:
        stored = queries.run_text(current_user, run_id, part)
        if stored is None:
            return error_response(404, f"this run has no {part}")
        if fmt == "json":
            document = json.dumps({"run": run.id, "part": part, part: stored.text}, ensure_ascii=False, indent=2)
            return attachment(chunks(document), filename, fmt)
        return attachment(chunks(stored.text), filename, fmt)

    tab = find_tab(tabs, part)
    output = queries.output_text(current_user, run_id, tab.number)
    text = "" if output is None else output.text
    if fmt == "json":
        body: dict[str, Any] = {"run": run.id, "part": tab.key, "output": text}
        if tab.step is not None:
            body.update(agentId=tab.step.agent_id, agentName=tab.step.agent_name, stepOrder=tab.step.number - 1)
        return attachment(chunks(json.dumps(body, ensure_ascii=False, indent=2)), filename, fmt)
    return attachment(chunks(text), filename, fmt)
