"""The list in a real browser: signing in and out, infinite scroll, filters, an expired session, no JavaScript."""

from __future__ import annotations

import re
from typing import Any

from artifacts_app.extensions import db
from artifacts_app.models import User
from tests.browser.conftest import LiveServer, PageWatch, row_ids, scroll_to_end, sign_in
from tests.factories import LOGIN_FAILED_MESSAGE, PASSWORD, record_many


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


def test_a_filter_changes_the_url_survives_reload_and_scrolling(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, _ = watched_page
    record_many(user, 80, models=("gpt-4o", "claude-haiku-4-5"))
    sign_in(page, user.email)
    page.evaluate("window.__marker = 'same page'")
    page.select_option("select[name=model]", "claude-haiku-4-5")
    page.click("button:has-text('Apply')")
    page.wait_for_url(re.compile(r"model=claude-haiku-4-5"))
    page.wait_for_function("document.querySelectorAll('a.row-link').length === 25")
    assert page.evaluate("window.__marker") == "same page"
    page.wait_for_load_state("networkidle")  # the totals fragment is still loading; a reload would abort it
    page.reload()
    assert page.locator("select[name=model]").input_value() == "claude-haiku-4-5"
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
