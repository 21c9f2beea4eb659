"""htmx requests: is this one, and answer with the page or with one block of it."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import Response, make_response, render_template, request
from jinja2_fragments.flask import render_block
from werkzeug.wrappers import Response as BaseResponse

AnyResponse = TypeVar("AnyResponse", bound=BaseResponse)  # Flask's, or a redirect's


def is_htmx() -> bool:
    """Whether htmx asked for a fragment (a history restore wants the full page)."""
    if request.headers.get("HX-History-Restore-Request") == "true":
        return False
    # htmx 4 says which kind of request it is; 2 only says it is htmx.
    if request.headers.get("HX-Request-Type") == "full":
        return False
    return request.headers.get("HX-Request") == "true"


def vary_on_htmx(response: AnyResponse) -> AnyResponse:
    """Caches must key on the headers that chose between page and fragment."""
    response.vary.add("HX-Request")
    response.vary.add("HX-History-Restore-Request")
    return response


def render_fragment(template: str, block: str, status: int = 200, **context: Any) -> Response:
    """Only `block` of the page template: what htmx swaps in."""
    return vary_on_htmx(make_response(render_block(template, block, **context), status))


def render_page(template: str, status: int = 200, **context: Any) -> Response:
    """The whole page; it varies on the same headers, since the same URL may answer a fragment."""
    return vary_on_htmx(make_response(render_template(template, **context), status))


def render_page_or_block(template: str, block: str, status: int = 200, **context: Any) -> Response:
    """The full page, or only `block` of it when htmx asked, for views whose context is the same either way."""
    if is_htmx():
        return render_fragment(template, block, status, **context)
    return render_page(template, status, **context)
