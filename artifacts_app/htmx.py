"""htmx requests: is this one, and answer with the page or with one block of it."""

from __future__ import annotations

from typing import Any

from flask import Response, make_response, render_template, request
from jinja2_fragments.flask import render_block


def is_htmx() -> bool:
    """Whether htmx asked for a fragment (a history restore wants the full page)."""
    if request.headers.get("HX-History-Restore-Request") == "true":
        return False
    # htmx 4 says which kind of request it is; 2 only says it is htmx.
    if request.headers.get("HX-Request-Type") == "full":
        return False
    return request.headers.get("HX-Request") == "true"


def vary_on_htmx(response: Response) -> Response:
    """Caches must key on the headers that chose between page and fragment."""
    response.vary.add("HX-Request")
    response.vary.add("HX-History-Restore-Request")
    return response


def render_page_or_block(template: str, block: str, status: int = 200, **context: Any) -> Response:
    """The full page, or only `block` of the same template when htmx asked for a fragment."""
    body = render_block(template, block, **context) if is_htmx() else render_template(template, **context)
    return vary_on_htmx(make_response(body, status))
