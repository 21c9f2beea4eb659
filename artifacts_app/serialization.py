"""Stored runs as the typed shapes of schemas.py: what the API returns, exports write and imports read back."""

from __future__ import annotations

from typing import Any

from .models import PipelineRun, RunStep
from .schemas import RunOut, RunRecord, RunSummary, UsageOut


def step_fields(step: RunStep) -> dict[str, Any]:
    """A step as data: its times in ISO 8601, what it lacks left out."""
    fields: dict[str, Any] = dict(step.values())
    for name in ("startedAt", "completedAt"):
        if name in fields:
            fields[name] = fields[name].isoformat()
    return fields


def record_fields(run: PipelineRun, pipeline_name: str) -> dict[str, Any]:
    """The run's fields as data; money as a decimal string, times in ISO 8601."""
    document = run.artifact_data
    return {
        "id": run.id,
        "pipeline": pipeline_name,
        "name": run.name,
        "tags": run.tags or [],
        "metadata": run.run_metadata or {},
        "status": run.status,
        "input": run.input,
        "variables": run.variables,
        "model": run.model,
        # null marks a legacy run, stored before artifact_data existed: only finalOutput is real.
        "steps": [step_fields(step) for step in run.steps] if document else None,
        # Legacy runs have only the text column; newer runs keep both in step.
        "final_output": document["finalOutput"] if document else run.final_output,
        "usage": UsageOut(input_tokens=run.input_tokens, output_tokens=run.output_tokens),
        "cost": None if run.cost is None else format(run.cost, "f"),
        "cost_source": run.cost_source,
        "error": run.error,
        "created_at": run.created_at.isoformat(),
        "completed_at": run.completed_at.isoformat() if run.completed_at else None,
    }


def run_record(run: PipelineRun, pipeline_name: str) -> RunRecord:
    """One line of an export (and the run's JSON download)."""
    return RunRecord.model_validate(record_fields(run, pipeline_name))


def run_out(run: PipelineRun, pipeline_name: str, *, url: str, warnings: list[str] | None) -> RunOut:
    """The run as the API returns it; `warnings` is left out of the JSON when None."""
    fields = record_fields(run, pipeline_name) | {"url": url}
    if warnings is not None:
        fields["warnings"] = warnings
    return RunOut.model_validate(fields)


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
