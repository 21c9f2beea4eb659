"""Streaming exports of the filtered list: CSV of what the list shows, JSONL of whole runs."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from flask import Response, stream_with_context
from sqlalchemy import Row

from .. import queries
from ..filters import Cursor, ListFilters
from ..models import User
from ..paging import cursor_after
from ..serialization import export_line, steps_array, summary_line
from ..types import utcnow

FORMATS = ("csv", "jsonl")
CSV_BATCH = 1000
# Whole runs carry every step's output: a batch of 1,000 runs of three 2 KB steps each is about 7 MB
# of text (bench/export.py: the worker's peak RSS grows by about 30 MB). Larger batches save little
# (a query or two a batch) and hold more at once.
JSONL_BATCH = 1000
# And a batch holds at most this many bytes of lines (as queries.run_bytes counts them), or one run
# larger than that, so 1,000 runs of 5 MB each are not read at once: a worker holds a batch about
# three times over (the rows, their lines, the chunk sent), and may be exporting 4 times at once.
JSONL_BYTES = 16 * 1024 * 1024
# Cells a spreadsheet would read as a formula (OWASP "CSV injection"): =, +, -, @, tab, CR.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert_cell(value: object) -> object:
    """A CSV cell no spreadsheet evaluates: text starting like a formula gets a leading '."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def inert_row(values: Iterable[object]) -> list[object]:
    """Every cell of a CSV row made inert; numbers pass through unchanged."""
    return [inert_cell(value) for value in values]


CSV_HEADER = ("id", "pipeline", "name", "status", "model", "input_tokens", "output_tokens", "cost",
              "cost_source", "created_at", "completed_at", "tags")


def csv_lines(user: User, filters: ListFilters) -> Iterator[str]:
    """The list's columns, one CSV line per run, fetched in keyset batches."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def take() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_HEADER)
    yield take()
    after: Cursor | None = None
    while True:
        rows = queries.list_runs(user, filters, after, CSV_BATCH)
        for row in rows:
            writer.writerow(inert_row((
                row.id, row.pipeline_name, row.name, row.status, row.model or "",
                "" if row.input_tokens is None else row.input_tokens,
                "" if row.output_tokens is None else row.output_tokens,
                "" if row.cost is None else format(row.cost, "f"),
                row.cost_source or "", row.created_at.isoformat(),
                row.completed_at.isoformat() if row.completed_at else "", ", ".join(row.tags or ()),
            )))
        if rows:
            yield take()
        if len(rows) < CSV_BATCH:
            return
        after = cursor_after(rows[-1], filters)


def steps_arrays(user: User, runs: list[Row[Any]]) -> dict[str, str]:
    """Each run's steps as a JSON array: written by PostgreSQL with the runs, or here from one query
    of the batch's steps."""
    if not runs or "steps_array" in runs[0]._fields:
        return {run.id: run.steps_array for run in runs}
    steps = queries.export_steps(user, [run.id for run in runs])
    return {run.id: steps_array(steps.get(run.id, ())) for run in runs}


def jsonl_lines(user: User, filters: ListFilters) -> Iterator[str]:
    """Whole runs in the API's shape, one JSON document per line, in keyset batches (one query each
    on PostgreSQL, two elsewhere), then the summary line saying how many there were."""
    after: Cursor | None = None
    exported, limit = 0, JSONL_BATCH
    while True:
        runs = queries.export_runs(user, filters, after, limit, JSONL_BYTES)
        arrays = steps_arrays(user, runs)
        chunk = "".join(export_line(run, run.pipeline_name, arrays[run.id]) for run in runs)
        exported += len(runs)
        cut = bool(runs) and runs[-1].next_bytes is not None  # the byte budget left the next run out
        if not cut and len(runs) < limit:  # fewer runs than asked for, and none left out: the end
            yield chunk + summary_line(exported)
            return
        yield chunk
        last = runs[-1]
        after = Cursor(value=last.listed_at, run_id=last.id, filters=filters)
        # The next batch sizes at most twice as many runs as this one took when the budget cut it,
        # else twice as many as it asked: large runs are not sized 1,000 at a time for 15 taken.
        limit = min(JSONL_BATCH, 2 * (len(runs) if cut else limit))


def stream(user: User, filters: ListFilters, kind: str) -> Response:
    """A download of the filtered list's finished runs (an open run is not a record yet), newest
    first, produced while it is sent.

    JSONL ends with its summary line, so a cut-off download can be told from a whole one. CSV has no
    such row: a spreadsheet would take it for one more run; a CSV cannot say it was cut off.
    """
    filters = replace(filters, finished_only=True, sort="newest")
    lines = csv_lines(user, filters) if kind == "csv" else jsonl_lines(user, filters)
    mimetype = "text/csv" if kind == "csv" else "application/x-ndjson"
    filename = f"artifacts-{utcnow():%Y%m%d-%H%M%S}.{kind}"
    response = Response(stream_with_context(lines), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
