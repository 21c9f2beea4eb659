"""The one writer of runs: start, add a step, complete, fail; the cost is fixed at write time.

Callers commit: each function validates everything before it touches the session, so a
rejected call leaves nothing half-written, and the caller decides where the transaction ends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from flask import current_app
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from . import limits, queries
from .extensions import db
from .models import ArtifactOutput, ArtifactStep, Pipeline, PipelineRun, User
from .pricing import PriceTable, calculate_cost
from .types import MONEY_LIMIT, MONEY_QUANTUM, utcnow

MAX_TOKENS = 2**31 - 1  # the columns are 32-bit integers
OPEN_STATUSES = ("pending", "running")


class RunValidationError(ValueError):
    """A run was rejected; `field` names the part at fault (e.g. "steps[2].stepOrder")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RunStateError(Exception):
    """The run exists but is not in a state that allows the change (already completed, say)."""


class RunNotFound(LookupError):
    """No run with that id belongs to the user."""


@dataclass(frozen=True)
class Usage:
    """Token counts and, when the provider reported one, the billed cost."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: Decimal | None = None


@dataclass(frozen=True)
class Pricing:
    """What a completed run is charged: tokens, cost, and where the cost came from."""

    input_tokens: int | None
    output_tokens: int | None
    cost: Decimal | None
    cost_source: str


def price_table() -> PriceTable:
    """The app's price table (the packaged one plus the operator's PRICES_FILE)."""
    return cast(PriceTable, current_app.extensions["price_table"])


def check_text(field: str, value: Any, *, limit: str = "MAX_OUTPUT_CHARS", required: bool = True) -> str:
    """A string within its named length limit, without NUL (PostgreSQL text and JSONB refuse it)."""
    if not isinstance(value, str):
        raise RunValidationError(field, "must be a string")
    # Length first: every later check is linear, but none is worth running on a string too long.
    maximum = limits.value(limit)
    if len(value) > maximum:
        raise RunValidationError(field, limits.refusal(limit, maximum))
    if "\x00" in value:
        raise RunValidationError(field, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (JSON "\ud800") has no UTF-8 form; no database can store it.
        raise RunValidationError(field, "must be valid Unicode (no lone surrogates)") from None
    if required and not value.strip():
        raise RunValidationError(field, "must not be empty")
    return value


def whole_number(value: Any) -> int | None:
    """An int, or a float with no fraction (JSON's 5.0 is the integer 5); bools are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def check_tokens(field: str, value: Any) -> int:
    """A non-negative integer token count that fits the column."""
    value = whole_number(value)
    if value is None:
        raise RunValidationError(field, "must be an integer")
    if value < 0:
        raise RunValidationError(field, "must not be negative")
    if value > MAX_TOKENS:
        raise RunValidationError(field, f"must be at most {MAX_TOKENS}")
    return value


def check_cost(field: str, value: Any) -> Decimal:
    """A provider-reported cost: a decimal string (or Decimal), non-negative, 12 places at most."""
    if isinstance(value, Decimal):
        cost = value
    elif isinstance(value, str):
        try:
            cost = Decimal(value.strip())
        except InvalidOperation:
            raise RunValidationError(field, "must be a decimal number in a string") from None
    else:
        # A JSON number would already have been through a float; money never is.
        raise RunValidationError(field, "must be a decimal string such as \"0.0042\"")
    if not cost.is_finite() or cost < 0:
        raise RunValidationError(field, "must be a finite, non-negative amount")
    # Compare before quantizing: quantize needs more digits than the context has for huge values.
    if cost >= MONEY_LIMIT or cost.as_tuple().exponent < -12:  # type: ignore[operator]
        raise RunValidationError(field, f"must have at most 12 decimal places and be below {MONEY_LIMIT}")
    return cost.quantize(MONEY_QUANTUM)


def check_time(field: str, value: Any) -> datetime:
    """A timezone-aware datetime that exists in UTC (year 1 at +01:00 does not)."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise RunValidationError(field, "must be a timezone-aware time")
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise RunValidationError(field, "must be a time between the years 1 and 9999 in UTC") from None


def check_variables(value: Any) -> dict[str, Any] | None:
    """Variables: an object of names to strings, numbers, booleans or null."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise RunValidationError("variables", "must be an object")
    most = limits.value("MAX_VARIABLES")
    if len(value) > most:
        raise RunValidationError("variables", limits.refusal("MAX_VARIABLES", most))
    checked: dict[str, Any] = {}
    for key, item in value.items():
        check_text("variables", key, limit="MAX_NAME_LENGTH")
        if isinstance(item, str):
            check_text(f"variables.{key}", item, limit="MAX_VARIABLE_CHARS", required=False)
        elif item is not None and not isinstance(item, (int, float, bool)):
            raise RunValidationError(f"variables.{key}", "must be a string, number, boolean or null")
        elif isinstance(item, float) and not math.isfinite(item):
            raise RunValidationError(f"variables.{key}", "must be a finite number")
        checked[key] = item
    return checked


def check_usage(field: str, value: Any) -> Usage:
    """{inputTokens, outputTokens, cost?}: each optional, each checked."""
    if value is None:
        return Usage()
    if not isinstance(value, Mapping):
        raise RunValidationError(field, "must be an object")
    return Usage(
        input_tokens=None if value.get("inputTokens") is None
        else check_tokens(f"{field}.inputTokens", value["inputTokens"]),
        output_tokens=None if value.get("outputTokens") is None
        else check_tokens(f"{field}.outputTokens", value["outputTokens"]),
        cost=None if value.get("cost") is None else check_cost(f"{field}.cost", value["cost"]),
    )


def check_step(index: int, value: Any) -> ArtifactStep:
    """One step in the artifact shape, with its optional model and usage."""
    field = f"steps[{index}]"
    if not isinstance(value, Mapping):
        raise RunValidationError(field, "must be an object")
    step_order = whole_number(value.get("stepOrder"))
    if step_order is None:
        raise RunValidationError(f"{field}.stepOrder", "must be an integer")
    step: ArtifactStep = {
        "agentId": check_text(f"{field}.agentId", value.get("agentId"), limit="MAX_NAME_LENGTH"),
        "agentName": check_text(f"{field}.agentName", value.get("agentName"), limit="MAX_NAME_LENGTH"),
        "output": check_text(f"{field}.output", value.get("output"), required=False),
        "stepOrder": step_order,
    }
    if value.get("model") is not None:
        step["model"] = check_text(f"{field}.model", value["model"], limit="MAX_NAME_LENGTH")
    # Usage may come nested ({"usage": {...}}, as on the run) or flat on the step.
    usage = check_usage(f"{field}.usage", value.get("usage")) if "usage" in value else check_usage(
        field, {k: value.get(k) for k in ("inputTokens", "outputTokens", "cost")}
    )
    if usage.input_tokens is not None:
        step["inputTokens"] = usage.input_tokens
    if usage.output_tokens is not None:
        step["outputTokens"] = usage.output_tokens
    if usage.cost is not None:
        step["cost"] = format(usage.cost, "f")
    return step


def check_steps(value: Any, *, first_order: int = 0) -> list[ArtifactStep]:
    """Steps whose stepOrder values are unique and run contiguously from `first_order`."""
    if value is None:
        return []
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise RunValidationError("steps", "must be a list")
    most = limits.value("MAX_STEPS")
    if first_order + len(value) > most:
        raise RunValidationError("steps", limits.refusal("MAX_STEPS", most))
    steps = sorted((check_step(i, item) for i, item in enumerate(value)), key=lambda s: s["stepOrder"])
    for expected, step in enumerate(steps, start=first_order):
        if step["stepOrder"] != expected:
            raise RunValidationError(
                "steps",
                f"stepOrder values must be unique and contiguous from {first_order}; "
                f"expected {expected}, found {step['stepOrder']}",
            )
    return steps


def step_has_usage(step: ArtifactStep) -> bool:
    """Whether a step reported its own token counts."""
    return "inputTokens" in step and "outputTokens" in step


def price_steps(steps: list[ArtifactStep], run_model: str | None, at: datetime) -> None:
    """Give each step with its own usage a cost (the provider's, else computed) in place."""
    for step in steps:
        if "cost" in step or not step_has_usage(step):
            continue
        model = step.get("model") or run_model
        cost = calculate_cost(model, step["inputTokens"], step["outputTokens"], at=at, table=price_table()) if model else None
        if cost is not None:
            step["cost"] = format(cost, "f")  # plain digits, never "5E-7"


def price_run(steps: list[ArtifactStep], model: str | None, usage: Usage, at: datetime) -> Pricing:
    """The run's tokens and cost: the steps' exact sums when every step has usage, else the run's."""
    if steps and all(step_has_usage(step) for step in steps):
        input_tokens = sum(step["inputTokens"] for step in steps)
        output_tokens = sum(step["outputTokens"] for step in steps)
        if max(input_tokens, output_tokens) > MAX_TOKENS:
            raise RunValidationError("steps", f"the steps' token counts add up to more than {MAX_TOKENS}")
        for name, given, total in (
            ("usage.inputTokens", usage.input_tokens, input_tokens),
            ("usage.outputTokens", usage.output_tokens, output_tokens),
        ):
            if given is not None and given != total:
                raise RunValidationError(name, f"is {given} but the steps add up to {total}")
        if usage.cost is not None:
            return Pricing(input_tokens, output_tokens, usage.cost, "provider")
        if all("cost" in step for step in steps):
            cost = sum((Decimal(step["cost"]) for step in steps), Decimal(0))
            if cost >= MONEY_LIMIT:
                raise RunValidationError("steps", "the steps' costs add up to more than the column holds")
            return Pricing(input_tokens, output_tokens, cost, "computed")
        return Pricing(input_tokens, output_tokens, None, "unpriced")

    if usage.cost is not None:
        return Pricing(usage.input_tokens, usage.output_tokens, usage.cost, "provider")
    if model and usage.input_tokens is not None and usage.output_tokens is not None:
        cost = calculate_cost(model, usage.input_tokens, usage.output_tokens, at=at, table=price_table())
        if cost is not None:
            return Pricing(usage.input_tokens, usage.output_tokens, cost, "computed")
    return Pricing(usage.input_tokens, usage.output_tokens, None, "unpriced")


def pipeline_for(user: User, name: str) -> Pipeline:
    """The user's pipeline of that name, created when it does not exist yet."""
    pipeline = queries.pipeline_by_name(user, name)
    if pipeline is not None:
        return pipeline
    try:
        # A savepoint: a concurrent writer may create the same name first.
        with db.session.begin_nested():
            pipeline = Pipeline(user_id=user.id, name=name)
            db.session.add(pipeline)
    except IntegrityError:
        pipeline = queries.pipeline_by_name(user, name)
        if pipeline is None:
            raise
    return pipeline


def start_run(
    user: User,
    *,
    pipeline: Any,
    input: Any,
    variables: Any = None,
    model: Any = None,
    created_at: datetime | None = None,
) -> PipelineRun:
    """A new run in `running` state, its pipeline looked up or created by name."""
    name = check_text("pipeline", pipeline, limit="MAX_NAME_LENGTH").strip()
    text = check_text("input", input, required=False)
    checked_variables = check_variables(variables)
    checked_model = None if model is None else check_text("model", model, limit="MAX_NAME_LENGTH")
    started = utcnow() if created_at is None else check_time("createdAt", created_at)
    run = PipelineRun(
        pipeline=pipeline_for(user, name),
        user_id=user.id,
        status="running",
        input=text,
        variables=checked_variables,
        model=checked_model,
        created_at=started,
    )
    db.session.add(run)
    db.session.flush()
    return run


def open_run(user: User, run_id: str) -> PipelineRun:
    """The user's run, locked for this transaction, which must still be pending or running."""
    run = queries.run_for_user(user, run_id, for_update=True)
    if run is None:
        raise RunNotFound(run_id)
    if run.status not in OPEN_STATUSES:
        raise RunStateError(f"run {run_id} is already {run.status}")
    return run


def close_run(run: PipelineRun, values: dict[str, Any]) -> PipelineRun:
    """Write a run's final state only if it is still open: of two racing writers, exactly one wins."""
    result = db.session.execute(
        update(PipelineRun)
        .where(PipelineRun.id == run.id, PipelineRun.status.in_(OPEN_STATUSES))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.expire(run)
        raise RunStateError(f"run {run.id} was closed by another request")
    db.session.refresh(run)
    return run


def add_step(user: User, run_id: str, step: Any) -> PipelineRun:
    """Append one step's output to a running run; its stepOrder must be the next one."""
    run = open_run(user, run_id)
    existing = list(run.artifact_data["steps"]) if run.artifact_data else []
    [checked] = check_steps([step], first_order=len(existing))
    price_steps([checked], run.model, utcnow())
    run.artifact_data = {"steps": [*existing, checked], "finalOutput": ""}
    run.status = "running"
    db.session.flush()
    return run


def complete_run(
    user: User,
    run_id: str,
    *,
    final_output: Any,
    steps: Any = None,
    model: Any = None,
    usage: Any = None,
    completed_at: datetime | None = None,
) -> PipelineRun:
    """Complete an open run: steps, final output, usage and the cost priced as of completion."""
    run = open_run(user, run_id)
    output = check_text("finalOutput", final_output, required=False)
    checked_model = run.model if model is None else check_text("model", model, limit="MAX_NAME_LENGTH")
    finished = utcnow() if completed_at is None else check_time("completedAt", completed_at)
    if finished < run.created_at:
        raise RunValidationError("completedAt", "must not be before the run was created")
    checked_steps = (
        check_steps(steps) if steps is not None
        else list(run.artifact_data["steps"]) if run.artifact_data else []
    )
    checked_usage = check_usage("usage", usage)
    price_steps(checked_steps, checked_model, finished)
    pricing = price_run(checked_steps, checked_model, checked_usage, finished)
    document: ArtifactOutput = {"steps": checked_steps, "finalOutput": output}
    return close_run(
        run,
        {
            "status": "completed",
            "artifact_data": document,
            "final_output": output,  # the legacy column, kept during the transition (seed)
            "model": checked_model,
            "input_tokens": pricing.input_tokens,
            "output_tokens": pricing.output_tokens,
            "cost": pricing.cost,
            "cost_source": pricing.cost_source,
            "completed_at": finished,
            "error": None,
        },
    )


def fail_run(
    user: User,
    run_id: str,
    *,
    error: Any,
    steps: Any = None,
    usage: Any = None,
    completed_at: datetime | None = None,
) -> PipelineRun:
    """Fail an open run with its error text, keeping whatever steps completed and what they cost."""
    run = open_run(user, run_id)
    message = check_text("error", error)
    finished = utcnow() if completed_at is None else check_time("completedAt", completed_at)
    if finished < run.created_at:
        raise RunValidationError("completedAt", "must not be before the run was created")
    checked_steps = (
        check_steps(steps) if steps is not None
        else list(run.artifact_data["steps"]) if run.artifact_data else []
    )
    # A failed run still spent tokens on the steps that ran; price them like a completed one.
    price_steps(checked_steps, run.model, finished)
    pricing = price_run(checked_steps, run.model, check_usage("usage", usage), finished)
    document: ArtifactOutput = {"steps": checked_steps, "finalOutput": ""}
    return close_run(
        run,
        {
            "status": "failed",
            "artifact_data": document,
            "error": message,
            "input_tokens": pricing.input_tokens,
            "output_tokens": pricing.output_tokens,
            "cost": pricing.cost,
            "cost_source": pricing.cost_source,
            "completed_at": finished,
        },
    )


def record_run(
    user: User,
    *,
    pipeline: Any,
    input: Any,
    status: str = "completed",
    variables: Any = None,
    model: Any = None,
    steps: Any = None,
    final_output: Any = "",
    usage: Any = None,
    error: Any = None,
    created_at: datetime | None = None,
    completed_at: datetime | None = None,
) -> PipelineRun:
    """Record a finished run in one call (import, demo data, the API's one-shot create)."""
    if status not in ("completed", "failed"):
        raise RunValidationError("status", "must be \"completed\" or \"failed\"")
    if created_at is None and isinstance(completed_at, datetime):
        created_at = completed_at  # an imported run that only knows when it finished
    # Nest so a rejected completion also takes back the run it started.
    with db.session.begin_nested():
        run = start_run(user, pipeline=pipeline, input=input, variables=variables, model=model, created_at=created_at)
        if status == "completed":
            return complete_run(
                user, run.id, final_output=final_output, steps=steps, model=model,
                usage=usage, completed_at=completed_at,
            )
        return fail_run(user, run.id, error=error, steps=steps, usage=usage, completed_at=completed_at)


def record_legacy_run(
    user: User, *, pipeline: Any, input: Any, final_output: Any, created_at: datetime, completed_at: datetime
) -> PipelineRun:
    """A run as stored before artifact storage existed: only the text final_output (demo, tests)."""
    name = check_text("pipeline", pipeline, limit="MAX_NAME_LENGTH").strip()
    run = PipelineRun(
        pipeline=pipeline_for(user, name),
        user_id=user.id,
        status="completed",
        input=check_text("input", input, required=False),
        final_output=check_text("finalOutput", final_output, required=False),
        created_at=check_time("createdAt", created_at),
        completed_at=check_time("completedAt", completed_at),
    )
    db.session.add(run)
    db.session.flush()
    return run


def parse_time(field: str, value: Any) -> datetime:
    """An ISO 8601 time with an offset, as the API and exports write it."""
    if isinstance(value, datetime):
        return check_time(field, value)
    if not isinstance(value, str):
        raise RunValidationError(field, "must be an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RunValidationError(field, "must be an ISO 8601 time") from None
    return check_time(field, moment)


def import_run(user: User, document: Any) -> PipelineRun:
    """Store a run exactly as an export wrote it: its id, times, usage, cost and cost source.

    Unlike the API, an import is an operator's copy of runs already priced, so the stored cost
    is kept rather than recomputed from today's price table. `steps: null` marks a legacy run.
    """
    if not isinstance(document, Mapping):
        raise RunValidationError("body", "must be a JSON object")
    status = document.get("status")
    if status not in ("completed", "failed"):
        raise RunValidationError("status", "must be \"completed\" or \"failed\"")
    name = check_text("pipeline", document.get("pipeline"), limit="MAX_NAME_LENGTH").strip()
    created_at = parse_time("createdAt", document.get("createdAt"))
    completed_at = parse_time("completedAt", document.get("completedAt"))
    if completed_at < created_at:
        raise RunValidationError("completedAt", "must not be before the run was created")
    legacy = document.get("steps", []) is None
    steps = [] if legacy else check_steps(document.get("steps"))
    final_output = document.get("finalOutput")
    final_output = "" if final_output is None else check_text("finalOutput", final_output, required=False)
    usage = document.get("usage") or {}
    if not isinstance(usage, Mapping):
        raise RunValidationError("usage", "must be an object")
    cost_source = document.get("costSource")
    if cost_source not in ("computed", "provider", "unpriced", None):
        raise RunValidationError("costSource", "must be computed, provider or unpriced")
    run_id = document.get("id")
    if run_id is not None:
        if not isinstance(run_id, str) or len(run_id) > 36:
            raise RunValidationError("id", "must be a run id of at most 36 characters")
        check_text("id", run_id)
        if queries.run_exists(run_id):
            raise RunValidationError("id", "a run with this id already exists")
    error = document.get("error")
    run = PipelineRun(
        id=run_id or None,
        pipeline=pipeline_for(user, name),
        user_id=user.id,
        status=status,
        input=check_text("input", document.get("input"), required=False),
        variables=check_variables(document.get("variables")),
        model=None if document.get("model") is None
        else check_text("model", document["model"], limit="MAX_NAME_LENGTH"),
        artifact_data=None if legacy else {"steps": steps, "finalOutput": final_output},
        final_output=final_output if legacy or status == "completed" else None,
        input_tokens=None if usage.get("inputTokens") is None
        else check_tokens("usage.inputTokens", usage["inputTokens"]),
        output_tokens=None if usage.get("outputTokens") is None
        else check_tokens("usage.outputTokens", usage["outputTokens"]),
        cost=None if document.get("cost") is None else check_cost("cost", document["cost"]),
        cost_source=cost_source,
        error=None if error is None else check_text("error", error),
        created_at=created_at,
        completed_at=completed_at,
    )
    db.session.add(run)
    db.session.flush()
    return run
