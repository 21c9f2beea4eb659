"""The Content-Security-Policy in a real browser: every page and fragment works under it, without one
violation, and a foreign page cannot frame the app. (watched_page turns any violation into a failure.)"""

from __future__ import annotations

import re
from typing import Any

from artifacts_app import tokens
from artifacts_app.extensions import db
from artifacts_app.models import User
from tests.browser.conftest import LiveServer, PageWatch, choose, scroll_to_end, sign_in
from tests.factories import HOSTILE_OUTPUTS, PASSWORD, make_run, record_many

HOSTILE = "".join(HOSTILE_OUTPUTS[:3]) + "<style>body{display:none}</style>"  # script, onerror, onload; a style


def violations(page: Any) -> list[str]:
    return page.evaluate("window.__violations || []")


def test_every_page_and_fragment_works_under_the_policy(watched_page: tuple[Any, PageWatch], user: User) -> None:
    page, watch = watched_page
    page.add_init_script("window.__violations = []; document.addEventListener('securitypolicyviolation',"
                         " e => window.__violations.push(e.violatedDirective))")
    record_many(user, 40, models=("gpt-4o", "claude-haiku-4-5"))
    run = make_run(user, final_output=f"# Title\n\n{HOSTILE}\n\n| a | b |\n|---|---|\n| 1 | 2 |",
                   steps=[{"agentId": "a", "agentName": "Alpha", "output": f"**bold** {HOSTILE}", "stepOrder": 0},
                          {"agentId": "b", "agentName": "Beta", "output": "```python\nprint(1)\n```", "stepOrder": 1}])
    tokens.create_token(user, "old executor")
    db.session.commit()

    sign_in(page, user.email)
    page.wait_for_selector("#totals strong")  # the totals fragment
    scroll_to_end(page)  # infinite scroll fragments
    choose(page, "model", "gpt-4o")  # applies at once
    page.wait_for_url(re.compile(r"model=gpt-4o"))
    page.wait_for_load_state("networkidle")

    page.goto(f"/artifacts/{run.id}")
    assert "Title" in page.locator("[role=tabpanel]:not([hidden])").inner_text()
    page.click("[role=tab]:has-text('Alpha')")
    page.wait_for_selector("#panel-step-1 strong")
    page.click("[role=tab]:has-text('Beta')")
    page.wait_for_selector("#panel-step-2 pre")
    page.click("#panel-step-2 .view-switch a:has-text('Raw')")  # the raw view, fetched into the panel
    page.locator("#view-step-2-source").wait_for()
    page.goto("/settings/tokens")
    page.goto("/settings/password")
    page.goto("/reauthenticate?next=/settings/tokens")
    page.fill("main input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/settings/tokens"))
    watch.expect_error("404")
    page.goto("/artifacts/00000000-0000-4000-8000-000000000000")
    assert "There is nothing here" in page.locator("main").inner_text()

    assert page.evaluate("window.__pwned") is None
    assert violations(page) == []


def test_a_foreign_page_cannot_frame_the_app(
    watched_page: tuple[Any, PageWatch], live_server: LiveServer, user: User
) -> None:
    page, watch = watched_page
    watch.expect_error("ERR_BLOCKED_BY_RESPONSE")  # Chromium's refusal to show the framed page,
    watch.expect_error("frame-ancestors 'none'")  # and, sometimes, its console note saying why
    with page.expect_event("requestfailed", lambda request: request.url == f"{live_server.url}/login") as framed:
        page.set_content(f'<iframe id="app" src="{live_server.url}/login" width="600" height="400"></iframe>')
    assert framed.value.failure == "net::ERR_BLOCKED_BY_RESPONSE"
    assert page.frame_locator("#app").locator("input[name=password]").count() == 0
