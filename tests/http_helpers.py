"""Helpers for driving the app like a browser: CSRF tokens, logging in, reading Set-Cookie headers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from tests.factories import PASSWORD

_HIDDEN_INPUT = re.compile(r'<input\b[^>]*\bname="csrf_token"[^>]*>')
_VALUE = re.compile(r'\bvalue="([^"]+)"')
_HEADER = re.compile(r'"X-CSRFToken": "([^"]+)"')  # the <body hx-headers> htmx sends with every request
METHODS = ("GET", "POST")


class IsolatedClient(FlaskClient):
    """A test client whose every request gets its own app context, as under a real server.

    The `app` fixture keeps an app context pushed for the whole test, and Flask reuses it for
    requests: `g` (where Flask-Login caches the current user and Flask-WTF its CSRF verdict)
    and the SQLAlchemy session would then leak from one request into the next, and a test of
    logout or of a replayed cookie could pass for the wrong reason.
    """

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        # A streamed body must be read inside the request's own context, so it is buffered here.
        # A test that wants to see the stream itself passes buffered=False and gives up isolation.
        if kwargs.get("buffered") is False:
            return super().open(*args, **kwargs)
        kwargs["buffered"] = True
        with self.application.app_context():
            return super().open(*args, **kwargs)


def browser(app: Flask) -> IsolatedClient:
    """A fresh client (no cookies) whose requests are isolated from each other and from the test."""
    return IsolatedClient(app, app.response_class, use_cookies=True)


def csrf_from(html: str) -> str:
    """The CSRF token of a page: its form field if it has one, else the one htmx sends."""
    hidden = _HIDDEN_INPUT.search(html)
    if hidden:
        value = _VALUE.search(hidden.group(0))
        if value:
            return value.group(1)
    header = _HEADER.search(html)
    assert header, "the page carries no CSRF token"
    return header.group(1)


def csrf_token(client: FlaskClient, path: str = "/login", **kwargs: Any) -> str:
    """GET a page (which also sets the session cookie holding the token's secret) and return its token."""
    response = client.get(path, **kwargs)
    assert response.status_code == 200, (path, response.status_code)
    return csrf_from(response.get_data(as_text=True))


def post_login(
    client: FlaskClient,
    email: str,
    password: str = PASSWORD,
    *,
    remember: bool = False,
    next_url: str | None = None,
    token: str | None = None,
    environ_base: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    """POST the login form as a browser would (fetching the form first unless a token is given)."""
    extra: dict[str, Any] = {}
    if environ_base:
        extra["environ_base"] = environ_base
    if headers:
        extra["headers"] = headers
    if token is None:
        token = csrf_token(client, **extra)
    data = {"csrf_token": token, "email": email, "password": password}
    if remember:
        data["remember"] = "y"
    query = {"next": next_url} if next_url is not None else None
    return client.post("/login", data=data, query_string=query, **extra)


def log_in(client: FlaskClient, email: str, password: str = PASSWORD, *, remember: bool = False) -> TestResponse:
    """Log in and insist it worked."""
    response = post_login(client, email, password, remember=remember)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == "/artifacts"
    return response


def log_out(client: FlaskClient) -> TestResponse:
    """Press "Sign out" on the artifact list (a POST with the page's CSRF token)."""
    token = csrf_token(client, "/artifacts")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert urlsplit(response.headers["Location"]).path == "/login"
    return response


def without_csrf_tokens(html: str) -> str:
    """The page with every CSRF token value replaced by a placeholder (they are signed with a timestamp)."""
    tokens = set(_HEADER.findall(html))
    for hidden in _HIDDEN_INPUT.findall(html):
        tokens.update(_VALUE.findall(hidden))
    for token in tokens:
        html = html.replace(token, "CSRF-TOKEN")
    return html


def redirect_target(response: TestResponse) -> tuple[str, dict[str, list[str]]]:
    """The path and parsed query of a redirect's Location."""
    parts = urlsplit(response.headers["Location"])
    assert not parts.scheme and not parts.netloc, response.headers["Location"]
    return parts.path, parse_qs(parts.query)


def is_login_redirect(response: TestResponse) -> bool:
    """Whether the response sends the browser to the login form."""
    if response.status_code != 302:
        return False
    return urlsplit(response.headers["Location"]).path == "/login"


@dataclass
class SetCookie:
    """One Set-Cookie header, attributes keyed in lower case (flags map to True)."""

    name: str
    value: str
    attributes: dict[str, str | bool] = field(default_factory=dict)

    @property
    def expires(self) -> datetime | None:
        raw = self.attributes.get("expires")
        return parsedate_to_datetime(raw) if isinstance(raw, str) else None


def set_cookies(response: TestResponse) -> dict[str, SetCookie]:
    """The response's Set-Cookie headers by cookie name."""
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        first, *rest = [part.strip() for part in header.split(";")]
        name, _, value = first.partition("=")
        attributes: dict[str, str | bool] = {}
        for part in rest:
            key, sep, attribute_value = part.partition("=")
            attributes[key.strip().lower()] = attribute_value.strip() if sep else True
        cookies[name] = SetCookie(name, value, attributes)
    return cookies


def rules(app: Flask) -> list[tuple[Rule, str]]:
    """(rule, method) for every route and method the app serves: what the route sweeps walk."""
    return [(rule, method) for rule in app.url_map.iter_rules() for method in sorted(rule.methods & set(METHODS))]


def fill(app: Flask, rule: Rule, values: dict[str, str]) -> str:
    """The rule's URL with its arguments filled in."""
    missing = rule.arguments - set(values)
    assert not missing, f"the sweep does not know how to fill {missing} in {rule.rule}"
    return app.url_map.bind("localhost").build(rule.endpoint, {name: values[name] for name in rule.arguments})
