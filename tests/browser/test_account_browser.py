"""The account page in a real browser: the retention setting saved and shown, and deleting the
account with the password, which ends at the sign-in page with no way back in."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from artifacts_app.extensions import db
from artifacts_app.models import User
from tests.browser.conftest import PageWatch, sign_in
from tests.factories import LOGIN_FAILED_MESSAGE, PASSWORD, record_many


def test_setting_retention_shows_the_saved_value(watched_page: tuple[Any, PageWatch], user: User) -> None:
    page, watch = watched_page
    sign_in(page, user.email)
    page.click("nav >> text=Account")
    page.wait_for_url("**/settings/account")
    assert page.locator("#retention-now").inner_text() == "Your runs are kept for ever."
    assert page.is_checked("input[name=keep][value=forever]")

    page.check("input[name=keep][value=days]")
    page.fill("input[name=days]", "45")
    page.click("main button:has-text('Save')")

    page.wait_for_selector(".flash")
    assert page.locator(".flash").inner_text() == \
        "Runs finished more than 45 days ago will be deleted when retention is applied."
    assert page.locator("#retention-now").inner_text() == \
        "Runs finished more than 45 days ago are deleted when retention is applied."
    assert page.is_checked("input[name=keep][value=days]") and page.input_value("input[name=days]") == "45"
    page.reload()
    assert page.input_value("input[name=days]") == "45"

    # A bad number: the field says what is wrong, and the saved value stays.
    page.fill("input[name=days]", "9000")
    page.click("main button:has-text('Save')")
    watch.expect_error("400")
    page.wait_for_selector("#days-error")
    assert page.locator("#days-error").inner_text() == "Enter a whole number of days from 1 to 3,650."
    assert page.get_attribute("input[name=days]", "aria-invalid") == "true"
    db.session.rollback()
    assert db.session.get(User, user.id).retention_days == 45  # type: ignore[union-attr]


def test_deleting_the_account_ends_at_the_sign_in_page_and_signing_in_again_fails(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, watch = watched_page
    record_many(user, 3)
    sign_in(page, user.email, next_path="/settings/account")
    page.click("main a:has-text('Delete my account')")
    page.wait_for_url("**/settings/account/delete")
    assert "3 runs, with their inputs, steps and outputs" in page.locator("#account-contents").inner_text()

    page.fill("input[name=password]", "not my password")
    page.click("main button:has-text('Delete my account')")
    watch.expect_error("422")
    page.wait_for_selector(".field-error")
    assert page.locator(".field-error").inner_text() == "That password is incorrect. Nothing was deleted."

    page.fill("input[name=password]", PASSWORD)
    page.click("main button:has-text('Delete my account')")

    page.wait_for_url("**/login")
    assert page.locator(".flash").inner_text() == f"The account {user.email} and everything in it were deleted."
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(".form-error")
    assert LOGIN_FAILED_MESSAGE in page.locator(".form-error").inner_text()
    assert urlsplit(page.url).path == "/login"
