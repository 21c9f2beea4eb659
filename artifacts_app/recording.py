"""The one writer of runs: start, add a step, complete, fail; the cost is fixed at write time.

It takes the typed, already-valid bodies of schemas.py and checks only what depends on the stored
run: the next step's order, times against the run's start, usage against the steps, totals that
must fit their columns. Callers commit: a rejected call leaves nothing half-written, and the caller
decides where the transaction ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from types import SimpleNamespace
from typing import Any, cast

from flask import current_app
from psycopg.types.json import Jsonb
from pydantic.alias_generators import to_camel
from pydantic_core import to_json
from sqlalchemy import (
    JSON,
    CursorResult,
    Table,
    bindparam,
    delete,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from . import limits, queries, rollups, schemas, search
from .extensions import db
from .models import (
    SORTS_LAST_COST,
    SORTS_LAST_DURATION,
    ArtifactOutput,
    ArtifactStep,
    IdempotencyKey,
    Pipeline,
    PipelineRun,
    RunStep,
    User,
    new_id,
)
from .pricing import PriceTable, price_run, price_steps
from .schemas import (
    RunComplete,
    RunFail,
    RunRecordCompleted,
    RunRecordFailed,
    RunStart,
    StepIn,
)
from .statuses import FINISHED_STATUSES, OPEN_STATUSES, CostSource, RunStatus
from .types import Money, UTCDateTime, utcnow


class RunValidationError(schemas.InvalidBody):
    """A valid body that the stored run refuses (a step out of turn, say); `field` names the part at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__([{"field": field, "message": message}])


class RunStateError(Exception):
    """The run exists but is not in a state that allows the change (already completed, say)."""


class RunNotFound(LookupError):
    """No run with that id belongs to the user."""


def price_table() -> PriceTable:
    """The app's price table (the packaged one plus the operator's PRICES_FILE)."""
    return cast(PriceTable, current_app.extensions["price_table"])


def stored_step(step: StepIn) -> ArtifactStep:
    """A step in the executors' shape, its own model, usage and times kept only when given."""
    stored: ArtifactStep = {
        "agentId": step.agent_id, "agentName": step.agent_name, "output": step.output, "stepOrder": step.step_order,
        "status": step.status,
    }
    if step.model is not None:
        stored["model"] = step.model
    usage = step.own_usage()
    if usage.input_tokens is not None:
        stored["inputTokens"] = usage.input_tokens
    if usage.output_tokens is not None:
        stored["outputTokens"] = usage.output_tokens
    if usage.cost is not None:
        stored["cost"] = format(usage.cost, "f")
        stored["costSource"] = CostSource.PROVIDER.value
    if step.started_at is not None:
        stored["startedAt"] = step.started_at
    if step.completed_at is not None:
        stored["completedAt"] = step.completed_at
    return stored


def stored_steps(steps: list[StepIn] | None) -> list[ArtifactStep]:
    """The steps of a body (already in order, contiguous from 0) in the stored shape."""
    most = limits.value("MAX_STEPS")
    if steps is not None and len(steps) > most:
        raise RunValidationError("steps", limits.refusal("MAX_STEPS", most))
    return [stored_step(step) for step in steps or []]


def write_steps(run: PipelineRun, steps: list[ArtifactStep]) -> None:
    """Store a run's steps as rows, replacing any it had (a closing body brings all of them)."""
    db.session.execute(delete(RunStep).where(RunStep.run_id == run.id))
    db.session.add_all(RunStep.from_values(run.id, step) for step in steps)
    db.session.flush()
    db.session.expire(run, ["steps"])


def priced_existing_steps(run: PipelineRun, model: str | None, at: datetime) -> list[ArtifactStep]:
    """The run's stored steps, those with usage but no cost priced now (the run's model may just have
    been given); their outputs stay in the database."""
    rows = queries.step_rows(run.id)
    steps = [row.values(output=False) for row in rows]
    price_steps(steps, model, at, price_table())
    for row, step in zip(rows, steps, strict=True):
        if row.cost is None and "cost" in step:
            row.cost = Decimal(step["cost"])
            row.cost_source = step.get("costSource")
    return steps


NAME_LENGTH = 80  # a name taken from the input is cut to this, at a word


def name_from_input(text: str) -> str:
    """What a run without a name is called: its input's first non-blank line, cut at a word."""
    line = next((line.strip() for line in text[:4096].splitlines() if line.strip()), "")
    if len(line) <= NAME_LENGTH:
        return line
    cut = line[: NAME_LENGTH - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


def listing_columns(
    status: str, created_at: datetime, completed_at: datetime | None,
    input_tokens: int | None, output_tokens: int | None, cost: Decimal | None,
) -> dict[str, Any]:
    """The list's sort keys for a run in this state (the one place they are derived)."""
    finished = completed_at if completed_at is not None and RunStatus(status) in FINISHED_STATUSES else None
    return {
        "listed_at": finished or created_at,
        "total_tokens": (input_tokens or 0) + (output_tokens or 0),
        "sort_cost": SORTS_LAST_COST if cost is None else cost,
        "sort_duration_ms": (
            SORTS_LAST_DURATION if finished is None else round((finished - created_at).total_seconds() * 1000)
        ),
    }


def store_new(run: PipelineRun, pipeline_name: str, steps: list[ArtifactStep] | None = None) -> PipelineRun:
    """Write a new run (and its steps, for an import) with its sort keys, count it into the
    summaries and index it for search."""
    for name, value in listing_columns(
        run.status, run.created_at, run.completed_at, run.input_tokens, run.output_tokens, run.cost
    ).items():
        setattr(run, name, value)
    db.session.add(run)
    db.session.flush()
    if steps:
        write_steps(run, steps)
    search.index_run(run)
    # Last, once nothing more can fail: in a batch (rollups.counted_together) the share is only queued.
    rollups.count([(rollups.share_of(run, pipeline_name), +1)])
    return run


def check_finish(finished: datetime, started: datetime) -> None:
    if finished < started:
        raise RunValidationError("completedAt", "must not be before the run was created")


def pipeline_for(user: User, name: str) -> Pipeline:
    """The user's pipeline of that name, created when it does not exist yet, by create_pipelines like
    every other writer's (a concurrent writer making it first is not an error)."""
    pipeline = queries.pipeline_by_name(user, name)
    if pipeline is None:
        create_pipelines(user, [name])
        pipeline = queries.pipeline_by_name(user, name)
        if pipeline is None:  # made, or found made by another writer: only a deleted user gets here
            raise LookupError(f"the pipeline {name!r} could not be made")
    return pipeline


@dataclass
class PreparedRun:
    """A run checked and priced before it is written: its row and its steps' rows (by attribute
    name; plain values, as a batch of 500 builds them), and its pipeline's name. The API answers
    from these (`run`), not from reading the row back."""

    row: dict[str, Any]
    pipeline_name: str
    steps: list[dict[str, Any]]

    @property
    def id(self) -> str:
        return cast(str, self.row["id"])

    @property
    def run(self) -> PipelineRun:
        """The run as written, steps included, for reading what it holds (the API's answer): plain
        attributes under PipelineRun's and RunStep's names, not ORM objects, which cost their
        instrumentation on every attribute (a tenth of a one-shot run's CPU)."""
        steps = [SimpleNamespace(**step) for step in self.steps]
        return cast(PipelineRun, SimpleNamespace(**self.row, steps=steps))

    def share(self) -> rollups.Share:
        return rollups.share_from(self.row, self.pipeline_name)

    def search_parts(self) -> list[str]:
        """What search indexes, in search.py's order: name, input, final output, each step's output."""
        final = self.row["artifact_data"]["finalOutput"] or self.row["final_output"] or ""
        return [part[: search.PART_CHARS] for part in (
            self.row["name"], self.row["input"], final, *(step["output"] for step in self.steps)
        )]


def new_run(
    user: User, body: RunStart | RunRecordCompleted | RunRecordFailed, *,
    created_at: datetime | None = None, now: datetime | None = None,
) -> PreparedRun:
    """A start (RunStart) or a finished run (RunRecordCompleted/Failed) as the row it will be,
    checked and priced as of its end; nothing is written. Raises RunValidationError."""
    now = now or utcnow()
    row: dict[str, Any] = {
        "id": new_id(), "user_id": user.id, "status": RunStatus.RUNNING.value,
        "name": body.name.strip() if body.name else name_from_input(body.input),
        "tags": list(body.tags) if body.tags else None,
        "run_metadata": dict(body.metadata) if body.metadata else None,
        "input": body.input, "variables": body.variables, "model": body.model,
        "artifact_data": {"finalOutput": ""},  # not a legacy run: its steps are rows, its final output to come
        "final_output": None, "input_tokens": None, "output_tokens": None, "cost": None, "cost_source": None,
        "error": None, "completed_at": None,
        # A run that only says when it finished started then.
        "created_at": created_at or body.created_at or getattr(body, "completed_at", None) or now,
    }
    steps: list[ArtifactStep] = []
    if isinstance(body, RunRecordCompleted | RunRecordFailed):
        finished = body.completed_at or now
        check_finish(finished, row["created_at"])
        steps = stored_steps(body.steps)
        price_steps(steps, body.model, finished, price_table())
        pricing = price_run(steps, body.model, body.usage, finished, price_table())
        row |= {
            "status": (RunStatus.COMPLETED if isinstance(body, RunRecordCompleted) else RunStatus.FAILED).value,
            "completed_at": finished, "input_tokens": pricing.input_tokens, "output_tokens": pricing.output_tokens,
            "cost": pricing.cost, "cost_source": pricing.cost_source,
        }
        if isinstance(body, RunRecordCompleted):
            row["artifact_data"] = {"finalOutput": body.final_output}
            row["final_output"] = body.final_output  # the legacy column, kept during the transition (seed)
        else:
            row["error"] = body.error
    row |= listing_columns(row["status"], row["created_at"], row["completed_at"], row["input_tokens"],
                           row["output_tokens"], row["cost"])
    return PreparedRun(row, body.pipeline.strip(), [RunStep.row_of(row["id"], step) for step in steps])


# (attribute, column name) of every column a new run's row is written with; pipeline_id is found apart.
RUN_COLUMNS = tuple((attribute.key, attribute.columns[0].name) for attribute in inspect(PipelineRun).column_attrs
                    if attribute.key != "pipeline_id")
RUN_TABLE = cast(Table, PipelineRun.__table__)
STEP_COLUMNS = tuple((attribute.key, attribute.columns[0].name) for attribute in inspect(RunStep).column_attrs)


def row_values(row: dict[str, Any]) -> dict[str, Any]:
    """The run's row by column name."""
    return {name: row[key] for key, name in RUN_COLUMNS}


STEP_TABLE = cast(Table, RunStep.__table__)


@cache
def insert_one_statement() -> Any:
    """SQLite's INSERT … SELECT of one run, its values all parameters (v_<column>, user_id,
    pipeline_name), its pipeline's id read by it: built once, so a run costs no statement building."""
    names = [name for _, name in RUN_COLUMNS]
    selected: list[Any] = [bindparam(f"v_{name}", type_=RUN_TABLE.c[name].type) for name in names]
    pipeline = select(*selected, Pipeline.id).where(
        Pipeline.user_id == bindparam("user_id"), Pipeline.name == bindparam("pipeline_name"))
    return insert(RUN_TABLE).from_select([*names, "pipeline_id"], pipeline).returning(RUN_TABLE.c.pipeline_id)


def insert_one(user: User, new: PreparedRun) -> str | None:
    """SQLite: INSERT the run with its pipeline's id read by the same statement (no round trip when
    the pipeline exists); its pipeline id, or None when the user has no such pipeline yet (and
    nothing was written)."""
    values = {f"v_{name}": value for name, value in row_values(new.row).items()}
    values |= {"user_id": user.id, "pipeline_name": new.pipeline_name}
    return cast(str | None, db.session.execute(insert_one_statement(), values).scalar_one_or_none())


POSTGRES = postgresql.dialect()


def quoted(name: str) -> str:
    return POSTGRES.identifier_preparer.quote(name)


# A run's search parts from its document, in their order (search.py's: name, input, final output, steps).
SEARCH_PARTS = ("ARRAY(SELECT part FROM jsonb_array_elements_text(g.document->'search_parts') "
                "WITH ORDINALITY AS parts(part, n) ORDER BY n)")


def postgres_new_runs_sql(runs: str, user_id: str) -> str:
    """PostgreSQL's one statement for new runs, whatever their number: each run's row, its steps,
    its search vector and its share of the summaries, from one JSON document (`runs`, a jsonb array
    of runs_document's objects) for the user `user_id` (both SQL expressions). It writes all of
    them, or none when the user lacks a pipeline of one of them; it answers (id, pipeline_id) for
    each run written.

    One document, not a parameter per value: a batch of 500 runs would otherwise be a statement of
    17,000 placeholders that the driver parses again for every request. The database types each
    value by its column (jsonb_populate_record with the tables' own row types)."""
    json_null = {column.name for column in RUN_TABLE.columns  # None stored as JSON null, as the ORM does
                 if isinstance(column.type, JSON) and not column.type.none_as_null}
    run_names = [name for _, name in RUN_COLUMNS]
    run_columns = ", ".join([*map(quoted, run_names), "pipeline_id", search.SEARCH_COLUMN])
    run_values = [f"COALESCE(g.{quoted(name)}, 'null'::jsonb)" if name in json_null else f"g.{quoted(name)}"
                  for name in run_names]
    step_names = [column.name for column in STEP_TABLE.columns if column.name != "run_id"]
    written = "run AS r"
    return f"""
        WITH given AS (
            SELECT e.document, g.* FROM jsonb_array_elements({runs}) AS e(document),
                jsonb_populate_record(NULL::pipeline_runs, e.document) AS g
        ), run AS (
            INSERT INTO pipeline_runs ({run_columns})
            SELECT {", ".join(run_values)}, p.id,
                   {search.vector_sql(SEARCH_PARTS)}
            FROM given AS g JOIN pipelines AS p ON p.user_id = {user_id} AND p.name = g.document->>'pipeline_name'
            WHERE NOT EXISTS (  -- all or none: none when the user lacks a pipeline of one of them
                SELECT FROM given AS missing WHERE NOT EXISTS (SELECT FROM pipelines AS q
                    WHERE q.user_id = {user_id} AND q.name = missing.document->>'pipeline_name'))
            RETURNING {", ".join(f"pipeline_runs.{column.key}" for column in rollups.SHARE_COLUMNS)}, pipeline_runs.id
        ), steps AS (
            INSERT INTO pipeline_run_steps (run_id, {", ".join(quoted(name) for name in step_names)})
            SELECT run.id, {", ".join(f"s.{quoted(name)}" for name in step_names)}
            FROM run JOIN given AS g ON g.id = run.id,
                 jsonb_populate_recordset(NULL::pipeline_run_steps, g.document->'steps') AS s
        ), {rollups.rollups_part(rollups.rollup_rows_sql(written, rollups.DAY_SQL["postgresql"], order=True))},
        facets AS ({rollups.facets_upsert(rollups.facet_rows_sql(written, rollups.TAGS_SQL["postgresql"]), order=True)})
        SELECT id, pipeline_id FROM run
    """


def new_runs_function_body() -> str:
    """The body of the database function record_new_runs(p_user_id, p_runs), which runs
    postgres_new_runs_sql. A migration creates it with this text as it was then; a test holds it to
    this one, so a change of the tables or the summaries comes with a migration replacing it.

    A function, and a PL/pgSQL one, for its plan: the session plans every statement with its values
    (extensions.CUSTOM_PLANS, for the list and search), which for this one statement cost 0.45 ms of
    the database's CPU a run, a third of it; its plan does not depend on its values. A PL/pgSQL
    function keeps its statements' plans for the session (a SQL function plans its body at every
    call), and its SET clause (plan_cache_mode = force_generic_plan) makes that plan the generic one."""
    return f"BEGIN RETURN QUERY {postgres_new_runs_sql('p_runs', 'p_user_id')}; END"


POSTGRES_NEW_RUNS = text(
    "SELECT written_id, written_pipeline_id FROM record_new_runs(:user_id, CAST(:runs AS jsonb))")


def checked_columns(table: Table) -> tuple[tuple[str, Money | UTCDateTime], ...]:
    """The money and time columns of a table, by name, with their types."""
    return tuple((column.name, column.type) for column in table.columns
                 if isinstance(column.type, Money | UTCDateTime))


RUN_CHECKED, STEP_CHECKED = checked_columns(RUN_TABLE), checked_columns(STEP_TABLE)


def database_values(values: dict[str, Any], checked: tuple[tuple[str, Money | UTCDateTime], ...]) -> dict[str, Any]:
    """A row's values with its money and times through their column types' own checks, as the ORM
    would send them (Money's places and range, UTCDateTime's time zone); a new dict."""
    values = dict(values)
    for name, kind in checked:
        values[name] = kind.process_bind_param(values[name], POSTGRES)
    return values


def as_is(document: bytes) -> bytes:
    """psycopg's dumps for a document already JSON."""
    return document


def runs_document(runs: Iterable[PreparedRun]) -> Jsonb:
    """The :runs parameter of POSTGRES_NEW_RUNS; a step's attributes are its column names.

    Serialized once (the statement may be sent twice) by pydantic-core's to_json, straight to UTF-8
    bytes: json.dumps with a hook for money and times took a fifth of a batch's CPU in the app (4
    times longer for the same text), and its str was encoded again by the driver. Decimals come out
    as strings, times in ISO 8601."""
    return Jsonb(to_json([
        database_values(row_values(new.row), RUN_CHECKED) | {
            "pipeline_name": new.pipeline_name, "search_parts": new.search_parts(),
            "steps": [database_values(step, STEP_CHECKED) for step in new.steps],
        }
        for new in runs
    ]), dumps=as_is)


def write_new_postgres(user: User, runs: list[PreparedRun]) -> None:
    """write_new on PostgreSQL: one statement; when the user lacks a pipeline of the runs, that
    statement writes nothing, the pipelines are made and it is sent again. So one statement counts
    all the runs into the summaries, taking their rows in key order: two statements each counting
    part of a batch would take them out of order, and two such batches at once could deadlock."""
    if rollups.BATCH_KEY in db.session.info:
        raise RuntimeError("write_new counts its runs itself: not inside rollups.counted_together")
    values = {"user_id": user.id, "runs": runs_document(runs)}
    written = dict(db.session.execute(POSTGRES_NEW_RUNS, values).tuples().all())
    if not written:  # a pipeline of theirs does not exist yet
        create_pipelines(user, (new.pipeline_name for new in runs))
        written = dict(db.session.execute(POSTGRES_NEW_RUNS, values).tuples().all())
    for new in runs:
        new.row["pipeline_id"] = written[new.id]


def create_pipelines(user: User, names: Iterable[str]) -> None:
    """Make the user's pipelines of these names that do not exist yet (a concurrent writer may make
    one first: that is not an error)."""
    dialect = postgresql if search.postgres() else sqlite
    rows = [{"id": new_id(), "user_id": user.id, "name": name, "created_at": utcnow()} for name in sorted(set(names))]
    db.session.execute(dialect.insert(Pipeline).values(rows).on_conflict_do_nothing(
        index_elements=[Pipeline.user_id, Pipeline.name]))


def pipeline_ids(user: User, names: Iterable[str]) -> dict[str, str]:
    """The user's pipelines of these names by name, each created when it does not exist yet: two statements."""
    wanted = set(names)
    create_pipelines(user, wanted)
    return dict(db.session.execute(
        select(Pipeline.name, Pipeline.id).where(Pipeline.user_id == user.id, Pipeline.name.in_(wanted))
    ).tuples().all())


def autocommit_single_writes() -> None:
    """On PostgreSQL, run the session's work up to its first commit or rollback in autocommit: each
    statement commits by itself, with no BEGIN and COMMIT sent around it. For a request whose only
    write is write_new's one statement, which is all or nothing by itself (the pipelines it may
    create first are get-or-create, kept even if the run then fails; the token's last use is kept
    anyway). SQLite's write_new is several statements and keeps its transaction. Call before the
    session's first statement; the pool puts the connection back in its usual mode when it returns.

    bench/README.md, "Fifth pass": 8% of a one-shot run's CPU in the app and in the database."""
    if search.postgres():
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def write_new(user: User, runs: list[PreparedRun]) -> None:
    """Write checked runs as they are (one INSERT of each finished row, no second version), their
    steps, their search index and their share of the summaries: a handful of statements for any
    number of runs (on PostgreSQL one). The caller commits."""
    if not runs:
        return
    if search.postgres():
        write_new_postgres(user, runs)
        return
    if len(runs) == 1:
        pipeline_id = insert_one(user, runs[0])
        if pipeline_id is None:  # the user's first run of this pipeline
            create_pipelines(user, [runs[0].pipeline_name])
            pipeline_id = insert_one(user, runs[0])
        runs[0].row["pipeline_id"] = pipeline_id
    else:
        ids = pipeline_ids(user, (new.pipeline_name for new in runs))
        for new in runs:
            new.row["pipeline_id"] = ids[new.pipeline_name]
        many_values(insert(RUN_TABLE).returning(RUN_TABLE.c.id),
                    [row_values(new.row) | {"pipeline_id": new.row["pipeline_id"]} for new in runs])
    steps = [step_row(step) for new in runs for step in new.steps]
    if steps:
        many_values(insert(STEP_TABLE).returning(STEP_TABLE.c.step_order), steps)
    search.index_new_runs([new.id for new in runs])
    rollups.count([(new.share(), +1) for new in runs])


def claim_keys(user: User, claims: list[tuple[str, str, str]]) -> set[str]:
    """Store Idempotency-Keys (key, request hash, run id) for runs just written; the keys stored. A
    key a concurrent request stored first is left out (its INSERT waits for that request to end)."""
    dialect = postgresql if search.postgres() else sqlite
    now = utcnow()
    # In key order, like the summaries: two batches sharing keys wait for each other, never deadlock.
    rows = [{"user_id": user.id, "key": key, "request_hash": digest, "run_id": run_id, "created_at": now}
            for key, digest, run_id in sorted(claims)]
    statement = dialect.insert(IdempotencyKey).on_conflict_do_nothing(
        index_elements=[IdempotencyKey.user_id, IdempotencyKey.key]).returning(IdempotencyKey.key)
    return set(db.session.execute(statement, rows).scalars())  # one multi-row INSERT (insertmanyvalues)


def many_values(statement: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows as one multi-row INSERT a page (SQLAlchemy's "insertmanyvalues", which it uses
    for an INSERT with RETURNING): one statement, not one per row as the driver's executemany sends."""
    db.session.execute(statement, rows).all()


def step_row(step: dict[str, Any]) -> dict[str, Any]:
    """A step's row by column name."""
    return {name: step[key] for key, name in STEP_COLUMNS}


def start_run(user: User, body: RunStart, *, created_at: datetime | None = None) -> PipelineRun:
    """A new run in `running` state, its pipeline looked up or created by name; it started at
    `created_at`, else when the body says, else now (the CLI, tests; the API writes with new_run and
    write_new and answers without reading the run back)."""
    new = new_run(user, body, created_at=created_at)
    write_new(user, [new])
    return written(user, new)


def open_run(user: User, run_id: str) -> PipelineRun:
    """The user's run, locked for this transaction, which must still be pending or running."""
    run = queries.run_for_user(user, run_id, for_update=True)
    if run is None:
        raise RunNotFound(run_id)
    if run.status not in OPEN_STATUSES:
        raise RunStateError(f"run {run_id} is already {run.status}")
    return run


def close_run(run: PipelineRun, values: dict[str, Any]) -> PipelineRun:
    """Write a run's final state only if it is still open: of two racing writers, exactly one wins.

    The summaries move the run from its open state to its final one in the same transaction.
    """
    before = rollups.share_of(run)
    values |= listing_columns(
        values["status"], run.created_at, values["completed_at"], values["input_tokens"], values["output_tokens"],
        values["cost"],
    )
    # An UPDATE answers with a cursor result, which has a rowcount.
    result: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
        update(PipelineRun)
        .where(PipelineRun.id == run.id, PipelineRun.status.in_(OPEN_STATUSES))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.expire(run)
        raise RunStateError(f"run {run.id} was closed by another request")
    db.session.refresh(run)
    rollups.count([(before, -1), (rollups.share_of(run), +1)])
    search.index_run(run)
    return run


def add_step(user: User, run_id: str, step: StepIn) -> PipelineRun:
    """Add one step to a running run as a row of its own (nothing else of the run is rewritten).

    Steps may arrive in any order (executors post them concurrently): any stepOrder not taken yet
    and below MAX_STEPS is kept, and one already taken is a RunStateError (409), so of two posts of
    the same step exactly one is kept. Completing the run without steps in its body needs them
    contiguous from 0. The run's row lock orders concurrent posts. A step sent without its times
    ended when it arrived and started when the step before it ended (or the run started).
    """
    run = open_run(user, run_id)
    most = limits.value("MAX_STEPS")
    if step.step_order >= most:
        raise RunValidationError("stepOrder", f"must be below {most:,} (MAX_STEPS = {most})")
    taken, last_end = queries.step_before(run.id, step.step_order)
    if taken:
        raise RunStateError(f"run {run_id} already has step {step.step_order}")
    received = utcnow()
    checked = stored_step(step)
    completed = checked.setdefault("completedAt", received)
    if "startedAt" not in checked:
        started = last_end or run.created_at
        if started <= completed:  # else unknown: the executor's clock and ours disagree
            checked["startedAt"] = started
    price_steps([checked], run.model, received, price_table())
    db.session.add(RunStep.from_values(run.id, checked))
    db.session.flush()
    db.session.expire(run, ["steps"])
    search.index_step(run, step.step_order)
    return run


def check_contiguous(steps: list[ArtifactStep]) -> None:
    """A run completes with steps 0, 1, 2 …: one posted out of order whose predecessor never came is named."""
    for expected, step in enumerate(steps):
        if step["stepOrder"] != expected:
            raise RunValidationError(
                "steps", f"stepOrder values must be unique and contiguous from 0; expected {expected}, "
                         f"found {step['stepOrder']} (post step {expected}, or send every step with the completion)",
            )


def closing_steps(
    run: PipelineRun, body: RunComplete | RunRecordCompleted | RunFail | RunRecordFailed, model: str | None,
    finished: datetime,
) -> list[ArtifactStep]:
    """The steps a run closes with, priced as of its end: the body's (which replace those posted
    before), else the ones already stored."""
    if body.steps is None:
        return priced_existing_steps(run, model, finished)
    steps = stored_steps(body.steps)
    price_steps(steps, model, finished, price_table())
    write_steps(run, steps)
    return steps


def complete_run(user: User, run_id: str, body: RunComplete | RunRecordCompleted) -> PipelineRun:
    """Complete an open run: steps, final output, usage and the cost priced as of completion."""
    run = open_run(user, run_id)
    model = run.model if body.model is None else body.model
    finished = body.completed_at or utcnow()
    check_finish(finished, run.created_at)
    steps = closing_steps(run, body, model, finished)
    check_contiguous(steps)
    pricing = price_run(steps, model, body.usage, finished, price_table())
    document: ArtifactOutput = {"finalOutput": body.final_output}
    return close_run(
        run,
        {
            "status": RunStatus.COMPLETED,
            "artifact_data": document,
            "final_output": body.final_output,  # the legacy column, kept during the transition (seed)
            "model": model,
            "input_tokens": pricing.input_tokens,
            "output_tokens": pricing.output_tokens,
            "cost": pricing.cost,
            "cost_source": pricing.cost_source,
            "completed_at": finished,
            "error": None,
        },
    )


def fail_run(user: User, run_id: str, body: RunFail | RunRecordFailed) -> PipelineRun:
    """Fail an open run with its error text, keeping whatever steps completed and what they cost."""
    run = open_run(user, run_id)
    finished = body.completed_at or utcnow()
    check_finish(finished, run.created_at)
    # A failed run still spent tokens on the steps that ran; price them like a completed one.
    steps = closing_steps(run, body, run.model, finished)
    pricing = price_run(steps, run.model, body.usage, finished, price_table())
    document: ArtifactOutput = {"finalOutput": ""}
    return close_run(
        run,
        {
            "status": RunStatus.FAILED,
            "artifact_data": document,
            "error": body.error,
            "input_tokens": pricing.input_tokens,
            "output_tokens": pricing.output_tokens,
            "cost": pricing.cost,
            "cost_source": pricing.cost_source,
            "completed_at": finished,
        },
    )


def record_run(user: User, body: RunRecordCompleted | RunRecordFailed) -> PipelineRun:
    """Record a finished run in one call (demo data, tests; the API's one-shot create writes with
    new_run and write_new): one INSERT of the finished row."""
    new = new_run(user, body)
    write_new(user, [new])
    return written(user, new)


def written(user: User, new: PreparedRun) -> PipelineRun:
    """The user's run just written, read back through queries (so its relationships load too)."""
    return cast(PipelineRun, queries.run_for_user(user, new.id))


def record_legacy_run(
    user: User, *, pipeline: str, input: str, final_output: str, created_at: datetime, completed_at: datetime
) -> PipelineRun:
    """A run as stored before artifact storage existed: only the text final_output (demo data, tests)."""
    run = PipelineRun(
        pipeline=pipeline_for(user, pipeline.strip()),
        user_id=user.id,
        status=RunStatus.COMPLETED.value,
        name=name_from_input(input),
        input=input,
        final_output=final_output,
        created_at=created_at,
        completed_at=completed_at,
    )
    return store_new(run, pipeline.strip())


def record_from_values(user: User, **fields: Any) -> PipelineRun:
    """record_run from Python values in the API's terms, snake_case (demo data, tests): checked by the
    same schema as an API body; None means absent. Raises schemas.InvalidBody."""
    body = {to_camel(name): value for name, value in fields.items() if value is not None}
    body.setdefault("status", RunStatus.COMPLETED.value)
    if body["status"] == RunStatus.FAILED.value:
        body.pop("finalOutput", None)  # a failed run has no final output
    parsed = schemas.parse(schemas.RunCreate, body).root
    if isinstance(parsed, RunStart):
        raise RunValidationError("status", f"must be one of {', '.join(s.value for s in FINISHED_STATUSES)}")
    return record_run(user, parsed)
