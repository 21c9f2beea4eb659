"""Every input, no 500: generated values in every query parameter, form field and path segment
of every route in app.url_map, signed in and not; stored runs, pipelines and users never change."""

from __future__ import annotations

import collections
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from artifacts_app.extensions import db
from tests.factories import make_run, make_user
from tests.http_helpers import csrf_token, log_in, rules

# Every name the app reads from a query string or a form, plus some it does not.
PARAMETERS = ("pipeline", "model", "status", "from", "to", "cursor", "limit", "tab", "part", "format", "next",
              "q", "sort", "tag", "email", "password", "confirm", "remember", "name", "current_password",
              "new_password", "keep_tokens", "period", "by", "measure", "a", "b", "id", "unknown")
SPECIAL = [
    "", " ", "0", "-1", "1e309", "NaN", "²", "①", "٣", "0x10", "99999999999999999999", "1.5", "+7", "\x00", "\x7f",
    "\ud800", "\u202e", "\ufeff", "%00", "%", "../../etc/passwd", "' OR '1'='1", "1; DROP TABLE users", "{{7*7}}",
    "{% raw %}", "${7*7}", "<script>alert(1)</script>", "javascript:alert(1)", "//evil.example", "\r\nX-Injected: 1",
    "a" * 5000, "step-1", "step-999999", "step-0", "final", "all", "md", "json", "csv", "jsonl", "completed",
    "failed", "running", "2025-11-30", "9999-12-31", "0000-01-01", "true", "on", "day", "week", "model",
    "pipeline", "cost", "tokens",
]
VALUES = st.one_of(st.sampled_from(SPECIAL), st.text(max_size=40), st.integers().map(str),
                   st.floats(allow_nan=True).map(repr))
# Tables of what people keep; the throttle's counters and token use times are meant to change.
KEPT = {"pipeline_runs": None, "pipelines": None, "idempotency_keys": None, "users": ("id", "email", "password_hash")}
STATUSES: collections.Counter[int] = collections.Counter()


def kept_rows() -> dict[str, list[tuple[Any, ...]]]:
    db.session.rollback()
    snapshot = {}
    for table in db.metadata.sorted_tables:
        if table.name in KEPT:
            columns = [table.c[name] for name in KEPT[table.name]] if KEPT[table.name] else [table]
            snapshot[table.name] = [tuple(row) for row in db.session.execute(sa.select(*columns).order_by(*table.primary_key.columns))]
    return snapshot


@pytest.mark.parametrize("signed_in_as_owner", [True, False], ids=["signed-in", "anonymous"])
def test_no_generated_input_is_a_server_error_or_changes_what_is_stored(
    app: Flask, client: FlaskClient, signed_in_as_owner: bool
) -> None:
    app.config["SIGNUP_ENABLED"] = True
    owner = make_user("owner@example.com")
    run = make_run(owner)
    routes = [(rule, method) for rule, method in rules(app)
              if rule.endpoint not in ("static", "auth.logout", "auth.signup")]
    if signed_in_as_owner:
        log_in(client, owner.email)
    token = csrf_token(client, "/login" if not signed_in_as_owner else "/artifacts")
    before = kept_rows()

    @settings(max_examples=400, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(route=st.sampled_from(routes), segment=st.one_of(st.just(run.id), VALUES),
           fields=st.dictionaries(st.sampled_from(PARAMETERS), VALUES, max_size=5), with_csrf=st.booleans())
    def one_request(route: Any, segment: str, fields: dict[str, str], with_csrf: bool) -> None:
        rule, method = route
        # A lone surrogate has no UTF-8 form and cannot be sent; it arrives as "?" like a browser's.
        segment = segment.encode("utf-8", "replace").decode()
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<id:{argument}>", quote(segment, safe="")).replace(f"<{argument}>", quote(segment, safe=""))
        clean = {key: value.encode("utf-8", "replace").decode() for key, value in fields.items()}
        if method == "GET":
            response = client.get(path, query_string=clean)
        else:
            response = client.post(path, data={**clean, **({"csrf_token": token} if with_csrf else {})})
        STATUSES[response.status_code] += 1
        assert response.status_code < 500, (method, path, fields, response.get_data(as_text=True)[:300])

    one_request()
    assert kept_rows() == before
    print(f"\n{'signed in' if signed_in_as_owner else 'anonymous'}: {sum(STATUSES.values())} requests so far, "
          f"by status {dict(sorted(STATUSES.items()))}")
