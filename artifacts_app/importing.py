"""Reading an export back: each JSONL line, already parsed as schemas.ImportedRun, stored exactly as
it was written (id, times, usage, cost and cost source), unlike the API, which prices at completion."""

from __future__ import annotations

from . import queries
from .models import PipelineRun, User
from .recording import RunValidationError, check_finish, name_from_input, pipeline_for, store_new, stored_steps
from .schemas import ImportedRun
from .statuses import RunStatus


def import_run(user: User, line: ImportedRun) -> PipelineRun:
    """Store a run exactly as an export wrote it: its id, times, usage, cost and cost source.

    Unlike the API, an import is an operator's copy of runs already priced, so the stored cost
    is kept rather than recomputed from today's price table. `steps: null` marks a legacy run.
    """
    check_finish(line.completed_at, line.created_at)
    if line.id is not None and queries.run_exists(line.id):
        raise RunValidationError("id", "a run with this id already exists")
    legacy = line.steps is None
    final_output = line.final_output or ""
    usage = line.usage
    pipeline = line.pipeline.strip()
    run = PipelineRun(
        id=line.id,
        pipeline=pipeline_for(user, pipeline),
        user_id=user.id,
        status=line.status,
        name=line.name.strip() if line.name else name_from_input(line.input),
        tags=list(line.tags) if line.tags else None,
        run_metadata=dict(line.metadata) if line.metadata else None,
        input=line.input,
        variables=line.variables,
        model=line.model,
        artifact_data=None if legacy else {"finalOutput": final_output},
        final_output=final_output if legacy or line.status == RunStatus.COMPLETED else None,
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        cost=line.cost,
        cost_source=line.cost_source,
        error=line.error,
        created_at=line.created_at,
        completed_at=line.completed_at,
    )
    steps = None if legacy else stored_steps(line.steps)
    for step in steps or ():
        # An export does not say whether a step's cost was the provider's or computed: unknown, so a
        # reprice keeps it (RunStep.cost_source).
        step.pop("costSource", None)
    return store_new(run, pipeline, steps)
