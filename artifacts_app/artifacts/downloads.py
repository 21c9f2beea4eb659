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
from ..serialization import run_record
from . import bp
from .tabs import FINAL, find_tab, tabs_for

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


def whole_run_markdown(run_id: str, title: str, tabs: list[Any]) -> Iterator[str]:
    """Every step in order under its own heading, then the final output; one step read at a time."""
    yield f"# {title}\n"
    for tab in tabs[1:]:
        output = queries.output_text(current_user, run_id, tab.number)
        yield f"\n## Step {tab.label}\n\n"
        if output is not None:
            yield from chunks(output.text)
        yield "\n"
    final = queries.output_text(current_user, run_id, None)
    yield "\n## Final output\n\n"
    if final is not None:
        yield from chunks(final.text)
    yield "\n"


@bp.get("/artifacts/<id:run_id>/download")
def download(run_id: str) -> Response:
    """part=final|step-N|all, format=md|txt|json; an attachment named after pipeline, run and part."""
    fmt = request.args.get("format", "md")
    if fmt not in FORMATS:
        return error_response(400, "format must be md, txt or json")
    found = queries.run_summary(current_user, run_id)
    if found is None:
        abort(404)
    run, pipeline_name = found
    tabs = tabs_for(queries.step_headers(current_user, run_id))
    part = request.args.get("part", FINAL)
    filename = f"{slug(pipeline_name)}-{run.id[:8]}-{part}.{fmt}"

    if part == "all":
        if fmt == "json":
            whole = queries.run_with_artifact(current_user, run_id)
            if whole is None:
                abort(404)
            record = run_record(*whole).model_dump(mode="json", exclude_unset=True)
            document = json.dumps(record, ensure_ascii=False, indent=2)
            return attachment(chunks(document), filename, fmt)
        title = f"{pipeline_name} — run {run.id[:8]}"
        return attachment(whole_run_markdown(run_id, title, tabs), filename, fmt)

    tab = find_tab(tabs, part)
    output = queries.output_text(current_user, run_id, tab.number)
    text = "" if output is None else output.text
    if fmt == "json":
        body: dict[str, Any] = {"run": run.id, "part": tab.key, "output": text}
        if tab.step is not None:
            body.update(agentId=tab.step.agent_id, agentName=tab.step.agent_name, stepOrder=tab.step.number - 1)
        return attachment(chunks(json.dumps(body, ensure_ascii=False, indent=2)), filename, fmt)
    return attachment(chunks(text), filename, fmt)
