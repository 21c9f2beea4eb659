"""The JSON API as an executor calls it: a user with a bearer token, and what the API may have stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.test import TestResponse

from artifacts_app import tokens
from artifacts_app.extensions import db
from artifacts_app.models import User
from tests.factories import make_user

API = "/api/v1"
ADA = "ada@example.com"
# Tables an API write may change; users and api_tokens (last_used_at) are not the API's to write.
WRITTEN_TABLES = ("pipelines", "pipeline_runs", "pipeline_run_steps", "idempotency_keys")


@dataclass(frozen=True)
class Caller:
    """A user and the bearer token their executor sends."""

    user_id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def user(self) -> User:
        return db.session.get(User, self.user_id)  # type: ignore[return-value]


def as_recorded(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps as the API answers with them: a step sent without a status completed."""
    return [{"status": "completed", **step} for step in steps]


def untimed(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps without their times (which a step posted alone gets from the server's clock)."""
    return [{key: value for key, value in step.items() if key not in ("startedAt", "completedAt")} for step in steps]


def caller(email: str) -> Caller:
    user = make_user(email)
    _, clear = tokens.create_token(user, "executor")
    db.session.commit()
    return Caller(user.id, user.email, clear)


@pytest.fixture
def ada(app: Flask) -> Caller:
    """Ada (ada@example.com) and her executor's token; import it with the helpers that use it."""
    return caller(ADA)


def stored() -> dict[str, list[tuple[Any, ...]]]:
    """Every row the API may write, read fresh: equal snapshots mean nothing was stored or changed."""
    db.session.rollback()
    snapshot = {}
    for table in db.metadata.sorted_tables:
        if table.name in WRITTEN_TABLES:
            rows = db.session.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
            snapshot[table.name] = [tuple(row) for row in rows]
    return snapshot


def follow_pages(client: Any, who: Caller, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of GET /runs with these parameters, following nextCursor until it is null."""
    pages: list[list[dict[str, Any]]] = []
    query: dict[str, Any] = dict(params)
    while True:
        response = client.get(f"{API}/runs", query_string=query, headers=who.headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        pages.append(body["runs"])
        assert len(pages) < 100, "the cursor does not advance"
        if body["nextCursor"] is None:
            return pages
        query = {"cursor": body["nextCursor"], "limit": params.get("limit", "25")}


def assert_json_error(response: TestResponse, status: int, error: str | None = None) -> dict[str, Any]:
    """An error answered as the API's JSON {error, message}, never an HTML page."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json", response.headers
    assert not response.get_data(as_text=True).lstrip().startswith("<")
    body = response.get_json()
    assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]
    if error is not None:
        assert body["error"] == error, body
    return body
