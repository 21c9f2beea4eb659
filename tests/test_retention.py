"""The retention setting: stored from the account page (bounded, a 400 with the field's error and
nothing stored for bad input), and applied by `flask runs prune --retention`, each user's own."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from artifacts_app.extensions import db
from artifacts_app.models import User
from tests.factories import make_user, record_many, start_run
from tests.http_helpers import browser, csrf_token, log_in
from tests.test_deleting import rows_mentioning
from tests.test_prune import listed

NOW = datetime.now(timezone.utc)


def checked(page: str) -> str:
    """The value of the retention choice the page has ticked."""
    found = [re.search(r'value="(\w+)"', tag).group(1)  # type: ignore[union-attr]
             for tag in re.findall(r'<input [^>]*name="keep"[^>]*>', page) if re.search(r"\bchecked\b", tag)]
    assert len(found) == 1, found
    return found[0]


def kept(user: User) -> int | None:
    db.session.rollback()
    return db.session.get(User, user.id).retention_days  # type: ignore[union-attr]


def save(client: FlaskClient, **form: str) -> tuple[int, str]:
    """POST the retention form as the page does; the status and the page it ends on."""
    data = {"csrf_token": csrf_token(client, "/settings/account"), **form}
    response = client.post("/settings/account/retention", data=data, follow_redirects=True)
    return response.status_code, response.get_data(as_text=True)


def test_the_setting_is_saved_and_said_plainly(signed_in: FlaskClient, user: User) -> None:
    page = signed_in.get("/settings/account").get_data(as_text=True)
    assert "Your runs are kept <strong>for ever</strong>." in page
    assert checked(page) == "forever"

    status, page = save(signed_in, keep="days", days=" 30 ")

    assert status == 200 and kept(user) == 30
    assert "Runs finished more than 30 days ago will be deleted when retention is applied." in page  # the flash
    assert "Runs finished more than <strong>30 days</strong>" in page and checked(page) == "days"
    assert 'value="30"' in page

    status, page = save(signed_in, keep="forever", days="not looked at")
    assert status == 200 and kept(user) is None and "Your runs are kept for ever." in page


@pytest.mark.parametrize(("form", "error"), [
    ({"keep": "days", "days": ""}, "Enter a whole number of days from 1 to 3,650."),
    ({"keep": "days", "days": "0"}, "Enter a whole number of days from 1 to 3,650."),
    ({"keep": "days", "days": "3651"}, "Enter a whole number of days from 1 to 3,650."),
    ({"keep": "days", "days": "-5"}, "Enter a whole number of days from 1 to 3,650."),
    ({"keep": "days", "days": "1.5"}, "Enter a whole number of days from 1 to 3,650."),
    ({"keep": "days", "days": "３０"}, "Enter a whole number of days from 1 to 3,650."),
    ({"keep": "days", "days": "9" * 400}, "Enter a whole number of days from 1 to 3,650."),
    ({"keep": "a while", "days": "30"}, "Not a valid choice."),
    ({"days": "30"}, "Choose how long to keep your runs."),
])
def test_bad_input_is_a_400_with_the_fields_error_and_stores_nothing(
    signed_in: FlaskClient, user: User, form: dict[str, str], error: str
) -> None:
    assert save(signed_in, keep="days", days="90")[0] == 200

    status, page = save(signed_in, **form)

    assert status == 400, page
    assert error in page and 'class="field-error"' in page
    assert kept(user) == 90


def test_without_the_csrf_token_nothing_is_stored(signed_in: FlaskClient, user: User) -> None:
    response = signed_in.post("/settings/account/retention", data={"keep": "days", "days": "5"})
    assert response.status_code == 400
    assert kept(user) is None


def test_the_setting_is_the_users_own(client: FlaskClient, user: User) -> None:
    other = make_user()
    log_in(client, user.email)
    save(client, keep="days", days="7")
    assert (kept(user), kept(other)) == (7, None)
    assert browser(client.application).get("/settings/account").status_code == 302  # private: to the login


def set_retention(user: User, days: int | None) -> None:
    db.session.get(User, user.id).retention_days = days  # type: ignore[union-attr]
    db.session.commit()


def test_prune_retention_applies_each_users_own_setting(app: Flask, runner: FlaskCliRunner, user: User) -> None:
    month = make_user()
    forever = make_user()
    set_retention(user, 90)
    set_retention(month, 30)
    user_old = record_many(user, 3, start=NOW - timedelta(days=120))
    user_kept = record_many(user, 2, start=NOW - timedelta(days=60))  # older than 30 days, younger than 90
    month_old = record_many(month, 4, start=NOW - timedelta(days=60))
    month_kept = record_many(month, 1, start=NOW - timedelta(days=10))
    month_open = start_run(month, pipeline="Live", input="still going", created_at=NOW - timedelta(days=300)).id
    forever_runs = record_many(forever, 2, start=NOW - timedelta(days=3000))
    db.session.commit()

    dry = runner.invoke(args=["runs", "prune", "--retention", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.strip() == ("Dry run: 7 runs of everyone's past their retention (kept 30 days: 1 user; "
                                  "kept 90 days: 1 user) would be deleted; nothing was.")
    db.session.rollback()
    assert listed(month) == {*month_old, *month_kept, month_open}

    only = runner.invoke(args=["runs", "prune", "--retention", "--user", user.email, "--batch-size", "2"])
    assert only.exit_code == 0, only.output
    assert f"Deleted 3 runs of {user.email}'s past their retention (kept 90 days: 1 user)." in only.output
    db.session.rollback()
    assert listed(user) == set(user_kept)
    assert len(listed(month)) == 6

    done = runner.invoke(args=["runs", "prune", "--retention", "--batch-size", "3"])

    assert done.exit_code == 0, done.output
    assert "Deleted 4 runs of everyone's past their retention (kept 30 days: 1 user; kept 90 days: 1 user)." \
        in done.output
    db.session.rollback()
    assert listed(user) == set(user_kept)
    assert listed(month) == {*month_kept, month_open}  # the open run stays, however old
    assert listed(forever) == set(forever_runs)
    assert all(rows_mentioning(run_id) == {} for run_id in [*user_old, *month_old])

    alone = runner.invoke(args=["runs", "prune", "--retention", "--user", forever.email])
    assert (alone.exit_code, alone.output.strip()) == (0, f"{forever.email} keeps runs for ever; nothing to delete.")


def test_prune_takes_exactly_one_of_an_age_and_retention(app: Flask, runner: FlaskCliRunner, user: User) -> None:
    set_retention(user, 1)
    ids = record_many(user, 2, start=NOW - timedelta(days=200))
    for args in (["--retention", "--older-than", "90d"], []):
        result = runner.invoke(args=["runs", "prune", *args])
        assert result.exit_code == 2, result.output
        assert "Give exactly one of --older-than AGE (the same age for everyone) and --retention" in result.output
    set_retention(user, None)
    nobody = runner.invoke(args=["runs", "prune", "--retention"])
    assert nobody.output.strip() == "No user has a retention setting (everyone keeps runs for ever); nothing to delete."
    db.session.rollback()
    assert listed(user) == set(ids)
