"""A run in the API's JSON shape: what the API returns, exports write and imports read back."""

from __future__ import annotations

from typing import Any

from .models import PipelineRun


def run_to_api(run: PipelineRun, pipeline_name: str) -> dict[str, Any]:
    """The run as JSON-ready data; money as a decimal string, times in ISO 8601."""
    document = run.artifact_data
    return {
        "id": run.id,
        "pipeline": pipeline_name,
        "status": run.status,
        "input": run.input,
        "variables": run.variables,
        "model": run.model,
        # null marks a legacy run, stored before artifact_data existed: only finalOutput is real.
        "steps": list(document["steps"]) if document else None,
        # Legacy runs have only the text column; newer runs keep both in step.
        "finalOutput": document["finalOutput"] if document else run.final_output,
        "usage": {"inputTokens": run.input_tokens, "outputTokens": run.output_tokens},
        "cost": None if run.cost is None else format(run.cost, "f"),
        "costSource": run.cost_source,
        "error": run.error,
        "createdAt": run.created_at.isoformat(),
        "completedAt": run.completed_at.isoformat() if run.completed_at else None,
    }
