"""The health endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from artifacts_app import __version__
from artifacts_app.errors import retry_url
from tests.conftest import make_app


def test_healthz_reports_version_and_database(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "version": __version__, "database": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_is_503_when_the_database_does_not_answer(tmp_path: Path) -> None:
    # A PostgreSQL URL on a port nothing listens on: the check must fail fast and say so.
    broken = make_app(
        "postgresql+psycopg://nobody:nothing@127.0.0.1:9/none",
        tmp_path,
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 2}},
    )
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["database"] == "down"
    assert response.json["status"] == "unavailable"
    assert "database is down" in response.json["message"]
    assert response.headers["Retry-After"] == "5"


# As the server hands the path over (PATH_INFO, decoded): %5C and %09 as a browser would send them
# (werkzeug itself reads "//evil.example" as the local "/evil.example").
@pytest.mark.parametrize("path", ["/\\evil.example", "/\t/evil.example", "/\\/evil.example"])
def test_a_try_again_link_never_leads_off_the_site(app: Flask, path: str) -> None:
    with app.test_request_context(environ_overrides={"PATH_INFO": path}):
        assert retry_url() is None
    with app.test_request_context("/artifacts?q=batteries"):
        assert retry_url() == "/artifacts?q=batteries"
