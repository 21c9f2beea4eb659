"""HTML to the allowlist: the last step of every render. Model output is untrusted; nh3 removes
anything not listed here."""

from __future__ import annotations

import re

import nh3
from pygments.token import STANDARD_TYPES

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


# In nh3's output every "<" of text is escaped and headings and <pre> carry no attributes (the allowlist
# gives them none), so these match exactly the real tags.
_HEADING_TAG = re.compile(r"<(/?)h([1-6])>")
SCROLLABLE_CODE = '<pre tabindex="0">'


def fit_to_page(html: str) -> str:
    """Sanitized HTML made to sit inside a page: headings one level down, code blocks focusable.

    The page's own h1 stays its only one: a model's h1 becomes an h2, h2 an h3, and so on (h5 and h6
    both end as h6). A <pre> scrolls sideways when its lines are long, and a region that scrolls must
    be reachable by the keyboard (WCAG 2.1.1), so each gets tabindex="0". Set here, after sanitizing,
    rather than allowed through nh3: model-written HTML then cannot set a tabindex of its own (a
    positive one reorders the page's tab sequence), and it works without JavaScript, in fragments too.
    """
    html = _HEADING_TAG.sub(lambda match: f"<{match[1]}h{min(int(match[2]) + 1, 6)}>", html)
    return html.replace("<pre>", SCROLLABLE_CODE)
