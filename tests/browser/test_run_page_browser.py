"""The run page in a real browser for the runs that strain it: 40 steps, a run still running (fed
through the API while the page is open), a failed run, a 200 KB output copied whole, a tab whose
request fails."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from artifacts_app.artifacts import detail_views
from artifacts_app.extensions import db
from artifacts_app.models import User
from tests.api_helpers import caller
from tests.browser.conftest import LiveServer, PageWatch, sign_in
from tests.factories import PASSWORD, make_run, steps


def api(server: LiveServer, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{server.url}/api/v1{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def forty_steps() -> list[dict[str, Any]]:
    return [{"agentId": f"agent-{n}", "agentName": f"Agent {n}", "stepOrder": n,
             "output": f"Output of step {n + 1}\n\n" + "- a point\n" * 5} for n in range(40)]


def test_a_40_step_run_shows_the_first_step_beside_the_navigator_at_1280(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, _ = watched_page
    page.set_viewport_size({"width": 1280, "height": 900})
    run = make_run(user, steps=forty_steps(), final_output="done")
    sign_in(page, user.email, next_path=f"/artifacts/{run.id}?tab=step-1")

    output = page.locator("#panel-step-1 .markdown p").first
    assert output.inner_text() == "Output of step 1"
    box = output.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 900  # on the first screen, no scrolling
    navigator = page.locator("#step-tabs").bounding_box()
    assert navigator is not None and navigator["height"] <= 0.8 * 900  # it scrolls by itself
    # The last step is reachable in the navigator, and loads beside it.
    page.focus("#tab-step-1")
    page.keyboard.press("End")
    page.wait_for_selector("#panel-step-40.loaded")
    assert "Output of step 40" in page.locator("#panel-step-40").inner_text()
    assert page.locator("#live-status").inner_text() == "Step 40 · Agent 39 loaded"  # said, not read out whole
    assert page.evaluate("() => document.activeElement.id") == "tab-step-40"


def test_a_running_run_shows_steps_as_they_arrive_then_completes_without_a_page_load(
    watched_page: tuple[Any, PageWatch], live_server: LiveServer
) -> None:
    page, _ = watched_page
    live_server.app.config["LIST_POLL_SECONDS"] = 1
    executor = caller("executor@example.com")
    run = api(live_server, executor.token, "/runs", {"pipeline": "Code review", "input": "PR 9", "model": "gpt-4o"})
    sign_in(page, executor.email, PASSWORD, next_path=f"/artifacts/{run['id']}")
    assert page.locator("#run-facts .badge").inner_text() == "running"
    assert "still running" in page.locator("#panel-final").inner_text()
    page.evaluate("() => { window.__marker = 'same page'; }")

    api(live_server, executor.token, f"/runs/{run['id']}/steps", steps("The diff adds keyset paging")[0])
    page.wait_for_selector("#tab-step-1", timeout=5_000)
    page.click("#tab-step-1")
    page.wait_for_selector("#panel-step-1.loaded")
    assert "keyset paging" in page.locator("#panel-step-1").inner_text()

    api(live_server, executor.token, f"/runs/{run['id']}/complete",
        {"finalOutput": "Ship it", "usage": {"inputTokens": 2000, "outputTokens": 100}})
    page.wait_for_selector("#run-facts .badge-completed", timeout=5_000)
    assert page.locator("#run-facts").inner_text().count("$0.006") == 1
    assert page.locator("#live-run").get_attribute("hx-trigger") is None  # it stops asking
    assert page.evaluate("() => window.__marker") == "same page"
    assert page.locator("#panel-step-1").is_visible()  # the open tab stays open
    page.click("#tab-final")
    assert "Ship it" in page.locator("#panel-final").inner_text()


SHARE = """key => {
  const bar = document.querySelector(`#time-${key} svg`);
  const track = bar.querySelector(".track").getBoundingClientRect();
  const span = bar.querySelector(".span").getBoundingClientRect();
  return [(span.left - track.left) / track.width, span.width / track.width].map(n => Math.round(n * 100) / 100);
}"""


def test_a_live_update_rescales_the_timeline_bars_already_shown(
    watched_page: tuple[Any, PageWatch], live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    page, _ = watched_page
    live_server.app.config["LIST_POLL_SECONDS"] = 1
    start = datetime(2025, 11, 1, 12, 0, tzinfo=timezone.utc)
    clock = {"now": start + timedelta(seconds=10)}
    monkeypatch.setattr(detail_views, "utcnow", lambda: clock["now"])  # the server's idea of now

    def at(seconds: int) -> str:
        return (start + timedelta(seconds=seconds)).isoformat()

    executor = caller("executor@example.com")
    run = api(live_server, executor.token, "/runs", {"pipeline": "Code review", "input": "PR 9", "createdAt": at(0)})
    first, second = steps("Read the diff", "Reviewed it")
    api(live_server, executor.token, f"/runs/{run['id']}/steps", {**first, "startedAt": at(0), "completedAt": at(5)})
    sign_in(page, executor.email, PASSWORD, next_path=f"/artifacts/{run['id']}")
    assert page.evaluate(SHARE, "step-1") == [0, 0.5]  # 5 s of the 10 so far

    clock["now"] = start + timedelta(seconds=20)
    api(live_server, executor.token, f"/runs/{run['id']}/steps", {**second, "startedAt": at(10), "completedAt": at(20)})
    page.wait_for_selector("#time-step-2 svg", timeout=5_000)

    # The first bar was drawn when the run was 10 s old; it is now a quarter of a 20 s run.
    page.wait_for_function("key => document.querySelector(`#time-${key} .span`).getAttribute('width') === '25.0'",
                           arg="step-1")
    assert page.evaluate(SHARE, "step-1") == [0, 0.25]
    assert page.evaluate(SHARE, "step-2") == [0.5, 0.5]
    assert page.locator("#step-tabs .step-time").count() == 2  # replaced, not added


def test_a_failed_run_opens_on_its_failing_step(watched_page: tuple[Any, PageWatch], user: User) -> None:
    page, _ = watched_page
    failing = steps("alpha", "beta", "gamma")
    failing[2]["status"] = "failed"
    run = make_run(user, status="failed", error="ContextLengthExceeded", steps=failing, final_output="")
    sign_in(page, user.email, next_path=f"/artifacts/{run.id}")

    assert page.locator("[role=tab][aria-selected=true]").get_attribute("id") == "tab-step-3"
    assert "failed" in page.locator("#tab-step-3").inner_text()
    assert "ContextLengthExceeded" in page.locator("#panel-step-3 .step-error").inner_text()


def test_copy_puts_a_200_kb_output_on_the_clipboard_whole(watched_page: tuple[Any, PageWatch], user: User) -> None:
    page, _ = watched_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    big = "".join(f"line {n:06d} of the report\n" for n in range(8_000))  # 200 KB, past what the page holds
    assert len(big) >= 200_000
    run = make_run(user, steps=[{**steps("x")[0], "output": big}], final_output="")
    sign_in(page, user.email, next_path=f"/artifacts/{run.id}?tab=step-1")
    button = page.locator("#panel-step-1 .copy-button")
    assert button.inner_text() == "Copy the whole output"

    button.click()

    page.wait_for_function("() => document.querySelector('#panel-step-1 .copy-button').textContent === 'Copied'")
    assert page.evaluate("() => navigator.clipboard.readText()") == big
    page.goto(page.url.replace("tab=step-1", "tab=final"))
    assert page.locator("#panel-final .copy-button").is_disabled()  # nothing to copy


def test_copy_fetches_even_a_short_output_from_its_download(watched_page: tuple[Any, PageWatch], user: User) -> None:
    page, watch = watched_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    source = "# Plan\n\n- **first** item\n- `second` item\n"
    run = make_run(user, steps=[{**steps("x")[0], "output": source}], final_output="done")
    sign_in(page, user.email, next_path=f"/artifacts/{run.id}?tab=step-1")
    button = page.locator("#panel-step-1 .copy-button")
    assert button.inner_text() == "Copy raw text"
    assert page.locator("#view-step-1-source").count() == 0  # the page holds the rendered view only

    button.click()

    page.wait_for_function("() => document.querySelector('#panel-step-1 .copy-button').textContent === 'Copied'")
    assert page.evaluate("() => navigator.clipboard.readText()") == source
    downloads = [url for method, url, headers in watch.requests if "/download?" in url]
    assert downloads == [f"{page.url.split('/artifacts/')[0]}/artifacts/{run.id}/download?part=step-1&format=txt"]
    page.wait_for_function("() => document.querySelector('#panel-step-1 .copy-button').textContent === 'Copy raw text'")
    assert button.is_enabled()


def test_a_tab_whose_request_fails_offers_retry(watched_page: tuple[Any, PageWatch], user: User) -> None:
    page, watch = watched_page
    run = make_run(user, steps=steps("alpha", "beta"), final_output="omega")
    db.session.commit()
    sign_in(page, user.email, next_path=f"/artifacts/{run.id}")
    for expected in ("step-2", "htmx:", "net::ERR_FAILED"):  # the aborted request, and htmx saying so
        watch.expect_error(expected)
    page.route("**/*tab=step-2*", lambda route: route.abort())

    page.click("#tab-step-2")

    alert = page.locator("#panel-step-2 .panel-failed")
    alert.wait_for()
    assert "could not be loaded" in alert.inner_text()
    page.unroute("**/*tab=step-2*")
    page.click("#panel-step-2 .retry-button")
    page.wait_for_function("() => document.querySelector('#panel-step-2').textContent.includes('beta')")
    assert page.locator("#panel-step-2 .panel-failed").count() == 0
