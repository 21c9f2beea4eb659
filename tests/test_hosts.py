"""The Host header is the client's to choose: only configured names are served, and the API's absolute
URLs never come from an untrusted one (PUBLIC_BASE_URL, or the trusted request host)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from artifacts_app import config, tokens
from artifacts_app.extensions import db
from artifacts_app.urls import host_is_trusted
from tests.factories import make_run, make_user
from tests.http_helpers import log_in


def bearer(app: Flask) -> tuple[str, dict[str, str]]:
    owner = make_user("owner@example.com")
    run = make_run(owner)
    _, clear = tokens.create_token(owner, "executor")
    db.session.commit()
    return run.id, {"Authorization": f"Bearer {clear}"}


@pytest.mark.parametrize("host", ["evil.example", "evil.example:5000", "localhost.evil.example", "127.0.0.1.evil.example",
                                  "[::2]", "", "local host"])
def test_an_unconfigured_host_is_a_400_for_pages_and_api_and_is_not_echoed(
    app: Flask, client: FlaskClient, host: str
) -> None:
    run_id, headers = bearer(app)
    log_in(client, "owner@example.com")
    for path, extra in (("/login", {}), ("/artifacts", {}), (f"/artifacts/{run_id}", {}),
                        ("/api/v1/runs", headers), (f"/api/v1/runs/{run_id}", headers)):
        response = client.get(path, headers={**extra, "Host": host})
        assert response.status_code == 400, (path, host)
        body = response.get_data(as_text=True)
        assert "evil" not in body and "does not answer to that host name" in body, (path, body[:200])
        if path.startswith("/api/"):
            assert response.is_json and response.json["error"] == "bad_request", response.json
        else:
            assert response.mimetype == "text/html"


def test_a_write_under_an_unconfigured_host_stores_nothing(app: Flask, client: FlaskClient) -> None:
    _, headers = bearer(app)
    body = {"pipeline": "p", "input": "x", "status": "completed", "finalOutput": "y"}
    response = client.post("/api/v1/runs", json=body, headers={**headers, "Host": "evil.example"})
    assert response.status_code == 400
    assert len(client.get("/api/v1/runs", headers=headers).json["runs"]) == 1  # only bearer()'s run


@pytest.mark.parametrize("host", ["localhost", "localhost:5000", "127.0.0.1:8080", "[::1]:5000", "LOCALHOST"])
def test_the_local_names_are_served_by_default(client: FlaskClient, host: str) -> None:
    assert client.get("/login", headers={"Host": host}).status_code == 200


def test_api_urls_come_from_public_base_url_whatever_host_the_request_named(app: Flask, client: FlaskClient) -> None:
    run_id, headers = bearer(app)
    app.config["PUBLIC_BASE_URL"] = "https://artifacts.example.com/tools"
    app.config["ALLOWED_HOSTS"] = ["artifacts.example.com", "localhost"]
    for host in ("localhost", "artifacts.example.com"):
        run = client.get(f"/api/v1/runs/{run_id}", headers={**headers, "Host": host}).json
        assert run["url"] == f"https://artifacts.example.com/tools/artifacts/{run_id}"
        listed = client.get("/api/v1/runs", headers={**headers, "Host": host}).json["runs"][0]
        assert listed["url"] == run["url"]


def test_without_trusted_proxies_a_forwarded_host_is_ignored(app: Flask, client: FlaskClient) -> None:
    run_id, headers = bearer(app)
    response = client.get(f"/api/v1/runs/{run_id}", headers={**headers, "X-Forwarded-Host": "evil.example"})
    assert response.status_code == 200
    assert response.json["url"] == f"http://localhost/artifacts/{run_id}"


@pytest.mark.parametrize(("host", "trusted", "expected"), [
    ("artifacts.example.com", ["artifacts.example.com"], True),
    ("Artifacts.Example.com:443", ["artifacts.example.com"], True),
    ("eu.example.com", [".example.com"], True),
    ("example.com", [".example.com"], True),
    ("badexample.com", [".example.com"], False),
    ("example.com.evil", [".example.com"], False),
    ("[::1]:80", ["::1"], True),
    ("[::1", ["::1"], False),
    ("", ["localhost"], False),
])
def test_host_matching(host: str, trusted: list[str], expected: bool) -> None:
    assert host_is_trusted(host, trusted) is expected


def test_trusted_hosts_setting_defaults_to_the_public_base_urls_host_then_the_local_names() -> None:
    assert config.trusted_hosts(" A.example.com , .b.example ", None) == ["a.example.com", ".b.example"]
    assert config.trusted_hosts(None, "https://artifacts.example.com") == ["artifacts.example.com"]
    assert config.trusted_hosts("", None) == ["localhost", "127.0.0.1", "::1"]
