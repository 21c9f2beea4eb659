"""Deleting runs in a real browser: ticked in the list, confirmed above it, gone without a reload."""

from __future__ import annotations

from typing import Any

from artifacts_app.models import User
from tests.browser.conftest import PageWatch, row_ids, sign_in
from tests.factories import record_many


def test_ticked_runs_are_deleted_after_a_confirmation_without_a_page_load(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, _ = watched_page
    ids = list(reversed(record_many(user, 5)))  # newest first, as listed
    sign_in(page, user.email)
    page.evaluate("window.__marker = 'same page'")
    page.wait_for_selector("#totals strong")  # the totals load after the page
    totals = page.locator("#totals")
    assert totals.inner_text().startswith("5 runs")
    delete = page.locator("#selection .delete-selected")
    assert delete.is_disabled()

    page.check(f"#pick-{ids[1]}")
    page.check(f"#pick-{ids[3]}")
    assert page.locator("#selection .selected-count").inner_text() == "2 selected"
    delete.click()
    confirm = page.locator("#confirm-area .confirm-delete")
    confirm.wait_for()
    assert "Delete 2 runs for good?" in confirm.inner_text()
    assert page.evaluate("document.activeElement.textContent") == "Delete 2 runs"
    # Cancel closes the question and deletes nothing.
    page.click("#confirm-area .cancel-delete")
    assert page.locator("#confirm-area").inner_html() == "" and len(row_ids(page)) == 5

    delete.click()
    page.locator("#confirm-area button.danger").click()

    page.locator("#confirm-area .flash").wait_for()
    assert page.locator("#confirm-area .flash").inner_text() == "Deleted 2 runs."
    page.wait_for_function("() => document.getElementById('totals').textContent.trim().startsWith('3 runs')")
    assert row_ids(page) == [ids[0], ids[2], ids[4]]
    assert page.evaluate("window.__marker") == "same page"  # no page load happened
    page.reload()
    assert row_ids(page) == [ids[0], ids[2], ids[4]]


def test_a_run_is_deleted_from_its_page_and_the_list_says_so(watched_page: tuple[Any, PageWatch], user: User) -> None:
    page, _ = watched_page
    gone, kept = record_many(user, 2)
    sign_in(page, user.email, next_path=f"/artifacts/{gone}")
    page.click("text=Delete run…")
    page.wait_for_url(f"**/artifacts/delete?id={gone}")
    assert page.title() == "Delete 1 run · Artifacts"
    page.click("button.danger")
    page.wait_for_url("**/artifacts")
    assert "Deleted 1 run." in page.locator(".flash").inner_text()
    assert row_ids(page) == [kept]
