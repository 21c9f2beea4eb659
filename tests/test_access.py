"""Access control swept over the URL map: new routes are covered without anyone listing them."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from artifacts_app import tokens
from artifacts_app.extensions import db
from tests.factories import make_run, make_user
from tests.http_helpers import csrf_token, fill, is_login_redirect, log_in, rules, without_csrf_tokens

PUBLIC_ENDPOINTS = {"auth.login", "auth.signup", "health.healthz", "static", "api.openapi_document"}
OWNED_ARGUMENTS = {"run_id", "token_id"}
def test_another_users_run_or_token_answers_exactly_like_a_missing_one(app: Flask, client: FlaskClient) -> None:
    owner, intruder = make_user("owner@example.com"), make_user("intruder@example.com")
    run = make_run(owner)
    owner_token, _ = tokens.create_token(owner, "owner's")
    _, intruder_clear = tokens.create_token(intruder, "intruder's")
    db.session.commit()
    theirs = {"run_id": run.id, "token_id": owner_token.id}
    missing = {"run_id": "00000000-0000-4000-8000-000000000000", "token_id": "00000000-0000-4000-8000-000000000001"}
    log_in(client, intruder.email)
    token = csrf_token(client, "/artifacts")
    covered = []
    for rule, method in rules(app):
        if not OWNED_ARGUMENTS & rule.arguments:
            continue
        answers = []
        for values in (theirs, missing):
            path = fill(app, rule, values)
            if rule.rule.startswith("/api/"):
                headers = {"Authorization": f"Bearer {intruder_clear}"}
                response = client.open(path, method=method, headers=headers, json={} if method == "POST" else None)
            elif method == "POST":
                response = client.post(path, data={"csrf_token": token})
            else:
                response = client.get(path)
            answers.append(response)
        mine, nothing = answers
        assert mine.status_code == 404, (method, rule.rule, mine.status_code)
        # Same page, byte for byte, but for the CSRF token's timestamp.
        assert without_csrf_tokens(mine.get_data(as_text=True)) == without_csrf_tokens(
            nothing.get_data(as_text=True)
        ), (method, rule.rule)
        covered.append(f"{method} {rule.rule}")
    # The sweep must have found the owned routes; an empty sweep proves nothing.
    assert len(covered) >= 7, covered
    db.session.expire_all()
    assert owner_token.revoked_at is None
    assert db.session.get(type(run), run.id).status == "completed"
    print("\ncovered:", *covered, sep="\n  ")


def test_every_private_route_sends_anonymous_visitors_to_login_or_401(app: Flask, client: FlaskClient) -> None:
    owner = make_user()
    run = make_run(owner)
    token, _ = tokens.create_token(owner, "t")
    db.session.commit()
    values = {"run_id": run.id, "token_id": token.id, "filename": "app.css"}
    csrf = csrf_token(client, "/login")
    checked = []
    for rule, method in rules(app):
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        path = fill(app, rule, values)
        if rule.rule.startswith("/api/"):
            response = client.open(path, method=method, json={} if method == "POST" else None)
            assert response.status_code == 401, (method, rule.rule, response.status_code)
            assert response.is_json and response.headers["WWW-Authenticate"].startswith("Bearer")
        else:
            response = client.post(path, data={"csrf_token": csrf}) if method == "POST" else client.get(path)
            location = response.headers.get("Location")
            assert is_login_redirect(response), (method, rule.rule, response.status_code, location)
        checked.append(f"{method} {rule.rule}")
    assert len(checked) >= 15, checked
    print("\nchecked:", *checked, sep="\n  ")


@pytest.mark.parametrize("path", ["/login", "/healthz", "/static/app.css"])
def test_public_routes_answer_anonymous_visitors(client: FlaskClient, path: str, app: Flask) -> None:
    assert client.get(path).status_code == 200


def test_every_form_post_without_a_csrf_token_is_a_400_and_changes_nothing(app: Flask, client: FlaskClient) -> None:
    owner = make_user("owner@example.com")
    run = make_run(owner)
    token, _ = tokens.create_token(owner, "kept")
    db.session.commit()
    log_in(client, owner.email)
    posts = [rule for rule, method in rules(app) if method == "POST" and not rule.rule.startswith("/api/")]
    assert {"auth.logout", "settings.revoke_token", "settings.create_token"} <= {rule.endpoint for rule in posts}
    for rule in posts:
        response = client.post(fill(app, rule, {"run_id": run.id, "token_id": token.id}), data={"name": "x"})
        assert response.status_code == 400, rule.rule
    db.session.rollback()
    assert db.session.get(type(token), token.id).revoked_at is None
    assert client.get("/artifacts").status_code == 200  # still signed in: the logout was refused
