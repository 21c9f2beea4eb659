"""Stored runs as the typed shapes of schemas.py: what the API returns, exports write and imports read back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from .models import PipelineRun, RunStep
from .schemas import ExportSummary, RunRecord, RunSummary, UsageOut

# A run as its columns: the ORM object, or a row of queries.EXPORT_COLUMNS (same names).
RunColumns = PipelineRun | Row[Any]
StepColumns = RunStep | Row[Any]


def step_fields(step: StepColumns) -> dict[str, Any]:
    """A step as data, in schemas.StepOut's order: what it lacks left out, times in ISO 8601."""
    fields: dict[str, Any] = {
        "agentId": step.agent_id, "agentName": step.agent_name, "output": step.output, "stepOrder": step.step_order,
    }
    if step.model is not None:
        fields["model"] = step.model
    if step.input_tokens is not None:
        fields["inputTokens"] = step.input_tokens
    if step.output_tokens is not None:
        fields["outputTokens"] = step.output_tokens
    if step.cost is not None:
        fields["cost"] = format(step.cost, "f")
    fields["status"] = step.status
    if step.started_at is not None:
        fields["startedAt"] = step.started_at.isoformat()
    if step.completed_at is not None:
        fields["completedAt"] = step.completed_at.isoformat()
    return fields


def record_fields(run: RunColumns, pipeline_name: str, steps: Sequence[StepColumns]) -> dict[str, Any]:
    """The run's fields as JSON-ready data in schemas.RunRecord's order; money as a decimal string,
    times in ISO 8601."""
    document = run.artifact_data
    return {
        "id": run.id,
        "pipeline": pipeline_name,
        "name": run.name,
        "tags": run.tags or [],
        # Keys sorted: PostgreSQL's jsonb keeps an order of its own, SQLite the one written; sorted,
        # every engine writes the same bytes.
        "metadata": dict(sorted((run.run_metadata or {}).items())),
        "status": run.status,
        "input": run.input,
        "variables": None if run.variables is None else dict(sorted(run.variables.items())),
        "model": run.model,
        # null marks a legacy run, stored before artifact_data existed: only finalOutput is real.
        "steps": [step_fields(step) for step in steps] if document else None,
        # Legacy runs have only the text column; newer runs keep both in step.
        "finalOutput": document["finalOutput"] if document else run.final_output,
        "usage": {"inputTokens": run.input_tokens, "outputTokens": run.output_tokens},
        "cost": None if run.cost is None else format(run.cost, "f"),
        "costSource": run.cost_source,
        "error": run.error,
        "createdAt": run.created_at.isoformat(),
        "completedAt": run.completed_at.isoformat() if run.completed_at else None,
    }


def run_record(run: PipelineRun, pipeline_name: str) -> RunRecord:
    """The run's JSON download: one export line's shape, as a model."""
    return RunRecord.model_validate(record_fields(run, pipeline_name, run.steps))


def json_line(fields: dict[str, Any]) -> str:
    """One line of JSON Lines: compact, non-ASCII kept as it is (JSON escapes the newlines in strings)."""
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")) + "\n"


def steps_array(steps: Sequence[StepColumns]) -> str:
    """A run's steps as the compact JSON array an export line holds."""
    return json.dumps([step_fields(step) for step in steps], ensure_ascii=False, separators=(",", ":"))


# Where a run's steps array goes in its line. No stored text holds NUL (schemas.STORABLE_PATTERN),
# and a string's own quotes and backslashes are escaped, so nothing else in a line reads like it.
STEPS_MARK = "\0steps"
STEPS_MARK_JSON = '"steps":"\\u0000steps"'


def export_line(run: RunColumns, pipeline_name: str, steps_json: str) -> str:
    """One run of an export: record_fields written straight as JSON, without a model per run, its
    steps the JSON array given (the tests hold the line to RunRecord's shape, byte for byte)."""
    fields = record_fields(run, pipeline_name, ())
    if fields["steps"] is None:  # a legacy run
        return json_line(fields)
    fields["steps"] = STEPS_MARK
    return json_line(fields).replace(STEPS_MARK_JSON, '"steps":' + steps_json, 1)


def summary_line(runs: int) -> str:
    """An export's last line, saying it reached its end and how many runs it holds."""
    return json_line(ExportSummary.model_validate({"export": {"runs": runs, "complete": True}}).model_dump(mode="json"))


def run_out(run: PipelineRun, pipeline_name: str, *, url: str, warnings: list[str] | None) -> dict[str, Any]:
    """The run as the API returns it, in schemas.RunOut's shape, JSON-ready; `warnings` is left out
    when None. Not passed through RunOut: these are the stored, already checked values, and building
    and dumping the model took about 25 µs, 2-3% of a one-shot POST's time in the app.
    tests/test_api_schema.py holds every answer to the OpenAPI document, which RunOut defines."""
    fields = record_fields(run, pipeline_name, run.steps) | {"url": url}
    if warnings is not None:
        fields["warnings"] = warnings
    return fields


def run_summary(row: Any, *, url: str) -> RunSummary:
    """A row of queries.list_runs as the API's list shows it."""
    return RunSummary(
        id=row.id, url=url, pipeline=row.pipeline_name, name=row.name, tags=row.tags or [],
        status=row.status, model=row.model,
        usage=UsageOut(input_tokens=row.input_tokens, output_tokens=row.output_tokens),
        cost=None if row.cost is None else format(row.cost, "f"), cost_source=row.cost_source,
        created_at=row.created_at.isoformat(),
        completed_at=row.completed_at.isoformat() if row.completed_at else None,
    )
