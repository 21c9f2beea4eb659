"""Markdown to safe HTML: the only place model output becomes markup.

A render runs in a helper process under a time budget (sandbox.py), parses with python-markdown
(markdown.py), keeps only the allowlist (sanitize.py), and is cached (cache.py); a large output is
rendered in part (truncation.py); whatever cannot be formatted is shown as escaped text under a
notice (notices.py).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from flask import Flask, current_app, has_app_context
from markupsafe import Markup

from .cache import PAUSE_EXTENSION, CachePause, cache, cache_config
from .markdown import _Renderer, render_in_process
from .notices import FAILED_NOTICE, LINK_NOTICE, SLOW_NOTICE, plain_fallback
from .sandbox import RenderFailed, Sandbox
from .sanitize import sanitize
from .truncation import FirstPart, _unclosed_fence, first_part, truncate_for_render

__all__ = [
    "FAILED_NOTICE", "FirstPart", "LINK_NOTICE", "RENDERER_VERSION", "SLOW_NOTICE", "_Renderer", "_unclosed_fence",
    "cache", "cache_config", "cache_key_for", "first_part", "forget_cached", "init_app", "panel_cache_key",
    "plain_fallback", "render_cached", "render_in_process", "render_markdown", "sanitize", "truncate_for_render",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Bump whenever the HTML for the same text would change (extensions, allowlists, the rewrites in
# markdown.py, the fallback): cached renders are keyed on it, so old entries simply stop matching.
RENDERER_VERSION: str = "4"  # 3: fallbacks carry a notice; time budget. 4: headings from h2, focusable <pre>
DEFAULT_TIME_BUDGET_SECONDS = 1.0

_sandbox = Sandbox(render_in_process)


def time_budget() -> float:
    """Seconds a render may take: RENDER_TIME_BUDGET_MS, or the default outside an app."""
    if has_app_context():
        return float(current_app.config.get("RENDER_TIME_BUDGET_MS", DEFAULT_TIME_BUDGET_SECONDS * 1000)) / 1000
    return DEFAULT_TIME_BUDGET_SECONDS


def render_markdown(text: str) -> Markup:
    """Markdown to sanitized HTML, safe to insert into a page unescaped, within the time budget."""
    budget = time_budget()
    try:
        finished, html = _sandbox.run(text, budget)
    except RenderFailed as error:
        logger.warning("markdown render failed in its helper (%s); showing the text as plain text", error)
        return plain_fallback(text, FAILED_NOTICE)
    if not finished:
        logger.warning("markdown render passed its %.1f s budget (%d characters); showing it as plain text",
                       budget, len(text))
        return plain_fallback(text, SLOW_NOTICE.format(budget=f"{budget:g}-second"))
    return Markup(html)


def init_app(app: Flask) -> None:
    """Bind the render cache to app."""
    cache.init_app(app, config=cache_config(app))
    app.extensions[PAUSE_EXTENSION] = CachePause()


def _through_cache(what: str, call: Callable[[], T], *, even_if_paused: bool = False) -> T | None:
    """call() on the cache, or None when the cache fails (logged, and then paused) or is paused
    (unless even_if_paused)."""
    pause: CachePause | None = current_app.extensions.get(PAUSE_EXTENSION) if has_app_context() else None
    if pause is not None and pause.active() and not even_if_paused:
        return None
    try:
        return call()
    except Exception:
        logger.warning("render cache %s failed; going on without the cache for a while", what, exc_info=True)
        if pause is not None:
            pause.start()
        return None


def cache_key_for(cache_key: str, text: str) -> str:
    """The stored key: renderer version, the caller's key, and a digest of the text itself."""
    # The digest makes a stale or colliding caller key (a reused id after a database reset, a
    # shared Redis) show the right text's HTML instead of another artifact's.
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
    return f"md:{RENDERER_VERSION}:{cache_key}:{digest}"


def panel_cache_key(run_id: str, tab_key: str, limit_bytes: int) -> str:
    """The caller's key of a run's tab rendered to limit_bytes (cache_key_for adds the text's digest)."""
    return f"{run_id}:{tab_key}:{limit_bytes}"


def forget_cached(entries: Iterable[tuple[str, str]]) -> None:
    """Drop the cached renders of these (caller key, text rendered) pairs, as when their run is
    deleted. Tried even while the cache is paused: a deletion promises nothing of the run is left, and
    a pause may outlast the failure; a cache that still fails is let be (the entries expire)."""
    keys = [cache_key_for(cache_key, text) for cache_key, text in entries]
    if keys:
        _through_cache("delete", lambda: cache.delete_many(*keys), even_if_paused=True)


def render_cached(cache_key: str, text: str) -> Markup:
    """render_markdown(text) through the shared cache; a cache that fails or is paused is gone without."""
    key = cache_key_for(cache_key, text)
    cached = _through_cache("read", lambda: cache.get(key))
    if isinstance(cached, str):
        return Markup(cached)
    html = render_markdown(text)
    _through_cache("write", lambda: cache.set(key, str(html)))
    return html
