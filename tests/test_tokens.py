"""API tokens: the CLI, authentication, revocation and the settings page, on every database engine."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from artifacts_app import accounts, tokens
from artifacts_app.extensions import db
from artifacts_app.models import ApiToken, User
from tests.factories import make_user
from tests.http_helpers import IsolatedClient, browser, csrf_token, is_login_redirect, log_in, redirect_target

ADA = "ada@example.com"
NEW_TOKEN = re.compile(r'<code id="new-token">([^<]+)</code>')


@pytest.fixture
def ada(app: Flask) -> User:
    return make_user(ADA)


@pytest.fixture
def web(app: Flask, ada: User) -> IsolatedClient:
    """A browser logged in as Ada."""
    client = browser(app)
    log_in(client, ADA)
    return client


def fresh(token: ApiToken) -> ApiToken:
    db.session.expire_all()
    return db.session.execute(select(ApiToken).where(ApiToken.id == token.id)).scalar_one()


def token_count() -> int:
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(ApiToken)).scalar_one()


def issue(user: User, name: str = "nightly") -> tuple[ApiToken, str]:
    token, clear = tokens.create_token(user, name)
    db.session.commit()
    return token, clear


def every_stored_text() -> list[str]:
    """Every value of every column of every table, as text."""
    db.session.expire_all()
    values = []
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(select(table)).all():
            values.extend(str(value) for value in row)
    return values


# ---------------------------------------------------------------- flask tokens create


def test_cli_prints_the_token_alone_on_the_last_line_and_stores_only_hash_and_prefix(
    runner: FlaskCliRunner, ada: User
) -> None:
    result = runner.invoke(args=["tokens", "create", ADA, "--name", "CI host"])

    assert result.exit_code == 0, result.output
    clear = result.output.rstrip("\n").splitlines()[-1]
    assert re.fullmatch(r"art_[A-Za-z0-9_-]{40,}", clear), clear
    assert clear not in result.output.rstrip("\n").splitlines()[0]
    stored = db.session.execute(select(ApiToken)).scalar_one()
    assert stored.user_id == ada.id
    assert stored.name == "CI host"
    assert stored.token_hash == hashlib.sha256(clear.encode()).hexdigest()
    assert stored.prefix == clear[:12]
    assert not [value for value in every_stored_text() if clear in value]
    assert tokens.authenticate(clear) is not None


def test_cli_for_an_unknown_email_fails_clearly_and_creates_nothing(runner: FlaskCliRunner, ada: User) -> None:
    result = runner.invoke(args=["tokens", "create", "nobody@example.com", "--name", "CI host"])

    assert result.exit_code != 0
    assert "No user with email nobody@example.com" in result.output
    assert "art_" not in result.output
    assert token_count() == 0


# ---------------------------------------------------------------- authenticate, revoke


def test_authenticate_returns_the_owner_and_records_last_use(ada: User) -> None:
    token, clear = issue(ada)
    assert token.last_used_at is None

    user = tokens.authenticate(clear)
    db.session.commit()

    assert user is not None and user.id == ada.id
    assert fresh(token).last_used_at is not None


def test_authenticate_writes_last_use_at_most_once_a_minute(ada: User) -> None:
    token, clear = issue(ada)
    tokens.authenticate(clear)
    db.session.commit()
    first = fresh(token).last_used_at

    tokens.authenticate(clear)
    db.session.commit()
    assert fresh(token).last_used_at == first

    stale = fresh(token)
    stale.last_used_at = first - timedelta(minutes=2)  # type: ignore[operator]
    db.session.commit()
    tokens.authenticate(clear)
    db.session.commit()
    assert fresh(token).last_used_at > first  # type: ignore[operator]


def test_recording_a_use_never_commits_what_the_request_left_uncommitted(ada: User) -> None:
    # A view that wrote and returned without committing: the last use is kept, the write is not.
    token, clear = issue(ada)
    for write_now in (True, False):
        fresh(token).last_used_at = None
        db.session.commit()
        tokens.authenticate(clear, write_now=write_now)
        accounts.create_user(f"half-written-{write_now}@example.com", "a password long enough")  # not committed
        tokens.record_use()
        db.session.rollback()
        assert fresh(token).last_used_at is not None
        assert db.session.scalar(select(func.count()).select_from(User).where(
            User.email.like("half-written-%"))) == 0


def one_character_changed(clear: str, index: int) -> str:
    replacement = "A" if clear[index] != "A" else "B"
    return clear[:index] + replacement + clear[index + 1:]


def test_authenticate_refuses_wrong_altered_and_empty_tokens(ada: User) -> None:
    _, clear = issue(ada)
    other_user_token = "art_" + "x" * 43

    refused = {
        "unknown": other_user_token,
        "last character changed": one_character_changed(clear, -1),
        "middle character changed": one_character_changed(clear, 20),
        "prefix only": clear[:12],
        "truncated": clear[:-1],
        "extended": clear + "A",
        "without art_": clear[4:],
        "empty": "",
        "bare prefix": "art_",
    }
    for label, candidate in refused.items():
        assert tokens.authenticate(candidate) is None, label
    assert tokens.authenticate(clear) is not None


def test_revoked_token_stops_working_at_once_and_others_keep_working(ada: User) -> None:
    token, clear = issue(ada, "old")
    _, other = issue(ada, "new")
    assert tokens.authenticate(clear) is not None

    tokens.revoke(token)
    db.session.commit()

    assert tokens.authenticate(clear) is None
    assert fresh(token).revoked_at is not None
    assert tokens.authenticate(other) is not None


# ---------------------------------------------------------------- the settings page


def test_anonymous_visit_to_token_settings_redirects_to_login(app: Flask) -> None:
    response = browser(app).get("/settings/tokens")

    assert is_login_redirect(response)
    assert redirect_target(response)[1] == {"next": ["/settings/tokens"]}


def test_settings_page_lists_name_prefix_created_and_last_used(web: IsolatedClient, ada: User) -> None:
    used, used_clear = issue(ada, "research pipeline")
    unused, unused_clear = issue(ada, "spare laptop")
    tokens.authenticate(used_clear)
    db.session.commit()
    used, unused = fresh(used), fresh(unused)

    response = web.get("/settings/tokens")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    rows = {
        name: row
        for row in re.findall(r"<tr[^>]*>.*?</tr>", html, re.S)
        for name in (used.name, unused.name)
        if name in row
    }
    assert used.prefix in rows["research pipeline"]
    assert used.created_at.strftime("%Y-%m-%d %H:%M UTC") in rows["research pipeline"]
    assert used.last_used_at is not None
    assert f'datetime="{used.last_used_at.isoformat()}"' in rows["research pipeline"]
    assert unused.prefix in rows["spare laptop"]
    assert "never" in rows["spare laptop"]
    assert used_clear not in html and unused_clear not in html


def test_creating_a_token_redirects_and_shows_it_once(web: IsolatedClient, ada: User) -> None:
    token = csrf_token(web, "/settings/tokens")

    created = web.post("/settings/tokens", data={"csrf_token": token, "name": "CI host"})

    assert created.status_code == 303
    assert redirect_target(created)[0] == "/settings/tokens"
    response = web.get("/settings/tokens")
    assert 'data-copy="new-token"' in response.get_data(as_text=True)
    shown = NEW_TOKEN.search(response.get_data(as_text=True))
    assert shown
    clear = shown.group(1)
    owner = tokens.authenticate(clear)
    assert owner is not None and owner.id == ada.id
    stored = db.session.execute(select(ApiToken)).scalar_one()
    assert stored.name == "CI host" and stored.prefix == clear[:12]

    again = web.get("/settings/tokens").get_data(as_text=True)
    assert clear not in again
    assert stored.prefix in again


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_creating_a_token_without_a_valid_name_is_422_with_an_error(
    web: IsolatedClient, ada: User, name: str
) -> None:
    token = csrf_token(web, "/settings/tokens")

    response = web.post("/settings/tokens", data={"csrf_token": token, "name": name})

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'class="field-error"' in html
    assert not NEW_TOKEN.search(html)
    assert token_count() == 0


def test_revoking_a_token_from_settings_revokes_it_and_lists_it_as_revoked(
    web: IsolatedClient, ada: User
) -> None:
    token, clear = issue(ada, "CI host")
    csrf = csrf_token(web, "/settings/tokens")

    page = web.get(f"/settings/tokens/{token.id}/revoke").get_data(as_text=True)
    assert f"Revoke token “CI host” (<code>{token.prefix}…</code>)? Pipelines using it stop at once." in page
    assert fresh(token).revoked_at is None  # asking changes nothing
    response = web.post(f"/settings/tokens/{token.id}/revoke", data={"csrf_token": csrf})

    assert response.status_code == 302
    assert redirect_target(response)[0] == "/settings/tokens"
    assert fresh(token).revoked_at is not None
    assert tokens.authenticate(clear) is None
    html = web.get("/settings/tokens").get_data(as_text=True)
    row = next(row for row in re.findall(r"<tr[^>]*>.*?</tr>", html, re.S) if "CI host" in row)
    assert 'class="revoked"' in row
    assert "revoked" in row.split("</td>")[-2]
    assert f"/settings/tokens/{token.id}/revoke" not in html


def test_revoking_another_users_token_is_404_and_leaves_it_active(web: IsolatedClient, ada: User) -> None:
    bob = make_user("bob@example.com")
    bobs, bobs_clear = issue(bob, "bob's runner")
    csrf = csrf_token(web, "/settings/tokens")

    response = web.post(f"/settings/tokens/{bobs.id}/revoke", data={"csrf_token": csrf})

    assert response.status_code == 404
    assert fresh(bobs).revoked_at is None
    owner = tokens.authenticate(bobs_clear)
    assert owner is not None and owner.id == bob.id
    assert bobs.prefix not in web.get("/settings/tokens").get_data(as_text=True)


def test_revoking_an_unknown_token_id_is_404(web: IsolatedClient, ada: User) -> None:
    csrf = csrf_token(web, "/settings/tokens")

    response = web.post("/settings/tokens/not-a-token/revoke", data={"csrf_token": csrf})

    assert response.status_code == 404



def test_a_session_restored_from_the_remember_cookie_must_confirm_the_password_to_create_a_token(
    app: Flask, ada: User
) -> None:
    client = browser(app)
    log_in(client, ADA, remember=True)
    client.delete_cookie("session")
    page = client.get("/settings/tokens")
    assert page.status_code == 200
    assert "creating a token needs your" in page.get_data(as_text=True)
    csrf = csrf_token(client, "/settings/tokens")

    refused = client.post("/settings/tokens", data={"csrf_token": csrf, "name": "CI host"})

    assert refused.status_code == 302
    assert redirect_target(refused) == ("/reauthenticate", {"next": ["/settings/tokens"]})
    assert token_count() == 0
    csrf = csrf_token(client, "/reauthenticate?next=/settings/tokens")
    wrong = client.post("/reauthenticate?next=/settings/tokens", data={"csrf_token": csrf, "password": "nope nope"})
    assert wrong.status_code == 200 and "That password is incorrect." in wrong.get_data(as_text=True)
    confirmed = client.post(
        "/reauthenticate?next=/settings/tokens", data={"csrf_token": csrf, "password": "correct horse battery"}
    )
    assert redirect_target(confirmed)[0] == "/settings/tokens"
    created = client.post("/settings/tokens", data={"csrf_token": csrf, "name": "CI host"})
    assert created.status_code == 303 and token_count() == 1


def test_password_change_revokes_tokens_unless_kept_and_keeps_this_browser_in(
    app: Flask, web: IsolatedClient, ada: User
) -> None:
    _, clear = issue(ada, "CI host")
    other = browser(app)
    log_in(other, ADA)
    csrf = csrf_token(web, "/settings/password")
    data = {"csrf_token": csrf, "current": "correct horse battery", "password": "a new password", "confirm": "a new password"}

    bad = web.post("/settings/password", data={**data, "current": "wrong one"})
    assert bad.status_code == 422 and "That password is incorrect." in bad.get_data(as_text=True)
    changed = web.post("/settings/password", data=data)

    assert changed.status_code == 303
    assert "1 API token was revoked" in web.get("/settings/password").get_data(as_text=True)
    assert tokens.authenticate(clear) is None
    assert web.get("/artifacts").status_code == 200
    assert is_login_redirect(other.get("/artifacts"))


def test_password_change_with_keep_tokens_leaves_every_token_working(
    app: Flask, web: IsolatedClient, ada: User
) -> None:
    _, first = issue(ada, "CI host")
    _, second = issue(ada, "laptop")
    csrf = csrf_token(web, "/settings/password")
    changed = web.post("/settings/password", data={
        "csrf_token": csrf, "current": "correct horse battery", "password": "a new password",
        "confirm": "a new password", "keep_tokens": "y",
    })
    assert changed.status_code == 303
    assert "your API tokens still work" in web.get("/settings/password").get_data(as_text=True)
    assert tokens.authenticate(first) is not None and tokens.authenticate(second) is not None
    db.session.commit()  # authenticate() recorded the use; release SQLite's write lock for the next login
    log_in(browser(app), ADA, "a new password")


@pytest.mark.parametrize(("flags", "revoked"), [([], True), (["--keep-tokens"], False)])
def test_cli_set_password_revokes_tokens_unless_kept(
    runner: FlaskCliRunner, ada: User, flags: list[str], revoked: bool
) -> None:
    _, first = issue(ada, "CI host")
    _, second = issue(ada, "laptop")
    result = runner.invoke(args=["users", "set-password", ADA, "--password-stdin", *flags],
                           input="a brand new password\n")
    assert result.exit_code == 0, result.output
    assert ("2 API tokens revoked." if revoked else "API tokens kept.") in result.output
    for clear in (first, second):
        assert (tokens.authenticate(clear) is None) is revoked
