"""Login, logout and sign-up; open redirects; session fixation and real logout; cookie flags;
the login throttle; CSRF; htmx and expired sessions; private pages. Every test runs on both engines."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from werkzeug.security import check_password_hash as real_check_password_hash
from werkzeug.test import TestResponse

from artifacts_app import accounts
from artifacts_app.auth.views import safe_next
from artifacts_app.extensions import db
from artifacts_app.models import ApiToken, LoginFailure, User
from tests.conftest import dispose, make_app, truncate_all
from tests.factories import LOGIN_FAILED_MESSAGE, PASSWORD, make_user
from tests.http_helpers import (
    IsolatedClient,
    browser,
    csrf_from,
    csrf_token,
    is_login_redirect,
    log_in,
    log_out,
    post_login,
    redirect_target,
    set_cookies,
    without_csrf_tokens,
)

ADA = "ada@example.com"
_memory_runs = itertools.count(1)
WRONG = "not the password"


@pytest.fixture
def web(app: Flask) -> IsolatedClient:
    """A browser on the default app."""
    return browser(app)


@pytest.fixture
def ada(app: Flask) -> User:
    return make_user(ADA)


@pytest.fixture
def configured_app(
    database_url: str, engine_name: str, tmp_path: Path
) -> Iterator[Callable[..., Flask]]:
    """Build the app with config overrides (or environment set beforehand) on this test's database."""
    built: list[Flask] = []
    with ExitStack() as stack:

        def build(**overrides: Any) -> Flask:
            assert not built, "one configured app per test"
            app = make_app(database_url, tmp_path, **overrides)
            stack.enter_context(app.app_context())
            built.append(app)
            return app

        yield build
        if built:
            db.session.rollback()
            if engine_name == "postgresql":
                truncate_all(built[0])
            dispose(built[0])


def user_count() -> int:
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(User)).scalar_one()


def failure_rows() -> list[LoginFailure]:
    db.session.expire_all()
    return list(db.session.execute(select(LoginFailure)).scalars())


def age_failures(by: timedelta) -> None:
    """Pretend every recorded failure happened `by` earlier."""
    for row in failure_rows():
        row.failed_at = row.failed_at - by
    db.session.commit()


def address(number: int) -> dict[str, str]:
    return {"REMOTE_ADDR": f"10.0.0.{number}"}


def assert_throttled(response: TestResponse) -> int:
    """429 with an integer Retry-After of at most the window, and a page saying how long to wait."""
    assert response.status_code == 429, response.get_data(as_text=True)
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit(), retry_after
    seconds = int(retry_after)
    assert 1 <= seconds <= 900
    minutes = math.ceil(seconds / 60)
    assert re.search(rf"Try again in {minutes} minutes?\.", response.get_data(as_text=True))
    return seconds


def fail_logins(client: IsolatedClient, emails: list[str], addresses: list[dict[str, str]]) -> None:
    """One failed login per (email, address) pair; each must be answered with the form again, not 429."""
    token = csrf_token(client)
    for email, environ in zip(emails, addresses, strict=True):
        response = post_login(client, email, WRONG, token=token, environ_base=environ)
        assert response.status_code == 200, (email, environ, response.status_code)
        assert LOGIN_FAILED_MESSAGE in response.get_data(as_text=True)


# ---------------------------------------------------------------- login, logout, sign-up


def test_login_page_renders_form_with_email_password_remember_and_csrf_fields(web: IsolatedClient) -> None:
    response = web.get("/login")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for name in ("email", "password", "remember", "csrf_token"):
        assert re.search(rf'<input\b[^>]*\bname="{name}"', html), name
    assert 'type="password"' in html
    assert '<form method="post"' in html


def test_correct_credentials_in_any_case_log_in_and_redirect_to_artifacts(
    web: IsolatedClient, ada: User
) -> None:
    assert web.get("/artifacts").status_code == 302

    response = post_login(web, "Ada@Example.com", PASSWORD)

    assert response.status_code == 302
    assert response.headers["Location"] == "/artifacts"
    page = web.get("/artifacts")
    assert page.status_code == 200
    assert ADA in page.get_data(as_text=True)


def test_wrong_password_and_unknown_email_give_the_same_page_and_one_hash_check_each(
    web: IsolatedClient, ada: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def spy(pwhash: str, password: str) -> bool:
        calls.append(password)
        return real_check_password_hash(pwhash, password)

    monkeypatch.setattr(accounts, "check_password_hash", spy)
    token = csrf_token(web)

    wrong_password = post_login(web, ADA, WRONG, token=token)
    checks_for_wrong_password = len(calls)
    unknown_email = post_login(web, "nobody@example.com", WRONG, token=token)
    checks_for_unknown_email = len(calls) - checks_for_wrong_password

    assert wrong_password.status_code == unknown_email.status_code == 200
    assert checks_for_wrong_password == 1
    assert checks_for_unknown_email == 1
    first = wrong_password.get_data(as_text=True)
    second = unknown_email.get_data(as_text=True)
    assert first.count(LOGIN_FAILED_MESSAGE) == second.count(LOGIN_FAILED_MESSAGE) == 1
    # The only difference allowed is the email typed, echoed back into its field.
    assert without_csrf_tokens(first).replace(ADA, "EMAIL") == without_csrf_tokens(second).replace(
        "nobody@example.com", "EMAIL"
    )
    assert web.get("/artifacts").status_code == 302


def test_logout_by_post_with_csrf_ends_the_session(web: IsolatedClient, ada: User) -> None:
    log_in(web, ADA)
    assert web.get("/artifacts").status_code == 200

    log_out(web)

    assert is_login_redirect(web.get("/artifacts"))


def test_logout_by_get_is_method_not_allowed(web: IsolatedClient, ada: User) -> None:
    log_in(web, ADA)

    response = web.get("/logout")

    assert response.status_code == 405
    assert web.get("/artifacts").status_code == 200


def test_signup_is_not_found_when_disabled(web: IsolatedClient, app: Flask) -> None:
    assert app.config["SIGNUP_ENABLED"] is False
    token = csrf_token(web)

    assert web.get("/signup").status_code == 404
    response = web.post(
        "/signup", data={"csrf_token": token, "email": "eve@example.com", "password": PASSWORD, "confirm": PASSWORD}
    )

    assert response.status_code == 404
    assert user_count() == 0


def signup(client: IsolatedClient, email: str, password: str, confirm: str | None = None) -> TestResponse:
    token = csrf_token(client, "/signup")
    return client.post(
        "/signup",
        data={"csrf_token": token, "email": email, "password": password, "confirm": confirm or password},
    )


def test_signup_when_enabled_creates_the_user_and_logs_in(configured_app: Callable[..., Flask]) -> None:
    app = configured_app(SIGNUP_ENABLED=True)
    client = browser(app)

    response = signup(client, "Eve@Example.com", PASSWORD)

    assert response.status_code == 302
    assert response.headers["Location"] == "/artifacts"
    assert user_count() == 1
    assert accounts.authenticate("eve@example.com", PASSWORD) is not None
    assert client.get("/artifacts").status_code == 200


def test_signup_rejects_a_seven_character_password(configured_app: Callable[..., Flask]) -> None:
    app = configured_app(SIGNUP_ENABLED=True)
    client = browser(app)

    response = signup(client, "eve@example.com", "1234567")

    assert response.status_code == 200
    assert "Password must be at least 8 characters." in response.get_data(as_text=True)
    assert user_count() == 0
    assert is_login_redirect(client.get("/artifacts"))


def test_signup_with_an_existing_email_shows_an_error_and_creates_nothing(
    configured_app: Callable[..., Flask],
) -> None:
    app = configured_app(SIGNUP_ENABLED=True)
    make_user(ADA)
    client = browser(app)

    response = signup(client, "ADA@example.com", "another password")

    assert response.status_code == 200
    assert "An account with that email already exists." in response.get_data(as_text=True)
    assert user_count() == 1
    assert accounts.authenticate(ADA, PASSWORD) is not None
    assert accounts.authenticate(ADA, "another password") is None
    assert is_login_redirect(client.get("/artifacts"))


# ---------------------------------------------------------------- no open redirect

UNSAFE_NEXT = [
    "//evil.example",
    "https://evil.example/x",
    "javascript:alert(1)",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "http:/evil.example",
    "http://evil.example",
    "evil.example",
    "",
]


def test_login_honours_a_same_site_next(web: IsolatedClient, ada: User) -> None:
    response = post_login(web, ADA, next_url="/artifacts/abc?tab=step-2")

    assert response.status_code == 302
    assert response.headers["Location"] == "/artifacts/abc?tab=step-2"


@pytest.mark.parametrize("target", UNSAFE_NEXT, ids=repr)
def test_login_refuses_an_offsite_or_malformed_next(web: IsolatedClient, ada: User, target: str) -> None:
    response = post_login(web, ADA, next_url=target)

    assert response.status_code == 302
    assert response.headers["Location"] == "/artifacts"


def test_percent_encoded_tab_in_next_is_decoded_and_refused(web: IsolatedClient, ada: User) -> None:
    token = csrf_token(web)

    # Sent raw: werkzeug decodes %09 into a tab in request.args, which safe_next must refuse.
    response = web.post(
        "/login?next=/%09/evil.example", data={"csrf_token": token, "email": ADA, "password": PASSWORD}
    )

    assert response.status_code == 302
    assert response.headers["Location"] == "/artifacts"


def test_literal_percent_sequence_in_next_stays_a_same_site_path(web: IsolatedClient, ada: User) -> None:
    # Encoded once more, the value arrives as the literal text "/%09/evil.example": a path here.
    response = post_login(web, ADA, next_url="/%09/evil.example")

    assert response.status_code == 302
    assert response.headers["Location"] == "/%09/evil.example"  # one slash, then a path segment "%09"


def test_logged_in_visit_to_login_redirects_only_to_a_safe_next(web: IsolatedClient, ada: User) -> None:
    log_in(web, ADA)

    assert web.get("/login", query_string={"next": "//evil.example"}).headers["Location"] == "/artifacts"
    assert web.get("/login", query_string={"next": "/artifacts/x"}).headers["Location"] == "/artifacts/x"


def test_login_form_action_carries_only_the_sanitised_next(web: IsolatedClient) -> None:
    html = web.get("/login", query_string={"next": "https://evil.example/x"}).get_data(as_text=True)

    assert "evil.example" not in html
    assert 'action="/login?next=/artifacts"' in html


@pytest.mark.parametrize("target", UNSAFE_NEXT + ["/%09/evil.example", None], ids=repr)
def test_safe_next_falls_back_to_the_artifact_list(app: Flask, target: str | None) -> None:
    with app.test_request_context():
        result = safe_next(target)

    # The literal text "/%09/evil.example" is a path on this site (its "%09" is not decoded here).
    assert result == ("/%09/evil.example" if target == "/%09/evil.example" else "/artifacts")


@pytest.mark.parametrize("target", ["/artifacts/abc?tab=step-2", "/settings/tokens", "/artifacts"])
def test_safe_next_keeps_paths_on_this_site(app: Flask, target: str) -> None:
    with app.test_request_context():
        assert safe_next(target) == target


# ---------------------------------------------------------------- fixation, real logout


def session_data(app: Flask, cookie: str) -> dict[str, Any]:
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert serializer is not None
    return dict(serializer.loads(cookie))


def test_login_starts_a_new_session_instead_of_keeping_the_one_the_browser_brought(
    app: Flask, web: IsolatedClient, ada: User
) -> None:
    token = csrf_token(web)
    with web.session_transaction() as planted:
        planted["planted_by_attacker"] = "yes"
    before = web.get_cookie("session")
    assert before is not None
    assert session_data(app, before.value)["planted_by_attacker"] == "yes"

    response = post_login(web, ADA, token=token)

    assert response.status_code == 302
    after = web.get_cookie("session")
    assert after is not None
    assert after.value != before.value
    data = session_data(app, after.value)
    assert "planted_by_attacker" not in data
    # Even the CSRF secret of the pre-login session is gone: nothing carries over.
    assert data.get("csrf_token") != session_data(app, before.value).get("csrf_token")
    assert data["_user_id"] == db.session.get(User, ada.id).session_token


def test_session_cookie_replayed_after_logout_is_refused(app: Flask, web: IsolatedClient, ada: User) -> None:
    log_in(web, ADA)
    captured = web.get_cookie("session")
    assert captured is not None
    control = browser(app)
    control.set_cookie("session", captured.value)
    assert control.get("/artifacts").status_code == 200  # the copy works while the session lives

    log_out(web)

    replay = browser(app)
    replay.set_cookie("session", captured.value)
    assert is_login_redirect(replay.get("/artifacts"))


def test_remember_cookie_replayed_after_logout_is_refused(app: Flask, web: IsolatedClient, ada: User) -> None:
    log_in(web, ADA, remember=True)
    captured = web.get_cookie("remember_token")
    assert captured is not None
    control = browser(app)
    control.set_cookie("remember_token", captured.value)
    assert control.get("/artifacts").status_code == 200  # alone, it signs in while valid

    log_out(web)

    replay = browser(app)
    replay.set_cookie("remember_token", captured.value)
    assert is_login_redirect(replay.get("/artifacts"))


def test_logout_tells_the_browser_to_delete_the_remember_cookie(web: IsolatedClient, ada: User) -> None:
    log_in(web, ADA, remember=True)
    assert web.get_cookie("remember_token") is not None

    response = log_out(web)

    cookie = set_cookies(response).get("remember_token")
    assert cookie is not None, "logout sent no Set-Cookie for remember_token"
    assert cookie.value == ""
    assert cookie.expires is not None and cookie.expires < datetime.now(timezone.utc)
    assert web.get_cookie("remember_token") is None


def test_set_password_ends_existing_sessions_and_remember_cookies(
    app: Flask, web: IsolatedClient, ada: User
) -> None:
    log_in(web, ADA, remember=True)
    session_cookie = web.get_cookie("session")
    remember_cookie = web.get_cookie("remember_token")
    assert session_cookie is not None and remember_cookie is not None

    accounts.set_password(db.session.get(User, ada.id), "a brand new password")
    db.session.commit()

    assert is_login_redirect(web.get("/artifacts"))
    for name, cookie in (("session", session_cookie), ("remember_token", remember_cookie)):
        replay = browser(app)
        replay.set_cookie(name, cookie.value)
        assert is_login_redirect(replay.get("/artifacts")), name
    log_in(browser(app), ADA, "a brand new password")


def test_cli_set_password_ends_existing_sessions(
    app: Flask, web: IsolatedClient, runner: FlaskCliRunner, ada: User
) -> None:
    log_in(web, ADA)
    assert web.get("/artifacts").status_code == 200

    result = runner.invoke(args=["users", "set-password", ADA, "--password-stdin"], input="a brand new password\n")

    assert result.exit_code == 0, result.output
    assert is_login_redirect(web.get("/artifacts"))


# ---------------------------------------------------------------- cookie flags


def test_session_and_remember_cookies_are_httponly_secure_lax_and_remember_lasts_two_weeks(
    web: IsolatedClient, ada: User
) -> None:
    response = log_in(web, ADA, remember=True)
    cookies = set_cookies(response)

    session_cookie = cookies["session"]
    assert session_cookie.attributes.get("httponly") is True
    assert session_cookie.attributes.get("secure") is True
    assert str(session_cookie.attributes.get("samesite")).lower() == "lax"

    remember = cookies["remember_token"]
    assert remember.attributes.get("httponly") is True
    assert remember.attributes.get("secure") is True
    assert str(remember.attributes.get("samesite")).lower() == "lax"
    assert remember.expires is not None
    lifetime = remember.expires - datetime.now(timezone.utc)
    assert timedelta(days=13) < lifetime <= timedelta(days=14, minutes=1)


def test_login_page_session_cookie_is_secure_before_login_too(web: IsolatedClient) -> None:
    cookie = set_cookies(web.get("/login"))["session"]

    assert cookie.attributes.get("secure") is True
    assert cookie.attributes.get("httponly") is True


def test_insecure_cookies_setting_drops_only_the_secure_flag(
    configured_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSECURE_COOKIES", "1")
    app = configured_app()
    make_user(ADA)

    response = log_in(browser(app), ADA, remember=True)

    cookies = set_cookies(response)
    for name in ("session", "remember_token"):
        assert "secure" not in cookies[name].attributes, name
        assert cookies[name].attributes.get("httponly") is True, name
        assert str(cookies[name].attributes.get("samesite")).lower() == "lax", name


# ---------------------------------------------------------------- throttling


def test_eleventh_attempt_after_ten_failures_is_refused_even_with_the_right_password(
    web: IsolatedClient, ada: User
) -> None:
    fail_logins(web, [ADA] * 10, [address(1)] * 10)

    response = post_login(web, ADA, PASSWORD, environ_base=address(1))

    seconds = assert_throttled(response)
    assert seconds > 800  # the failures just happened: most of the 15-minute window is left
    assert is_login_redirect(web.get("/artifacts"))


def test_tenth_attempt_is_still_judged_on_its_password(web: IsolatedClient, ada: User) -> None:
    fail_logins(web, [ADA] * 9, [address(1)] * 9)

    response = post_login(web, ADA, PASSWORD, environ_base=address(1))

    assert response.status_code == 302
    assert response.headers["Location"] == "/artifacts"


def test_retry_after_counts_from_the_oldest_failure_in_the_window(web: IsolatedClient, ada: User) -> None:
    fail_logins(web, [ADA] * 5, [address(1)] * 5)
    age_failures(timedelta(minutes=10))
    fail_logins(web, [ADA] * 5, [address(1)] * 5)

    seconds = assert_throttled(post_login(web, ADA, PASSWORD, environ_base=address(1)))

    assert 240 < seconds <= 300
    assert "Try again in 5 minutes." in post_login(web, ADA, PASSWORD, environ_base=address(1)).get_data(
        as_text=True
    )


def test_login_works_again_once_the_window_has_passed(web: IsolatedClient, ada: User) -> None:
    fail_logins(web, [ADA] * 10, [address(1)] * 10)
    assert_throttled(post_login(web, ADA, PASSWORD, environ_base=address(1)))

    age_failures(timedelta(minutes=16))

    response = post_login(web, ADA, PASSWORD, environ_base=address(1))
    assert response.status_code == 302
    assert web.get("/artifacts").status_code == 200


def test_forwarded_for_is_ignored_without_trusted_proxies(app: Flask, web: IsolatedClient, ada: User) -> None:
    assert app.config["TRUSTED_PROXIES"] == 0
    token = csrf_token(web)
    for n in range(10):
        response = post_login(
            web, ADA, WRONG, token=token, environ_base=address(9),
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        )
        assert response.status_code == 200

    response = post_login(
        browser(app), ADA, PASSWORD, environ_base=address(9), headers={"X-Forwarded-For": "198.51.100.200"}
    )
    assert_throttled(response)


def test_one_trusted_proxy_makes_the_last_forwarded_for_entry_the_client_address(
    configured_app: Callable[..., Flask],
) -> None:
    app = configured_app(TRUSTED_PROXIES=1)
    make_user(ADA)
    proxy = address(1)
    client = browser(app)
    token = csrf_token(client, environ_base=proxy)
    make_user("bob@example.com")
    for n in range(10):
        # The first entry is whatever the client claimed; the proxy appended the real address.
        response = post_login(
            client, ADA, WRONG, token=token, environ_base=proxy,
            headers={"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.7"},
        )
        assert response.status_code == 200

    blocked = post_login(
        browser(app), ADA, PASSWORD, environ_base=proxy, headers={"X-Forwarded-For": "203.0.113.7"}
    )
    assert assert_throttled(blocked) > 800  # the pair's wall
    # Another client behind the same proxy is its own address: Bob gets in at once.
    other_client = post_login(
        browser(app), "bob@example.com", PASSWORD, environ_base=proxy, headers={"X-Forwarded-For": "203.0.113.8"}
    )
    assert other_client.status_code == 302
    assert {row.key for row in failure_rows() if row.key.startswith("ip:")} == {"ip:203.0.113.7"}


def test_limits_memory_store_also_refuses_the_eleventh_attempt(configured_app: Callable[..., Flask]) -> None:
    app = configured_app(RATELIMIT_STORAGE_URI="memory://")
    # The store may outlive this app (a process-wide cache is a fair fix): use names no other test uses.
    run = next(_memory_runs)
    email, environ = f"memory{run}@example.com", {"REMOTE_ADDR": f"10.77.{run}.1"}
    make_user(email)
    client = browser(app)
    fail_logins(client, [email] * 10, [environ] * 10)

    assert failure_rows() == []  # counted in the store, not in the database
    assert_throttled(post_login(client, email, PASSWORD, environ_base=environ))


# ---------------------------------------------------------------- CSRF


def test_login_without_csrf_token_is_a_readable_400(web: IsolatedClient, ada: User) -> None:
    web.get("/login")

    response = web.post("/login", data={"email": ADA, "password": PASSWORD})

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "The form expired or did not come from this site." in html
    assert "<html" in html
    assert is_login_redirect(web.get("/artifacts"))


def test_login_with_a_forged_csrf_token_is_refused(web: IsolatedClient, ada: User) -> None:
    token = csrf_token(web)

    response = post_login(web, ADA, token=token[:-2] + ("AA" if not token.endswith("AA") else "BB"))

    assert response.status_code == 400
    assert is_login_redirect(web.get("/artifacts"))


def test_logout_without_csrf_token_is_400_and_the_user_stays_logged_in(web: IsolatedClient, ada: User) -> None:
    log_in(web, ADA)

    response = web.post("/logout")

    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert web.get("/artifacts").status_code == 200


def test_token_creation_without_csrf_token_is_400_and_creates_nothing(web: IsolatedClient, ada: User) -> None:
    log_in(web, ADA)

    response = web.post("/settings/tokens", data={"name": "sneaky"})

    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.execute(select(func.count()).select_from(ApiToken)).scalar_one() == 0


def test_pages_carry_the_csrf_token_for_htmx_in_the_body_headers(web: IsolatedClient, ada: User) -> None:
    log_in(web, ADA)
    html = web.get("/artifacts").get_data(as_text=True)

    body = re.search(r"<body hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'>", html)
    assert body
    assert body.group(1) == csrf_from(html)  # the same token the page's forms carry


def test_htmx_post_with_the_token_only_in_the_header_is_accepted(web: IsolatedClient, ada: User) -> None:
    log_in(web, ADA)
    html = web.get("/artifacts").get_data(as_text=True)
    header_token = re.search(r'"X-CSRFToken": "([^"]+)"', html).group(1)  # type: ignore[union-attr]

    response = web.post("/logout", headers={"X-CSRFToken": header_token, "HX-Request": "true"})

    assert response.status_code == 302
    assert is_login_redirect(web.get("/artifacts"))


# ---------------------------------------------------------------- htmx and expired sessions


def test_htmx_request_without_session_gets_401_and_hx_redirect_to_login_with_the_page(
    web: IsolatedClient,
) -> None:
    response = web.get(
        "/artifacts",
        headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/artifacts?model=gpt-4o"},
    )

    assert response.status_code == 401
    target = urlsplit(response.headers["HX-Redirect"])
    assert target.path == "/login"
    assert parse_qs(target.query) == {"next": ["/artifacts?model=gpt-4o"]}
    vary = {value.strip().lower() for value in response.headers.get("Vary", "").split(",")}
    assert "hx-request" in vary
    body = response.get_data(as_text=True)
    assert 'name="password"' not in body
    assert "<form" not in body


def test_htmx_current_url_from_another_host_is_not_used_as_next(web: IsolatedClient) -> None:
    response = web.get(
        "/artifacts", headers={"HX-Request": "true", "HX-Current-URL": "https://evil.example/artifacts"}
    )

    assert response.status_code == 401
    target = urlsplit(response.headers["HX-Redirect"])
    assert parse_qs(target.query) == {"next": ["/artifacts"]}


def test_plain_request_without_session_redirects_to_login_with_next(web: IsolatedClient) -> None:
    response = web.get("/artifacts", query_string={"model": "gpt-4o"})

    assert response.status_code == 302
    path, query = redirect_target(response)
    assert path == "/login"
    assert query == {"next": ["/artifacts?model=gpt-4o"]}
    assert "HX-Redirect" not in response.headers


def test_next_from_the_login_redirect_round_trips_through_login(web: IsolatedClient, ada: User) -> None:
    path, query = redirect_target(web.get("/artifacts", query_string={"model": "gpt-4o"}))
    token = csrf_from(web.get(path, query_string={"next": query["next"][0]}).get_data(as_text=True))

    response = post_login(web, ADA, token=token, next_url=query["next"][0])

    assert response.headers["Location"] == "/artifacts?model=gpt-4o"


# ---------------------------------------------------------------- private pages


def test_private_and_login_pages_are_never_stored(web: IsolatedClient, ada: User) -> None:
    responses = {
        "anonymous /artifacts": web.get("/artifacts"),
        "anonymous /settings/tokens": web.get("/settings/tokens"),
    }
    responses["/login"] = web.get("/login")
    responses["failed login"] = post_login(web, ADA, WRONG)
    responses["login"] = log_in(web, ADA)
    responses["/artifacts"] = web.get("/artifacts")
    responses["/settings/tokens"] = web.get("/settings/tokens")

    for label, response in responses.items():
        assert response.headers.get("Cache-Control") == "no-store", label
    assert responses["/artifacts"].status_code == responses["/settings/tokens"].status_code == 200


def test_back_button_after_logout_gets_a_login_redirect_not_the_page(web: IsolatedClient, ada: User) -> None:
    log_in(web, ADA)
    assert ADA in web.get("/artifacts").get_data(as_text=True)

    log_out(web)
    response = web.get("/artifacts")

    assert is_login_redirect(response)
    assert ADA not in response.get_data(as_text=True)
    assert response.headers.get("Cache-Control") == "no-store"
