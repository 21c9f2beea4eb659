"""The list in a real browser: signing in and out, infinite scroll, filters, an expired session, no JavaScript."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from artifacts_app import recording, schemas
from artifacts_app.extensions import db
from artifacts_app.models import User
from tests.browser.conftest import (
    ROWS_GREW_OR_LIST_ENDED,
    LiveServer,
    PageWatch,
    choose,
    row_ids,
    scroll_to_end,
    sign_in,
)
from tests.factories import LOGIN_FAILED_MESSAGE, PASSWORD, T0, make_run, record_many, start_run


def newest_first(ids: list[str]) -> list[str]:
    """record_many's ids (oldest first) in the list's order."""
    return list(reversed(ids))


def test_sign_in_wrong_password_then_out_and_back_shows_nothing_private(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, _ = watched_page
    page.goto("/artifacts")
    assert "/login" in page.url
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", "wrong password")
    # The answer is a new page: let it finish loading before the form is filled and sent again,
    # or the second submit can race the first page's load and be lost.
    with page.expect_navigation(wait_until="load"):
        page.click("button[type=submit]")
    assert page.locator(".form-error").inner_text().strip() == LOGIN_FAILED_MESSAGE
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/artifacts$"))
    assert page.locator("h1").inner_text() == "Runs"
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r"/login"))
    page.go_back()
    page.wait_for_load_state()
    assert "/login" in page.url  # the private page was not served from cache
    assert page.locator(f"text={user.email}").count() == 0


def test_scrolling_to_the_end_loads_every_run_once_by_fragments(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, watch = watched_page
    expected = newest_first(record_many(user, 120))
    sign_in(page, user.email)
    page.evaluate("window.__marker = 'same page'")
    scroll_to_end(page)
    assert row_ids(page) == expected
    assert page.evaluate("window.__marker") == "same page"  # no full page load happened
    fragment_requests = [url for method, url, headers in watch.requests
                         if "cursor=" in url and headers.get("hx-request") == "true"]
    assert len(fragment_requests) == 4  # 25 + 4 × 25 ≥ 120
    # One polite announcement per page of rows, not the whole list read out again.
    assert page.locator("#list-status").inner_text() == "20 more runs loaded"
    assert page.locator("[aria-live]").count() == 0
    assert re.search(r"/artifacts\?shown=120$", page.url)  # the address says how far the list was loaded


def test_a_filter_changes_the_url_survives_reload_and_scrolling(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, _ = watched_page
    record_many(user, 80, models=("gpt-4o", "claude-haiku-4-5"))
    sign_in(page, user.email)
    page.evaluate("window.__marker = 'same page'")
    apply = page.locator("button:has-text('Apply')").bounding_box()
    assert apply is not None and apply["width"] <= 1  # with JavaScript a change applies at once
    choose(page, "model", "claude-haiku-4-5")
    page.wait_for_url(re.compile(r"/artifacts\?model=claude-haiku-4-5$"))  # no empty parameters
    page.wait_for_function("document.querySelectorAll('a.row-link').length === 25")
    assert page.evaluate("window.__marker") == "same page"
    assert page.locator("#menu-model .menu-count").inner_text() == "· 1"
    page.wait_for_load_state("networkidle")  # the totals fragment is still loading; a reload would abort it
    page.reload()
    assert page.locator("#menu-model input[value=claude-haiku-4-5]").is_checked()
    assert not page.locator("#menu-model input[value=gpt-4o]").is_checked()
    scroll_to_end(page)
    models = page.eval_on_selector_all("tr.run-row td.model", "cells => cells.map(c => c.textContent)")
    assert len(models) == 40 and set(models) == {"claude-haiku-4-5"}


def test_an_expired_session_while_scrolling_lands_on_the_login_page(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, watch = watched_page
    record_many(user, 60)
    sign_in(page, user.email)
    watch.expect_error("401")
    watch.expect_error("Failed to load resource")
    watch.expect_error("net::ERR_ABORTED")  # a fragment still loading when the page leaves for /login
    # The session ends elsewhere (a password change): the next fragment request is refused.
    from artifacts_app.models import new_session_token
    user.session_token = new_session_token()
    db.session.commit()
    page.context.clear_cookies(name="remember_token")
    page.mouse.wheel(0, 20000)  # reveals the next fragment, whose request is refused
    page.wait_for_url(re.compile(r"/login\?next="))
    assert page.locator("h1").inner_text() == "Sign in"
    assert page.locator("table.runs").count() == 0  # not a login form inside the list


def test_without_javascript_load_more_is_a_plain_link(
    browser: Any, live_server: LiveServer, user: User
) -> None:
    expected = newest_first(record_many(user, 30))
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, user.email)
        assert row_ids(page) == expected[:25]
        page.click("text=Load more")
        page.wait_for_url(re.compile(r"cursor="))
        assert row_ids(page) == expected[25:]
        assert page.locator("tr.list-end").count() == 1
    finally:
        context.close()


def test_on_a_phone_the_list_fits_the_screen_and_still_scrolls_to_the_end(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, _ = watched_page
    page.set_viewport_size({"width": 375, "height": 800})
    expected = newest_first(record_many(user, 40))
    sign_in(page, user.email)
    assert page.evaluate("document.documentElement.scrollWidth") == 375  # no sideways scrolling
    first = page.locator("tr.run-row").first
    # Each run is a block of labelled facts, its pipeline a link that opens it.
    assert first.locator("td[data-label=Cost]").is_visible() and first.locator("td[data-label=Model]").is_visible()
    scroll_to_end(page)
    assert row_ids(page) == expected
    assert page.evaluate("document.documentElement.scrollWidth") == 375
    first.locator("a.row-link").click()
    page.wait_for_url(re.compile(rf"/artifacts/{expected[0]}$"))


def test_typing_in_the_search_box_narrows_the_list_without_a_page_load(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, _ = watched_page
    for name in ("Quarterly revenue forecast", "Solid-state battery brief", "Onboarding checklist"):
        make_run(user, name=name, input=name, steps=[], final_output="done")
    sign_in(page, user.email)
    page.evaluate("window.__marker = 'same page'")
    page.locator("#filter-q").press_sequentially("battery", delay=30)
    page.wait_for_url(re.compile(r"/artifacts\?q=battery$"), timeout=5000)
    page.wait_for_function("() => document.querySelectorAll('a.row-link').length === 1", timeout=5000)
    assert page.locator("a.row-link").inner_text() == "Solid-state battery brief"
    assert page.evaluate("window.__marker") == "same page"


def test_back_after_opening_the_150th_row_brings_that_row_back_into_view(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, watch = watched_page
    # Opening the row scrolls it into view, which may reveal the next rows' sentinel: its request
    # is cut short when the run's page opens.
    watch.expect_error("net::ERR_ABORTED")
    expected = newest_first(record_many(user, 160))
    sign_in(page, user.email)
    while page.locator("tr.run-row").count() < 150:
        rows = page.locator("tr.run-row").count()
        page.mouse.wheel(0, 20000)
        page.wait_for_function(ROWS_GREW_OR_LIST_ENDED, arg=rows)
    page.wait_for_load_state("networkidle")
    target = expected[149]
    page.locator(f"#run-{target} a.row-link").click()
    page.wait_for_url(re.compile(rf"/artifacts/{target}$"))
    page.go_back()
    page.wait_for_url(re.compile(r"/artifacts\?shown=1[56]0$"))
    page.wait_for_load_state()
    assert page.locator("tr.run-row").count() >= 150  # the rows came back in one page
    link = page.locator(f"#run-{target} a.row-link")
    page.wait_for_function("id => document.activeElement === document.querySelector(`#run-${id} a.row-link`)",
                           arg=target)
    box = link.bounding_box()
    viewport = page.viewport_size
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], box
    # A reload keeps the rows and the place too.
    page.reload()
    assert page.locator("tr.run-row").count() >= 150
    box = page.locator(f"#run-{target} a.row-link").bounding_box()
    assert box is not None and 0 <= box["y"] <= viewport["height"], box


def test_a_running_row_turns_completed_by_itself(
    watched_page: tuple[Any, PageWatch], live_server: LiveServer, user: User
) -> None:
    page, _ = watched_page
    live_server.app.config["LIST_POLL_SECONDS"] = 1
    make_run(user, name="Already done")
    run = start_run(user, pipeline="Code review", name="Reviewing PR 9", input="PR 9", model="gpt-4o")
    db.session.commit()
    sign_in(page, user.email)
    row = page.locator(f"#run-{run.id}")
    assert row.locator(".badge").inner_text() == "running"
    assert "started" in row.locator("td.when").inner_text()
    page.evaluate("window.__marker = 'same page'")
    recording.complete_run(user, run.id, schemas.parse(
        schemas.RunComplete, {"finalOutput": "LGTM", "usage": {"inputTokens": 2000, "outputTokens": 100}}))
    db.session.commit()
    page.wait_for_selector(f"#run-{run.id} .badge-completed", timeout=10_000)
    assert page.locator(f"#run-{run.id} td.cost").inner_text() == "$0.006"
    assert page.locator(f"#run-{run.id}").get_attribute("hx-trigger") is None  # it stops asking
    assert page.evaluate("window.__marker") == "same page"


def test_filters_and_rows_are_reachable_and_usable_by_keyboard(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, _ = watched_page
    record_many(user, 3, pipeline="Code review", tags=["nightly"])
    record_many(user, 3, pipeline="Research brief", start=T0 + timedelta(hours=1))
    sign_in(page, user.email)
    page.focus("#filter-q")
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("""() => {
            const el = document.activeElement;
            return el.matches('a.row-link') ? 'row' : (el.name || el.textContent.trim().split(' ')[0]);
        }"""))
    for wanted in ("Pipeline", "Model", "Tags", "status", "from", "to", "sort", "row"):
        assert wanted in reached, (wanted, reached)
    # Open the pipeline menu with the keyboard, tick a pipeline with Space: the list narrows.
    page.focus("#menu-pipeline summary")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.value") == "Code review"
    page.keyboard.press("Space")
    page.wait_for_url(re.compile(r"pipeline=Code\+review"))
    page.wait_for_function("document.querySelectorAll('a.row-link').length === 3")
    page.keyboard.press("Escape")
    assert page.locator("#menu-pipeline[open]").count() == 0


def test_a_preset_sets_the_dates_and_a_bad_range_is_explained_beside_the_field(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, watch = watched_page
    recent = make_run(user, name="Recent run", completed_at=datetime.now(timezone.utc) - timedelta(days=2))
    make_run(user, name="Old run", completed_at=datetime.now(timezone.utc) - timedelta(days=20))
    sign_in(page, user.email)
    page.click("a.preset:has-text('7 days')")
    page.wait_for_url(re.compile(r"from=\d{4}-\d\d-\d\d&to=\d{4}-\d\d-\d\d$"))
    page.wait_for_function("document.querySelectorAll('a.row-link').length === 1")
    assert row_ids(page) == [recent.id]
    watch.expect_error("400")  # the refused range, answered with its message
    watch.expect_error("Failed to load resource")
    page.fill("input[name=from]", "2025-03-05")
    page.fill("input[name=to]", "2025-03-01")
    page.locator("input[name=to]").dispatch_event("change")
    page.wait_for_selector("#error-to:has-text('from must not be after to')")
    assert page.locator("#artifact-results .error-box").is_visible()
    page.fill("input[name=to]", "2025-03-09")
    page.locator("input[name=to]").dispatch_event("change")
    page.wait_for_selector("#error-to:empty", state="attached")
    page.wait_for_function("document.querySelectorAll('a.row-link').length === 0")  # 2025-03-01 to 09: none
    assert page.locator("#artifact-results .error-box").count() == 0
