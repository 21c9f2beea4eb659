"""Compressed responses (artifacts_app/compression.py): brotli or gzip when the client accepts it, the
same body once decoded, Vary beside HX-Request, nothing under the size threshold, streams still
streamed, and no compression where a full page echoes query input beside its CSRF token (BREACH)."""

from __future__ import annotations

import base64
import gzip
import json
import os
import zlib
from typing import Any

import brotli
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from artifacts_app import compression, queries
from artifacts_app.artifacts import exports
from artifacts_app.compression import chosen_coding
from artifacts_app.models import PipelineRun, User
from tests.api_helpers import API, Caller, ada  # noqa: F401 (a fixture)
from tests.factories import make_run, steps
from tests.http_helpers import without_csrf_tokens

HX = {"HX-Request": "true"}
GZIP = {"Accept-Encoding": "gzip"}
BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}  # what Chromium sends
# Markdown like a model's: repetitive enough that a page of it compresses well.
LONG_STEP = "## Findings\n\n" + "".join(f"- Item {i}: the pagination code was checked and is fine.\n" for i in range(60))


@pytest.fixture
def run(user: User) -> PipelineRun:
    return make_run(user, steps=steps(LONG_STEP, "beta " * 200, "gamma"), final_output="omega " * 300)


def decoded(response: TestResponse) -> bytes:
    body = response.get_data()
    encoding = response.headers.get("Content-Encoding")
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "br":
        return bytes(brotli.decompress(body))
    assert encoding is None, encoding
    return body


def vary(response: TestResponse) -> set[str]:
    return {value.strip().lower() for value in response.headers.get("Vary", "").split(",") if value.strip()}


def same_page(one: bytes, other: bytes) -> bool:
    """Equal but for the CSRF tokens, which are signed with the time and so differ from request to request."""
    return without_csrf_tokens(one.decode()) == without_csrf_tokens(other.decode())


@pytest.mark.parametrize(("accept", "encoding"), [(GZIP, "gzip"), (BROWSER, "br")])
def test_a_run_page_comes_back_compressed_and_decodes_to_the_same_page(
    signed_in: FlaskClient, run: PipelineRun, accept: dict[str, str], encoding: str
) -> None:
    plain = signed_in.get(f"/artifacts/{run.id}?tab=step-1")
    packed = signed_in.get(f"/artifacts/{run.id}?tab=step-1", headers=accept)
    assert plain.status_code == packed.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == encoding
    assert int(packed.headers["Content-Length"]) == len(packed.get_data()) < len(plain.get_data()) / 3
    assert same_page(decoded(packed), plain.get_data())
    for response in (plain, packed):
        assert {"hx-request", "accept-encoding"} <= vary(response)
        assert response.headers["Cache-Control"] == "no-store"  # and the other hooks' headers are all there
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_json_api_response_comes_back_compressed_unless_it_fits_in_one_round_trip(
    client: FlaskClient, ada: Caller
) -> None:
    api_run = client.post(f"{API}/runs", headers=ada.headers, json={
        "pipeline": "Code review", "input": "PR #482", "status": "completed", "finalOutput": "done",
        "steps": steps(*[LONG_STEP * 2] * 4)}).get_json()["id"]
    plain = client.get(f"{API}/runs/{api_run}", headers=ada.headers)
    packed = client.get(f"{API}/runs/{api_run}", headers={**ada.headers, **GZIP})
    assert len(plain.get_data()) > compression.ONE_ROUND_TRIP_BYTES
    assert packed.headers["Content-Encoding"] == "gzip" and packed.mimetype == "application/json"
    assert json.loads(decoded(packed)) == plain.get_json() and "Content-Encoding" not in plain.headers
    assert "accept-encoding" in vary(plain) and "accept-encoding" in vary(packed)
    # The API's list compresses with a search in it too: a bearer token is no ambient credential.
    batch = [{"pipeline": "Code review", "input": f"PR {number}: pagination of the run list, checked once more"}
             for number in range(60)]
    assert client.post(f"{API}/runs/batch", headers=ada.headers, json={"runs": batch}).status_code == 200
    listed = client.get(f"{API}/runs?q=pagination&limit=100", headers={**ada.headers, **BROWSER})
    assert listed.headers["Content-Encoding"] == "br", len(listed.get_data())
    listed_ids = {item["id"] for item in json.loads(decoded(listed))["runs"]}
    assert api_run in listed_ids and len(listed_ids) == 61  # its steps say "pagination" too
    # A smaller answer (a one-shot run's 201, of 4 KB here) goes as it is: one round trip either way.
    small = client.post(f"{API}/runs", headers={**ada.headers, **BROWSER}, json={
        "pipeline": "P", "input": "i", "status": "completed", "finalOutput": "done", "steps": steps(LONG_STEP)})
    assert small.status_code == 201 and 3_000 < len(small.get_data()) < compression.ONE_ROUND_TRIP_BYTES
    assert "Content-Encoding" not in small.headers and "accept-encoding" in vary(small)
    assert small.get_json()["steps"][0]["output"] == LONG_STEP


def test_without_accept_encoding_or_with_identity_nothing_is_compressed(signed_in: FlaskClient, run: PipelineRun) -> None:
    for headers in ({}, {"Accept-Encoding": "identity"}, {"Accept-Encoding": "gzip;q=0, br;q=0"}, HX):
        response = signed_in.get(f"/artifacts/{run.id}", headers=headers)
        assert response.status_code == 200 and "Content-Encoding" not in response.headers, headers
        assert "accept-encoding" in vary(response), headers


@pytest.mark.parametrize(("accept", "coding"), [
    ("gzip, deflate, br, zstd", "br"),
    ("gzip", "gzip"),
    ("GZIP;Q=0.5", "gzip"),
    ("gzip;q=1, br;q=0.5", "gzip"),
    ("gzip;q=0", None),  # q=0 refuses (Flask-Compress 1.25 alone would send gzip)
    ("br;q=0, *", "gzip"),
    ("*", "br"),
    ("*;q=0", None),
    ("identity", None),
    ("gzip;q=oops", None),
    ("", None),
])
def test_the_coding_is_the_offered_one_the_client_rates_highest(accept: str, coding: str | None) -> None:
    assert chosen_coding(accept, ["br", "gzip"]) == coding


def test_a_response_below_the_size_threshold_is_not_compressed(app: Flask, client: FlaskClient) -> None:
    health = client.get("/healthz", headers=BROWSER)
    assert health.status_code == 200 and len(health.get_data()) < app.config["COMPRESS_MIN_SIZE"]
    assert "Content-Encoding" not in health.headers and health.get_json()["status"] == "ok"
    assert "accept-encoding" in vary(health)


def test_errors_are_not_compressed(signed_in: FlaskClient, run: PipelineRun) -> None:
    # A 400 may echo what was wrong with the request; Flask-Compress leaves every non-2xx alone.
    bad = signed_in.get(f"/artifacts/{run.id}?tab=" + "x" * 600, headers=BROWSER)
    assert bad.status_code == 400 and "Content-Encoding" not in bad.headers


def test_a_full_page_that_echoes_query_input_beside_its_csrf_token_is_not_compressed(
    signed_in: FlaskClient, run: PipelineRun
) -> None:
    """BREACH: the list page shows `q` (and the filters) back in the search box beside the CSRF token."""
    listed = signed_in.get("/artifacts", headers=BROWSER)
    assert listed.headers["Content-Encoding"] == "br"  # no query: nothing of the attacker's on the page
    for query in ("q=pagination", "pipeline=Research+brief", "status=completed", "tag=x", "tab=step-1&q=x"):
        page = signed_in.get(f"/artifacts?{query}", headers=BROWSER)
        assert page.status_code == 200 and "Content-Encoding" not in page.headers, query
        assert "accept-encoding" in vary(page), query
        assert 'hx-headers=\'{"X-CSRFToken"' in page.get_data(as_text=True)  # the secret is there
    echoed = signed_in.get("/artifacts?q=xyzzy-guess", headers=BROWSER).get_data(as_text=True)
    assert "xyzzy-guess" in echoed  # and so is what the attacker chose
    # The same search as htmx asks for it: another site cannot add HX-Request, so it is compressed.
    results = signed_in.get("/artifacts?q=pagination", headers={**HX, **BROWSER})
    assert results.status_code == 200 and results.headers["Content-Encoding"] == "br"
    assert run.id in decoded(results).decode()
    # A run page's ?tab= is checked against final / step-N before a 200 shows it, its ?view= against
    # rendered / raw: compressed.
    assert signed_in.get(f"/artifacts/{run.id}?tab=step-2", headers=BROWSER).headers["Content-Encoding"] == "br"
    raw = signed_in.get(f"/artifacts/{run.id}?tab=step-2&view=raw", headers=BROWSER)
    assert raw.status_code == 200 and raw.headers["Content-Encoding"] == "br"
    assert "Content-Encoding" not in signed_in.get(f"/artifacts/{run.id}?view=xyzzy-guess", headers=BROWSER).headers


def test_a_download_streams_compressed(signed_in: FlaskClient, run: PipelineRun) -> None:
    plain = signed_in.get(f"/artifacts/{run.id}/download?part=all&format=json", buffered=False)
    packed = signed_in.get(f"/artifacts/{run.id}/download?part=all&format=json", headers=BROWSER, buffered=False)
    assert plain.is_streamed and packed.is_streamed
    assert packed.headers["Content-Encoding"] == "gzip" and "Content-Length" not in packed.headers
    assert packed.headers["Content-Disposition"] == plain.headers["Content-Disposition"]
    assert json.loads(decoded(packed)) == json.loads(plain.get_data())


# Streams are gzipped even for a browser that takes brotli: brotli's stream encoder holds megabytes
# of input before its first byte out.
@pytest.mark.parametrize("accept", [GZIP, BROWSER])
def test_the_export_still_streams_batch_by_batch_when_compressed(
    signed_in: FlaskClient, user: User, monkeypatch: pytest.MonkeyPatch, accept: dict[str, str]
) -> None:
    # Six runs of 256 KB of random text each (it hardly compresses), one run to a batch: compressed
    # bytes come out while later batches are still unread, so the export is not held whole anywhere.
    monkeypatch.setattr(exports, "JSONL_BATCH", 1)
    for _ in range(6):
        make_run(user, steps=steps(base64.b64encode(os.urandom(192 * 1024)).decode()), final_output="done")
    fetched: list[int] = []
    real = queries.export_runs

    def counted(*args: Any, **kwargs: Any) -> Any:
        rows = real(*args, **kwargs)
        fetched.append(len(rows))
        return rows

    monkeypatch.setattr(queries, "export_runs", counted)
    plain = signed_in.get("/artifacts/export?format=jsonl", buffered=False)
    started_with = list(fetched)  # the first batch is read as the response starts
    expected = b"".join(plain.iter_encoded())
    plain.close()
    fetched.clear()
    response = signed_in.get("/artifacts/export?format=jsonl", headers=accept, buffered=False)
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Encoding"] == "gzip" and "Content-Length" not in response.headers
    assert fetched == started_with == [1]  # the compressor read no further to start sending
    unpack = zlib.decompressobj(16 + zlib.MAX_WBITS)
    text = b""
    fetched_at_first_bytes = None
    for chunk in response.iter_encoded():
        if chunk and fetched_at_first_bytes is None:
            fetched_at_first_bytes = len(fetched)
        text += unpack.decompress(chunk)
    response.close()
    assert fetched_at_first_bytes is not None and fetched_at_first_bytes < 6, fetched
    assert fetched == [1, 1, 1, 1, 1, 1, 0]
    assert text == expected and len(text.decode().splitlines()) == 6 + 1  # and the summary line


def test_a_static_file_is_compressed_whole_and_its_file_closed(client: FlaskClient, app: Flask) -> None:
    """Flask-Compress streams a static file through a generator that never closes it; the app reads
    it instead (a leaked file would fail this test with a ResourceWarning)."""
    assert app.static_folder is not None
    with open(os.path.join(app.static_folder, "app.css"), "rb") as source:
        expected = source.read()

    response = client.get("/static/app.css", headers=GZIP)

    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.get_data()) == expected
    response.close()
