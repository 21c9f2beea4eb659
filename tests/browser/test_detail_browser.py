"""A run's page in a real browser: tabs without reloads, history, keyboard, hostile output, screenshots."""

from __future__ import annotations

import os
import re
import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from artifacts_app import recording, schemas
from artifacts_app.extensions import db
from artifacts_app.models import PipelineRun, User
from tests import factories
from tests.browser.conftest import LiveServer, PageWatch, sign_in
from tests.factories import HOSTILE_OUTPUTS, make_run, steps

# `make screenshots` names docs/screenshots here to refresh the README's pictures; otherwise they go
# to the test's temporary folder, so a test run never rewrites tracked files.
SCREENSHOTS_VARIABLE = "SCREENSHOTS_DIR"
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


@pytest.fixture
def run(user: User) -> PipelineRun:
    """A run of three steps, the second a table and Python code."""
    return make_run(user, steps=steps("alpha output", CODE_STEP, "gamma output"), final_output="omega output")


def panel_text(page: Any) -> str:
    return page.locator("[role=tabpanel]:not([hidden])").inner_text()


def test_tabs_switch_without_reload_carry_the_url_and_load_once(
    watched_page: tuple[Any, PageWatch], user: User, run: PipelineRun
) -> None:
    page, watch = watched_page
    sign_in(page, user.email, next_path=f"/artifacts/{run.id}")
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
    watched_page: tuple[Any, PageWatch], user: User, run: PipelineRun
) -> None:
    page, _ = watched_page
    sign_in(page, user.email, next_path=f"/artifacts/{run.id}?tab=step-2")
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


def test_hostile_output_does_nothing(watched_page: tuple[Any, PageWatch], user: User) -> None:
    page, watch = watched_page
    hostile = "\n\n".join(HOSTILE_OUTPUTS)  # the unclosed <textarea> last
    run = make_run(user, steps=steps(hostile), final_output=hostile)
    page.on("dialog", lambda dialog: watch.console_errors.append(f"dialog: {dialog.message}"))
    sign_in(page, user.email, next_path=f"/artifacts/{run.id}")
    page.click("#tab-step-1")
    page.wait_for_url(re.compile(r"tab=step-1$"))
    page.wait_for_function("document.querySelector('#panel-step-1').innerText.includes('htmx attack')")
    page.wait_for_function("!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")
    for link in page.locator("[role=tabpanel]:not([hidden]) .markdown a").all():
        link.click(modifiers=["Control"], no_wait_after=True)  # a click must not run script
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#evil-submit").count() == 0
    assert "Sign out" in page.content()  # the hx-get="/logout" did nothing
    assert not watch.foreign_requests
    assert page.locator("text=Download all").count() == 1  # the unclosed tag swallowed nothing


def test_raw_view_and_without_javascript_tabs_are_links(
    browser: Any, live_server: LiveServer, watched_page: tuple[Any, PageWatch], user: User, run: PipelineRun
) -> None:
    page, watch = watched_page
    sign_in(page, user.email, next_path=f"/artifacts/{run.id}?tab=step-2")
    assert page.locator("#view-step-2-source").count() == 0  # the raw text is not in the page
    page.evaluate("() => { window.__marker = 'same page'; }")

    page.click("#panel-step-2 .view-switch a:has-text('Raw')")

    raw = page.locator("#view-step-2-source")
    raw.wait_for()
    assert "```python" in raw.inner_text()
    assert page.locator("#panel-step-2 .markdown").count() == 0
    assert page.url.endswith("tab=step-2&view=raw")
    assert page.evaluate("() => window.__marker") == "same page"  # only the panel was fetched
    assert page.evaluate("() => document.activeElement.textContent") == "Raw"  # the keyboard stays on the switch
    assert page.get_attribute("#panel-step-2 .view-switch a:has-text('Raw')", "aria-current") == "true"
    assert page.locator("#live-status").inner_text() == "Step 2 · Analyst loaded as raw text"
    raw_requests = [headers.get("hx-request") for method, url, headers in watch.requests if "view=raw" in url]
    assert raw_requests == ["true"], raw_requests  # one htmx request for the panel
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        plain = context.new_page()
        sign_in(plain, user.email, next_path=f"/artifacts/{run.id}")
        plain.click("#tab-step-3")
        plain.wait_for_url(re.compile(r"tab=step-3$"))
        assert "gamma output" in plain.locator("#panel-step-3").inner_text()
        plain.click("#panel-step-3 .view-switch a:has-text('Raw')")  # a link: the page with the raw view
        plain.wait_for_url(re.compile(r"tab=step-3&view=raw$"))
        assert plain.locator("#view-step-3-source").inner_text() == "gamma output"
        assert plain.get_attribute("#tab-step-3", "aria-selected") == "true"
    finally:
        context.close()


def test_views_and_tabs_go_back_and_forward_keeping_the_view_each_panel_shows(
    watched_page: tuple[Any, PageWatch], user: User, run: PipelineRun
) -> None:
    page, watch = watched_page
    sign_in(page, user.email, next_path=f"/artifacts/{run.id}?tab=step-2")
    page.evaluate("() => { window.__marker = 'same page'; }")
    page.click("#panel-step-2 .view-switch a:has-text('Raw')")
    page.wait_for_url(re.compile(r"tab=step-2&view=raw$"))
    page.locator("#view-step-2-source").wait_for()
    page.click("#tab-step-3")
    page.wait_for_url(re.compile(r"tab=step-3$"))
    page.wait_for_function("() => document.querySelector('#panel-step-3').textContent.includes('gamma output')")
    page.click("#tab-step-2")  # loaded: shown again as it was left, raw, and the address says so
    page.wait_for_url(re.compile(r"tab=step-2&view=raw$"))
    assert page.locator("#view-step-2-source").is_visible()

    page.go_back()
    page.wait_for_url(re.compile(r"tab=step-3$"))
    page.wait_for_function("() => document.querySelector('#tab-step-3').getAttribute('aria-selected') === 'true'")
    page.go_back()
    page.wait_for_url(re.compile(r"tab=step-2&view=raw$"))
    page.wait_for_function("() => document.querySelector('#tab-step-2').getAttribute('aria-selected') === 'true'")
    assert page.locator("#view-step-2-source").is_visible()
    page.go_back()  # to the rendered view: the panel fetches it, the page stays
    page.wait_for_url(re.compile(r"tab=step-2$"))
    page.wait_for_function("() => document.querySelector('#panel-step-2 .markdown table') !== null")
    assert page.locator("#view-step-2-source").count() == 0
    page.go_forward()
    page.wait_for_url(re.compile(r"tab=step-2&view=raw$"))
    page.wait_for_function("() => document.querySelector('#view-step-2-source') !== null")
    assert page.evaluate("() => window.__marker") == "same page"
    # Asking for the view already shown asks the server nothing (a request it did make would be
    # reported before the fetch that follows it).
    before = len(watch.requests)
    page.click("#panel-step-2 .view-switch a:has-text('Raw')")
    page.click("#panel-step-2 .view-switch a:has-text('Raw')")
    assert page.evaluate("() => fetch('/static/favicon.svg').then(response => response.status)") == 200
    assert [url.rsplit("/", 1)[-1] for method, url, headers in watch.requests[before:]] == ["favicon.svg"]
    assert page.url.endswith("tab=step-2&view=raw")


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def assert_fits_and_follows_the_scheme(page: Any, scheme: str) -> None:
    """Nothing wider than the viewport (no sideways scrolling) and the colours of the scheme asked for."""
    widths = page.evaluate("({page: document.documentElement.scrollWidth, viewport: window.innerWidth})")
    assert widths["page"] <= widths["viewport"], widths
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    red, green, blue = map(int, re.findall(r"\d+", background)[:3])
    assert (red + green + blue < 3 * 64) is (scheme == "dark"), background


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_for_the_readme(
    browser: Any, live_server: LiveServer, user: User, run: PipelineRun, scheme: str, tmp_path: Path
) -> None:
    folder = Path(os.environ.get(SCREENSHOTS_VARIABLE) or tmp_path).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    pipelines = [("Code review", "claude-sonnet-4-5-20250929", "Review PR #482: add keyset pagination"),
                 ("Support triage", "gpt-4o-mini", "Customer cannot export CSV over 10k rows"),
                 ("Release notes", "mistral-large-latest", "Draft notes for v2.5.0"),
                 ("Data extraction", "gemini-2.5-flash", "Extract line items from the attached invoices"),
                 ("Research brief", "llama-3.1-70b-local", "Compare vector databases for a 10M corpus")] * 3
    tags = (["nightly"], [], ["eval", "prod"], ["customer"], [])
    # One run still going, one failed: the list shows every status.
    factories.start_run(user, pipeline="Code review", input="Review PR #503: rate-limit the login form",
                        model="gpt-4o", tags=["prod"])
    for index, (pipeline, model, prompt) in enumerate(pipelines):
        failed = index == 2
        recording.record_from_values(user, pipeline=pipeline, input=prompt, model=model, steps=steps("a", "b"),
                             final_output=None if failed else "done", tags=tags[index % 5] or None,
                             status="failed" if failed else "completed",
                             error="Timeout: step exceeded 120 s" if failed else None,
                             usage={"inputTokens": 1200 * (index + 1), "outputTokens": 310 * (index + 2)},
                             created_at=now - timedelta(hours=index, seconds=95), completed_at=now - timedelta(hours=index))
    db.session.commit()
    width, height = 1280, 820
    context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height},
                                  color_scheme=scheme)
    try:
        page = context.new_page()
        sign_in(page, user.email)
        page.wait_for_selector("#totals strong")
        # The list: the 17 runs, newest first, their total, the filters; nothing off to the side.
        assert page.locator("tr.run-row").count() == 17
        assert page.locator("tr.run-row .badge").first.inner_text().strip().endswith("running")
        assert page.locator("tr.run-row td.pipeline").first.inner_text() == "Code review"
        assert page.locator("#totals strong").first.inner_text() == "17"
        assert page.locator("tr.list-end").count() == 1
        assert_fits_and_follows_the_scheme(page, scheme)
        page.screenshot(path=str(folder / f"list-{scheme}.png"))

        page.goto(f"/artifacts/{run.id}?tab=step-2")
        # The run's page on its second step: the table and the highlighted code are shown.
        assert page.get_attribute("#tab-step-2", "aria-selected") == "true"
        panel = page.locator("#panel-step-2")
        assert panel.locator("table").count() == 1 and panel.locator("pre .k").count() >= 1
        assert "Findings" in panel.inner_text() and "def next_page" in panel.inner_text()
        assert_fits_and_follows_the_scheme(page, scheme)
        page.screenshot(path=str(folder / f"detail-{scheme}.png"), full_page=True)
    finally:
        context.close()
    assert png_size(folder / f"list-{scheme}.png") == (width, height)
    detail_width, detail_height = png_size(folder / f"detail-{scheme}.png")
    assert detail_width == width and detail_height >= height


def timed_steps(count: int, start: datetime, *, failing_at: int | None = None) -> list[dict[str, Any]]:
    """`count` steps one after another from `start`, of uneven lengths; the one at `failing_at` failed."""
    agents = ("Planner", "Coder", "Tester", "Reviewer")
    listed, moment = [], start
    for order in range(count):
        took = timedelta(seconds=2 + (order * 7) % 11)
        step: dict[str, Any] = {
            "agentId": f"agent-{order}", "agentName": f"{agents[order % 4]} {order // 4 + 1}", "stepOrder": order,
            "output": f"## Step {order + 1}\n\n- checked the ledger calls\n- {order * 3} tests pass\n",
            "startedAt": moment.isoformat(), "completedAt": (moment + took).isoformat(),
            "model": "gpt-4o-mini", "inputTokens": 900 + 37 * order, "outputTokens": 120 + 11 * order,
        }
        if order == failing_at:
            step |= {"status": "failed", "output": ""}
        listed.append(step)
        moment += took
    return listed


@pytest.mark.parametrize("width", [1280, 375])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_for_the_readme_of_long_running_and_failed_runs(
    browser: Any, live_server: LiveServer, user: User, scheme: str, width: int, tmp_path: Path
) -> None:
    folder = Path(os.environ.get(SCREENSHOTS_VARIABLE) or tmp_path).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    long_run = recording.record_from_values(
        user, pipeline="Agent swarm", input="Port the billing service to the new ledger API",
        steps=timed_steps(40, now - timedelta(minutes=10)), final_output="All 40 steps done.",
        created_at=now - timedelta(minutes=10), completed_at=now - timedelta(minutes=3))
    failed = recording.record_from_values(
        user, pipeline="Code review", input="Review PR #503: rate-limit the login form", status="failed",
        error="ContextLengthExceeded: prompt is 212,480 tokens; the model accepts 200,000",
        steps=timed_steps(3, now - timedelta(minutes=2), failing_at=2),
        created_at=now - timedelta(minutes=2), completed_at=now - timedelta(seconds=70))
    running = factories.start_run(user, pipeline="Research brief", input="Compare vector databases",
                                  model="gpt-4o", created_at=(now - timedelta(seconds=40)).isoformat())
    for step in timed_steps(2, now - timedelta(seconds=40)):
        recording.add_step(user, running.id, schemas.parse(schemas.StepIn, step))
    db.session.commit()
    context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": 900},
                                  color_scheme=scheme)
    try:
        page = context.new_page()
        sign_in(page, user.email, next_path=f"/artifacts/{long_run.id}?tab=step-1")
        assert page.locator("#step-tabs [role=tab]").count() == 41
        assert_fits_and_follows_the_scheme(page, scheme)
        page.screenshot(path=str(folder / f"run-long-{width}-{scheme}.png"))
        page.goto(f"/artifacts/{failed.id}")
        assert page.get_attribute("#tab-step-3", "aria-selected") == "true"
        assert_fits_and_follows_the_scheme(page, scheme)
        page.screenshot(path=str(folder / f"run-failed-{width}-{scheme}.png"))
        page.goto(f"/artifacts/{running.id}")
        assert page.locator("#run-facts .badge").inner_text() == "running"
        assert_fits_and_follows_the_scheme(page, scheme)
        page.screenshot(path=str(folder / f"run-running-{width}-{scheme}.png"))
    finally:
        context.close()


@pytest.mark.parametrize("width", [1280, 375])
def test_a_run_with_a_5_mb_input_and_error_shows_their_start_and_downloads_them_whole(
    browser: Any, live_server: LiveServer, user: User, width: int, tmp_path: Path
) -> None:
    folder = Path(os.environ.get(SCREENSHOTS_VARIABLE) or tmp_path).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    text = "Review every file of the monorepo <script>alert(1)</script>\n" + "".join(
        f"src/module_{i:06d}/handler.py: check the retry budget and the timeouts\n" for i in range(70_000))
    error = "ContextLengthExceeded: the prompt was too long\n" + "  while sending chunk 17 of the repository\n" * 120_000
    failing = steps("Scanned the files.", "Started the review.")
    failing[1]["status"] = "failed"
    run = make_run(user, pipeline="Code review", status="failed", input=text, error=error, steps=failing,
                   final_output="")
    context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": 900},
                                  color_scheme="dark", accept_downloads=True)
    try:
        page = context.new_page()
        sign_in(page, user.email, next_path=f"/artifacts/{run.id}")
        alert_note = page.locator(".run-error[role=alert] .truncated")
        assert "Showing the first 65.5 kB of 5.2 MB" in alert_note.inner_text()
        assert page.locator(".step-error a[href='#run-alerts']").is_visible()
        # The error's first part scrolls in its own box: the input and outputs stay near.
        error_box = page.locator(".run-error[role=alert] pre").bounding_box()
        assert error_box["height"] < 0.6 * 900 + 40, error_box
        assert page.locator(".run-input h2").bounding_box()["y"] < 2 * 900
        page.locator(".run-input summary").click()
        input_note = page.locator(".run-input .truncated")
        assert input_note.is_visible() and "Showing the first" in input_note.inner_text()
        assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
        assert "<script>alert(1)</script>" in page.locator(".run-input pre").inner_text()
        assert_fits_and_follows_the_scheme(page, "dark")
        page.screenshot(path=str(folder / f"run-long-input-{width}-dark.png"), full_page=False)
        input_note.scroll_into_view_if_needed()
        page.screenshot(path=str(folder / f"run-long-input-note-{width}-dark.png"), full_page=False)
        with page.expect_download() as download:
            input_note.get_by_role("link", name="Download the full input").click()
        assert download.value.suggested_filename == f"code-review-{run.id[:8]}-input.txt"
        assert Path(download.value.path()).read_bytes() == text.encode()
    finally:
        context.close()
