"""The browser's defences on every response: each route of app.url_map, both methods, signed in,
anonymous and by API token, successes and errors alike, downloads and static files included."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from artifacts_app import tokens
from artifacts_app.extensions import db
from tests.factories import make_run, make_user
from tests.http_helpers import csrf_token, fill, log_in, rules

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# What a stored script, a style injected into a page or a framing site would need, and is refused.
CSP_DIRECTIVES = ("default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'",
                  "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'")


def assert_defended(response: TestResponse, what: str) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (what, response.status_code, name)
    policy = response.headers.get("Content-Security-Policy", "")
    directives = [part.strip() for part in policy.split(";")]
    for directive in CSP_DIRECTIVES:
        assert directive in directives, (what, directive, policy)
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, (what, policy)
    # HSTS over plain http would be ignored at best and wrong for `make run`.
    assert "Strict-Transport-Security" not in response.headers, what


def test_every_route_and_method_answers_with_the_security_headers(app: Flask, client: FlaskClient) -> None:
    owner = make_user("owner@example.com")
    run = make_run(owner)
    token, clear = tokens.create_token(owner, "executor")
    db.session.commit()
    values = {"run_id": run.id, "token_id": token.id, "filename": "app.css"}
    statuses: set[int] = set()
    for signed_in in (False, True):
        if signed_in:
            log_in(client, owner.email)
        form = {"csrf_token": csrf_token(client, "/artifacts" if signed_in else "/login")}
        for rule, method in rules(app):
            if rule.endpoint == "auth.logout":
                continue  # it would end the session the rest of the sweep needs
            path = fill(app, rule, values)
            headers = {"Authorization": f"Bearer {clear}"} if path.startswith("/api/") else {}
            if method == "GET":
                response = client.get(path, headers=headers)
            else:
                response = client.post(path, data=form, headers=headers)
            statuses.add(response.status_code)
            assert_defended(response, f"{method} {path} signed_in={signed_in}")
            if rule.endpoint != "static":  # static files are public and versioned; everything else may be private
                assert response.headers.get("Cache-Control") == "no-store", (method, path, response.headers)
    # The sweep saw pages, redirects and client errors, not only one kind of answer.
    assert {200, 302}.issubset(statuses) and any(400 <= status < 500 for status in statuses), statuses


@pytest.mark.parametrize(("path", "status"), [
    ("/no-such-page", 404), ("/artifacts/00000000-0000-4000-8000-000000000000", 404),
    ("/api/v1/runs/nope", 401),  # the API takes a token, never the session cookie
    ("/static/missing.js", 404),
])
def test_error_answers_carry_them_too(signed_in: FlaskClient, path: str, status: int) -> None:
    response = signed_in.get(path)
    assert response.status_code == status
    assert_defended(response, path)


@pytest.mark.parametrize("fmt", ["md", "txt", "json", "csv", "jsonl"])
def test_downloads_are_never_sniffed_into_html(app: Flask, client: FlaskClient, fmt: str) -> None:
    owner = make_user("owner@example.com")
    run = make_run(owner, final_output="<script>alert(1)</script>")
    log_in(client, owner.email)
    path = f"/artifacts/{run.id}/download?format={fmt}" if fmt in ("md", "txt", "json") else f"/artifacts/export?format={fmt}"
    response = client.get(path)
    assert response.status_code == 200, path
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    assert_defended(response, path)


@pytest.mark.engine_agnostic  # the login page reads no rows
def test_hsts_is_sent_over_https_only(client: FlaskClient) -> None:
    assert "Strict-Transport-Security" not in client.get("/login").headers
    secure = client.get("/login", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
