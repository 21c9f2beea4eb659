"""The one reader of users' data: every function that reads runs, pipelines or tokens takes the user."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    Row,
    Select,
    String,
    Text,
    and_,
    bindparam,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import defer, selectinload

from . import search
from .extensions import db
from .filters import Cursor, ListFilters
from .models import (
    ApiToken,
    CostReprice,
    CostRepriceRun,
    IdempotencyKey,
    Pipeline,
    PipelineRun,
    RunFacet,
    RunRollup,
    RunStep,
    User,
)
from .statuses import FINISHED_STATUSES


def user_by_session_token(session_token: str) -> User | None:
    """The user a login session names, or None once that session was ended."""
    if not session_token:
        return None
    return db.session.execute(
        select(User).where(User.session_token == session_token)
    ).scalar_one_or_none()


def user_by_email(email: str) -> User | None:
    """The user with this email, compared case-insensitively."""
    return db.session.execute(
        select(User).where(User.email == email.strip().lower())
    ).scalar_one_or_none()


def pipeline_by_name(user: User, name: str) -> Pipeline | None:
    """The user's pipeline of that name."""
    return db.session.execute(
        select(Pipeline).where(Pipeline.user_id == user.id, Pipeline.name == name)
    ).scalar_one_or_none()


def run_for_user(user: User, run_id: str, *, for_update: bool = False) -> PipelineRun | None:
    """The user's run with that id; another user's run is None, exactly like a missing one.

    for_update locks the row (PostgreSQL) so a writer's read-check-write is not raced.
    """
    statement = select(PipelineRun).where(PipelineRun.id == run_id, PipelineRun.user_id == user.id)
    if for_update:
        statement = statement.with_for_update()
    return db.session.execute(statement).scalar_one_or_none()


def run_count(user: User) -> int:
    """How many runs the user has, in any status."""
    return db.session.execute(
        select(func.count()).select_from(PipelineRun).where(PipelineRun.user_id == user.id)
    ).scalar_one()


def run_ids(user: User) -> list[str]:
    """The ids of all the user's runs, in any status (deleting their account forgets their renders)."""
    return list(db.session.execute(select(PipelineRun.id).where(PipelineRun.user_id == user.id)).scalars())


@dataclass(frozen=True)
class AccountContents:
    """What deleting an account takes with it, as its confirmation page counts it."""

    runs: int
    pipelines: int
    tokens: int
    active_tokens: int


def account_contents(user: User) -> AccountContents:
    """How many runs, pipelines and API tokens (all, and not revoked) the user has."""
    tokens = tokens_for_user(user)
    pipelines = db.session.execute(
        select(func.count()).select_from(Pipeline).where(Pipeline.user_id == user.id)).scalar_one()
    return AccountContents(runs=run_count(user), pipelines=pipelines, tokens=len(tokens),
                           active_tokens=sum(1 for token in tokens if token.revoked_at is None))


# Built once: every API request asks, and building it (and its cache key) cost more than running it.
TOKEN_WITH_USER = (
    select(ApiToken.id, ApiToken.token_hash, ApiToken.revoked_at, ApiToken.last_used_at, User)
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def token_with_user(token_hash: str) -> tuple[Row[Any], User] | None:
    """The API token with this hash (what checking it needs: id, token_hash, revoked_at,
    last_used_at) and its user, in one statement."""
    row = db.session.execute(TOKEN_WITH_USER, {"token_hash": token_hash}).one_or_none()
    return None if row is None else (row, row.User)


def tokens_for_user(user: User) -> list[ApiToken]:
    """The user's API tokens, newest first, revoked ones included."""
    return list(
        db.session.execute(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())
        ).scalars()
    )


def token_for_user(user: User, token_id: str) -> ApiToken | None:
    """One of the user's API tokens; another user's token is None."""
    return db.session.execute(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id)
    ).scalar_one_or_none()


@dataclass(frozen=True)
class Totals:
    """What the list's header sums up: priced costs summed, unpriced runs counted apart."""

    runs: int
    input_tokens: int
    output_tokens: int
    cost: Decimal
    unpriced_runs: int
    open_runs: int = 0  # pending or running: no cost yet, and not "unpriced" either


LIST_COLUMNS = (
    PipelineRun.id,
    Pipeline.name.label("pipeline_name"),
    PipelineRun.name,
    PipelineRun.tags,
    PipelineRun.model,
    PipelineRun.status,
    PipelineRun.input_tokens,
    PipelineRun.output_tokens,
    PipelineRun.cost,
    PipelineRun.cost_source,
    PipelineRun.created_at,
    PipelineRun.completed_at,
    PipelineRun.listed_at,
)


def sort_key(filters: ListFilters) -> tuple[Any, bool]:
    """The order's key and whether it runs largest first; each has its index in models.py."""
    if filters.sort == "oldest":
        return PipelineRun.listed_at, False
    if filters.sort == "cost":
        return PipelineRun.sort_cost, True
    if filters.sort == "tokens":
        return PipelineRun.total_tokens, True
    if filters.sort == "duration":
        return PipelineRun.sort_duration_ms, True
    if filters.sort == "relevance" and filters.query:
        return search.relevance(filters.query), True
    return PipelineRun.listed_at, True


def escaped_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def model_family(column: Any, models: tuple[str, ...]) -> ColumnElement[bool]:
    """The model is one of these, or a dated or suffixed version of one ("gpt-4o" finds "gpt-4o-mini"
    and "gpt-4o-2024-08-06", not "gpt-4o1")."""
    return or_(*(
        or_(column == model, column.like(escaped_like(model) + "-%", escape="\\")) for model in models
    ))


def has_all_tags(tags: tuple[str, ...], dialect: str) -> ColumnElement[bool]:
    """Every one of these tags is on the run (a text[] on PostgreSQL, a JSON array on SQLite)."""
    if dialect == "postgresql":
        return cast(ColumnElement[bool], PipelineRun.tags.op("@>")(literal(list(tags), ARRAY(Text()))))
    return and_(*(
        exists(select(literal(1)).select_from(func.json_each(PipelineRun.tags).table_valued("value").alias("tag"))
               .where(literal_column("tag.value") == tag))
        for tag in tags
    ))


def json_has_pairs(column: Any, pairs: tuple[tuple[str, str], ...], dialect: str) -> ColumnElement[bool]:
    """The JSON object `column` holds every (key, value); keys are plain (schemas.Label.KEY_CHARS)."""
    if dialect == "postgresql":
        return cast(ColumnElement[bool], column.op("@>")(literal(dict(pairs), JSONB)))
    return and_(*(func.json_extract(column, f'$."{key}"') == value for key, value in pairs))


def filtered(statement: Select[Any], user: User, filters: ListFilters) -> Select[Any]:
    """Narrow a statement over pipeline_runs to the user's runs matching the filters."""
    dialect = db.session.get_bind().dialect.name
    statement = statement.where(PipelineRun.user_id == user.id)
    statuses = filters.statuses
    if filters.status or filters.finished_only:
        statement = statement.where(
            PipelineRun.status == statuses[0] if len(statuses) == 1 else PipelineRun.status.in_(statuses)
        )
    if filters.pipelines:
        # A subquery, not a join: the totals aggregate then never touches pipelines.
        statement = statement.where(PipelineRun.pipeline_id.in_(pipeline_ids(user, filters.pipelines)))
    if filters.models:
        statement = statement.where(model_family(PipelineRun.model, filters.models))
    if filters.tags:
        statement = statement.where(has_all_tags(filters.tags, dialect))
    if filters.metadata:
        statement = statement.where(json_has_pairs(PipelineRun.run_metadata, filters.metadata, dialect))
    if (start := filters.range_start()) is not None:
        statement = statement.where(PipelineRun.listed_at >= start)
    if (end := filters.range_end()) is not None:
        statement = statement.where(PipelineRun.listed_at < end)
    if filters.query:
        statement = statement.where(search.matches(user, filters.query))
    return statement


def pipeline_ids(user: User, names: tuple[str, ...]) -> Select[Any]:
    return select(Pipeline.id).where(Pipeline.user_id == user.id, Pipeline.name.in_(names))


def keyset_after(key: Any, descending: bool, cursor: Cursor) -> ColumnElement[bool]:
    """Rows strictly after the cursor in (key, id) order, as one row comparison."""
    position = tuple_(key, PipelineRun.id)
    value = tuple_(literal(cursor.value, key.type), literal(cursor.run_id, String()))
    return position < value if descending else position > value


def list_statement(user: User, filters: ListFilters, after: Cursor | None, limit: int) -> Select[Any]:
    """The list's page query: the listed columns only, keyset order, never artifact_data.

    Keyset pagination on (sort key, id): a run arriving while someone scrolls cannot shift the
    pages, and a deep page costs the same as the first.
    """
    key, descending = sort_key(filters)
    statement = filtered(select(*LIST_COLUMNS, key.label("sort_key")).join(Pipeline), user, filters)
    if after is not None:
        statement = statement.where(keyset_after(key, descending, after))
    order = (key.desc(), PipelineRun.id.desc()) if descending else (key.asc(), PipelineRun.id.asc())
    return statement.order_by(*order).limit(limit)


def list_runs(user: User, filters: ListFilters, after: Cursor | None, limit: int) -> list[Row[Any]]:
    """One page of the user's runs in the filters' order."""
    return list(db.session.execute(list_statement(user, filters, after, limit)).all())


def list_row(user: User, run_id: str) -> Row[Any] | None:
    """One run as a list row (a running row refreshing itself)."""
    return db.session.execute(
        select(*LIST_COLUMNS, PipelineRun.listed_at.label("sort_key")).join(Pipeline)
        .where(PipelineRun.id == run_id, PipelineRun.user_id == user.id)
    ).one_or_none()


def list_rows_by_id(user: User, run_ids: list[str]) -> list[Row[Any]]:
    """Those of these runs that are the user's, as list rows with their number of steps, newest
    first (what a confirmation lists before they are deleted)."""
    step_count = select(func.count()).where(RunStep.run_id == PipelineRun.id).scalar_subquery()
    return list(db.session.execute(
        select(*LIST_COLUMNS, step_count.label("step_count")).join(Pipeline)
        .where(PipelineRun.user_id == user.id, PipelineRun.id.in_(run_ids))
        .order_by(PipelineRun.listed_at.desc(), PipelineRun.id.desc())
    ).all())


def run_totals(user: User, filters: ListFilters) -> Totals:
    """Count, tokens and cost of every run the filtered list shows: added up from the rollups when
    the filters are ones they keep (pipeline, model, status, day), else over the matching runs."""
    finished = PipelineRun.status.in_(FINISHED_STATUSES)
    if filters.summarised:
        return rollup_totals(user, filters)
    row = db.session.execute(
        filtered(
            select(
                func.count(),
                func.coalesce(func.sum(PipelineRun.input_tokens), 0),
                func.coalesce(func.sum(PipelineRun.output_tokens), 0),
                func.sum(PipelineRun.cost),
                func.count().filter(and_(PipelineRun.cost.is_(None), finished)),
                func.count().filter(~finished),
            ).select_from(PipelineRun),
            user,
            filters,
        )
    ).one()
    return Totals(
        runs=row[0], input_tokens=int(row[1]), output_tokens=int(row[2]),
        cost=row[3] if row[3] is not None else Decimal(0), unpriced_runs=row[4], open_runs=row[5],
    )


def rollup_totals(user: User, filters: ListFilters) -> Totals:
    """The totals from run_rollups: a few rows per pipeline, model, status and day."""
    statement = select(
        func.coalesce(func.sum(RunRollup.runs), 0),
        func.coalesce(func.sum(RunRollup.input_tokens), 0),
        func.coalesce(func.sum(RunRollup.output_tokens), 0),
        func.sum(RunRollup.cost),
        func.coalesce(func.sum(RunRollup.unpriced_runs), 0),
        func.coalesce(func.sum(RunRollup.runs).filter(RunRollup.status.not_in(FINISHED_STATUSES)), 0),
    ).where(RunRollup.user_id == user.id)
    if filters.status or filters.finished_only:
        statement = statement.where(RunRollup.status.in_(filters.statuses))
    if filters.pipelines:
        statement = statement.where(RunRollup.pipeline_id.in_(pipeline_ids(user, filters.pipelines)))
    if filters.models:
        statement = statement.where(model_family(RunRollup.model, filters.models))
    if filters.listed_from is not None:
        statement = statement.where(RunRollup.day >= filters.listed_from)
    if filters.listed_to is not None:
        statement = statement.where(RunRollup.day <= filters.listed_to)
    row = db.session.execute(statement).one()
    return Totals(
        runs=int(row[0]), input_tokens=int(row[1]), output_tokens=int(row[2]),
        cost=row[3] if row[3] is not None else Decimal(0), unpriced_runs=int(row[4]), open_runs=int(row[5]),
    )


def facet_values(user: User, kind: str) -> list[str]:
    """The pipelines, models or tags the user's runs use (for the filter menus), from run_facets."""
    return list(db.session.execute(
        select(RunFacet.value).where(RunFacet.user_id == user.id, RunFacet.kind == kind).order_by(RunFacet.value)
    ).scalars())


def pipeline_names(user: User) -> list[str]:
    """The names of the user's pipelines that have runs, for the filter menu."""
    return facet_values(user, "pipeline")


def model_names(user: User) -> list[str]:
    """The models the user's runs used, for the filter menu."""
    return facet_values(user, "model")


def tag_names(user: User) -> list[str]:
    """The tags on the user's runs, for the filter menu."""
    return facet_values(user, "tag")


# A whole run as serialization.record_fields reads it (the ORM attribute names), and where it sorts.
EXPORT_COLUMNS = (
    PipelineRun.id, Pipeline.name.label("pipeline_name"), PipelineRun.name, PipelineRun.tags, PipelineRun.run_metadata,
    PipelineRun.status, PipelineRun.input, PipelineRun.variables, PipelineRun.model, PipelineRun.artifact_data,
    PipelineRun.final_output, PipelineRun.input_tokens, PipelineRun.output_tokens, PipelineRun.cost,
    PipelineRun.cost_source, PipelineRun.error, PipelineRun.created_at, PipelineRun.completed_at, PipelineRun.listed_at,
)
STEP_COLUMNS = (
    RunStep.run_id, RunStep.agent_id, RunStep.agent_name, RunStep.output, RunStep.step_order, RunStep.model,
    RunStep.input_tokens, RunStep.output_tokens, RunStep.cost, RunStep.status, RunStep.started_at,
    RunStep.completed_at,
)




def iso_time(column: str) -> str:
    """SQL writing a timestamptz as Python's datetime.isoformat() does in UTC (microseconds only
    when there are some)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (f"""to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS') || CASE WHEN date_trunc('second', {column}) <> {column} """
            f"""THEN to_char({utc}, '.US') ELSE '' END || '+00:00'""")


# PostgreSQL writes each run's steps as the JSON array serialization.steps_array would, byte for
# byte (keys in StepOut's order, absent ones left out, compact; tests compare the two): the step
# rows then never become Python objects, which was most of an export's time.
STEPS_ARRAY_POSTGRES = f"""(SELECT coalesce('[' || string_agg(json_strip_nulls(row_to_json(step))::text, ','
                                                     ORDER BY step."stepOrder") || ']', '[]')
    FROM (SELECT s.agent_id AS "agentId", s.agent_name AS "agentName", s.output, s.step_order AS "stepOrder",
                 s.model, s.input_tokens AS "inputTokens", s.output_tokens AS "outputTokens", s.cost::text AS cost,
                 s.status, {iso_time("s.started_at")} AS "startedAt", {iso_time("s.completed_at")} AS "completedAt"
          FROM pipeline_run_steps AS s WHERE s.run_id = pipeline_runs.id) AS step)"""


# What a run's line of an export holds beside its texts (ids, names, times, usage, JSON keys): a
# little more than the fields' JSON takes, so a budget in bytes is not passed by runs of many short
# steps.
RUN_LINE_BYTES, STEP_LINE_BYTES = 600, 300


def run_bytes(dialect: str) -> ColumnElement[int]:
    """About how many bytes a run's line of an export takes: its texts, its JSON columns, each step's
    texts, and the fields around them (RUN_LINE_BYTES, STEP_LINE_BYTES). On PostgreSQL octet_length
    takes a long text's length from its TOAST header without reading it, and a JSON column counts
    as stored (compressed, when large); SQLite has no octet_length before 3.43, so there it is
    characters."""
    text_size, json_size = (func.octet_length, func.pg_column_size) if dialect == "postgresql" else (func.length,) * 2
    step_size = (text_size(RunStep.output) + text_size(RunStep.agent_id) + text_size(RunStep.agent_name)
                 + func.coalesce(text_size(RunStep.model), 0) + STEP_LINE_BYTES)
    steps = select(func.coalesce(func.sum(step_size), 0)).where(RunStep.run_id == PipelineRun.id)
    parts = [*(text_size(column) for column in (PipelineRun.name, PipelineRun.input, PipelineRun.final_output,
                                                 PipelineRun.error)),
             *(json_size(column) for column in (PipelineRun.artifact_data, PipelineRun.variables,
                                                PipelineRun.run_metadata, PipelineRun.tags))]
    total: ColumnElement[int] = steps.scalar_subquery() + RUN_LINE_BYTES
    for part in parts:
        total = total + func.coalesce(part, 0)
    return total


def export_runs(
    user: User, filters: ListFilters, after: Cursor | None, limit: int, byte_budget: int
) -> list[Row[Any]]:
    """A batch of whole runs (outputs included) as rows of EXPORT_COLUMNS, newest first, for exports:
    the next `limit` runs, or as many of them as fit in `byte_budget` (run_bytes), or the next run
    alone when it is larger than that: a batch of very large runs is never held at once. Each row
    has `next_bytes`, the size of the run after it among the next `limit` (None for the last of
    them: a batch whose last row has one was cut by the budget), and on PostgreSQL `steps_array`,
    its steps written as JSON (elsewhere see export_steps). One statement."""
    dialect = db.session.get_bind().dialect.name
    newest = replace(filters, sort="newest")
    key, descending = sort_key(newest)
    order = (key.desc(), PipelineRun.id.desc())
    page = filtered(select(PipelineRun.id.label("run_id"), run_bytes(dialect).label("bytes"),
                           func.row_number().over(order_by=order).label("position")), user, newest)
    if after is not None:
        page = page.where(keyset_after(key, descending, after))
    paged = page.order_by(*order).limit(limit).subquery("page")
    sized = select(paged, func.sum(paged.c.bytes).over(order_by=paged.c.position).label("through"),
                   func.lead(paged.c.bytes).over(order_by=paged.c.position).label("next_bytes")).subquery("sized")
    columns: tuple[Any, ...] = (*EXPORT_COLUMNS, sized.c.next_bytes)
    if dialect == "postgresql":
        columns += (literal_column(STEPS_ARRAY_POSTGRES).label("steps_array"),)
    statement = (
        select(*columns).select_from(sized)
        .join(PipelineRun, PipelineRun.id == sized.c.run_id).join(Pipeline, Pipeline.id == PipelineRun.pipeline_id)
        .where(or_(sized.c.through <= byte_budget, sized.c.position == 1))
        .order_by(sized.c.position)
    )
    return list(db.session.execute(statement).all())


def export_steps(user: User, run_ids: list[str]) -> dict[str, list[Row[Any]]]:
    """The steps of these runs of the user's, in one query: run id → its steps in order (for the
    export on SQLite, where export_runs does not write them)."""
    rows = db.session.execute(
        select(*STEP_COLUMNS).join(PipelineRun, PipelineRun.id == RunStep.run_id)
        .where(RunStep.run_id.in_(run_ids), PipelineRun.user_id == user.id)
        .order_by(RunStep.run_id, RunStep.step_order)
    ).all()
    steps: dict[str, list[Row[Any]]] = {}
    for row in rows:
        steps.setdefault(row.run_id, []).append(row)
    return steps


@dataclass(frozen=True)
class StepHeader:
    """What a step's tab shows before its output is fetched."""

    number: int  # 1-based, as people count: tab "step-1" is stepOrder 0
    agent_id: str
    agent_name: str
    status: str  # StepStatus
    started_at: datetime | None
    completed_at: datetime | None
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost: Decimal | None
    output_bytes: int


@dataclass(frozen=True)
class OutputText:
    """The start of one output (up to what was asked for) and its full size in UTF-8 bytes."""

    text: str
    total_bytes: int


def json_text(*path: str | int) -> ColumnElement[str]:
    """A text value inside artifact_data, extracted by the database (#>> on PostgreSQL)."""
    return cast(ColumnElement[str], PipelineRun.artifact_data[path].as_string())


def byte_length(expression: Any) -> ColumnElement[int]:
    """The UTF-8 size of a text expression, computed in the database."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.octet_length(expression)
    return func.length(func.cast(expression, LargeBinary))


def run_summary(
    user: User, run_id: str, *, with_input: bool = False, with_error: bool = False
) -> tuple[PipelineRun, str] | None:
    """The user's run without its outputs (artifact_data and final_output stay in the database) and,
    unless asked for, without its input and error: each may be MAX_OUTPUT_CHARS long, so reading
    run.input or run.error then raises rather than fetch it (run_text reads their start)."""
    options = [defer(PipelineRun.artifact_data), defer(PipelineRun.final_output)]
    if not with_input:
        options.append(defer(PipelineRun.input, raiseload=True))
    if not with_error:
        options.append(defer(PipelineRun.error, raiseload=True))
    row = db.session.execute(
        select(PipelineRun, Pipeline.name)
        .join(Pipeline)
        .options(*options)
        .where(PipelineRun.id == run_id, PipelineRun.user_id == user.id)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


RUN_TEXTS = {"input": PipelineRun.input, "error": PipelineRun.error}


def run_text(user: User, run_id: str, which: str, max_chars: int | None = None) -> OutputText | None:
    """The user's run's input or error ("input" or "error"): its first max_chars (all of it without
    max_chars) and its whole size in UTF-8 bytes; None for a missing run or an absent or empty error
    (an empty error is no error). Only that start leaves the database (PostgreSQL decompresses only
    what substr needs, and reads the size from the value's header)."""
    column = RUN_TEXTS[which]
    shown = column if max_chars is None else func.substr(column, 1, max_chars)
    row = db.session.execute(
        select(shown, byte_length(column)).where(PipelineRun.id == run_id, PipelineRun.user_id == user.id)
    ).one_or_none()
    if row is None or row[0] is None or (which == "error" and not row[0]):
        return None
    return OutputText(text=row[0], total_bytes=int(row[1] or 0))


@dataclass(frozen=True)
class Recomputed:
    """When a run's cost was last recomputed (`flask runs reprice`), and with which prices."""

    at: datetime
    prices: str  # the price table's fingerprint


def cost_recomputed(user: User, run_id: str) -> Recomputed | None:
    """The last reprice that changed the user's run, if one did."""
    row = db.session.execute(
        select(CostReprice.started_at, CostReprice.prices_fingerprint)
        .join(CostRepriceRun, CostRepriceRun.reprice_id == CostReprice.id)
        .join(PipelineRun, PipelineRun.id == CostRepriceRun.run_id)
        .where(CostRepriceRun.run_id == run_id, PipelineRun.user_id == user.id)
        .order_by(CostReprice.id.desc()).limit(1)
    ).one_or_none()
    return None if row is None else Recomputed(at=row[0], prices=row[1])


def step_headers(user: User, run_id: str) -> list[StepHeader]:
    """Each step's name, order, status, times, model, usage and output size; no output leaves the
    database (its size comes from the TOAST header on PostgreSQL, without decompressing it)."""
    statement = (
        select(
            RunStep.step_order, RunStep.agent_id, RunStep.agent_name, RunStep.status, RunStep.started_at,
            RunStep.completed_at, RunStep.model, RunStep.input_tokens, RunStep.output_tokens, RunStep.cost,
            byte_length(RunStep.output),
        )
        .join(PipelineRun, PipelineRun.id == RunStep.run_id)
        .where(RunStep.run_id == run_id, PipelineRun.user_id == user.id)
        .order_by(RunStep.step_order)
    )
    return [
        StepHeader(
            number=order + 1, agent_id=agent_id, agent_name=agent_name, status=status, started_at=started_at,
            completed_at=completed_at, model=model, input_tokens=tokens_in, output_tokens=tokens_out, cost=cost,
            output_bytes=int(size or 0),
        )
        for order, agent_id, agent_name, status, started_at, completed_at, model, tokens_in, tokens_out, cost, size
        in db.session.execute(statement).all()
    ]


def step_rows(run_id: str) -> list[RunStep]:
    """A run's step rows without their outputs, for the writer (which has checked the run is the caller's)."""
    return list(db.session.execute(
        select(RunStep).options(defer(RunStep.output)).where(RunStep.run_id == run_id).order_by(RunStep.step_order)
    ).scalars())


def step_before(run_id: str, step_order: int) -> tuple[bool, datetime | None]:
    """Whether the run has step `step_order` already, and when the step before it (the nearest
    lower stepOrder) ended: one row read through the key."""
    row = db.session.execute(
        select(RunStep.step_order, RunStep.completed_at)
        .where(RunStep.run_id == run_id, RunStep.step_order <= step_order)
        .order_by(RunStep.step_order.desc()).limit(1)
    ).one_or_none()
    if row is None:
        return False, None
    return row[0] == step_order, row[1]


def output_text(user: User, run_id: str, part: int | None, max_chars: int | None = None) -> OutputText | None:
    """One output: step `part` (1-based) or the final output (None), at most max_chars of it.

    Only that output, and only its first max_chars, crosses from the database into Python; a
    step's is its own row's value. Legacy runs have no artifact_data; their text final_output is
    the final output.
    """
    owned = select(PipelineRun.id).where(PipelineRun.id == run_id, PipelineRun.user_id == user.id)
    if part is None:
        text = func.coalesce(json_text("finalOutput"), PipelineRun.final_output, "")
        found = select(text.label("text")).where(PipelineRun.id.in_(owned))
    else:
        found = select(RunStep.output.label("text")).where(
            RunStep.run_id.in_(owned), RunStep.step_order == part - 1
        )
    # Extracted once in a subquery (OFFSET 0 keeps the planner from inlining it), so a large
    # value is decompressed once, not once for the text and again for its size.
    extracted = found.offset(0).subquery()
    shown = extracted.c.text if max_chars is None else func.substr(extracted.c.text, 1, max_chars)
    row = db.session.execute(select(shown, byte_length(extracted.c.text))).one_or_none()
    if row is None or row[0] is None:
        return None
    return OutputText(text=row[0], total_bytes=int(row[1] or 0))


def run_with_artifact(user: User, run_id: str) -> tuple[PipelineRun, str] | None:
    """The user's whole run, outputs included (downloads of everything)."""
    row = db.session.execute(
        select(PipelineRun, Pipeline.name).join(Pipeline).options(selectinload(PipelineRun.steps))
        .where(PipelineRun.id == run_id, PipelineRun.user_id == user.id)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def idempotent_run(user: User, key: str) -> tuple[str, PipelineRun] | None:
    """The request hash and run an Idempotency-Key of the user's stands for."""
    row = db.session.execute(
        select(IdempotencyKey.request_hash, PipelineRun)
        .join(PipelineRun, PipelineRun.id == IdempotencyKey.run_id)
        .where(IdempotencyKey.user_id == user.id, IdempotencyKey.key == key)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def idempotent_run_ids(user: User, keys: list[str]) -> dict[str, tuple[str, str]]:
    """The user's Idempotency-Keys among these: key -> (request hash, run id)."""
    if not keys:
        return {}
    rows = db.session.execute(
        select(IdempotencyKey.key, IdempotencyKey.request_hash, IdempotencyKey.run_id)
        .where(IdempotencyKey.user_id == user.id, IdempotencyKey.key.in_(set(keys)))
    )
    return {key: (digest, run_id) for key, digest, run_id in rows}


def run_exists(run_id: str) -> bool:
    """Whether any user has a run with this id (an import must not collide with one)."""
    return db.session.execute(select(PipelineRun.id).where(PipelineRun.id == run_id)).first() is not None


def rendered_texts(run_ids: list[str], max_chars: int) -> list[tuple[str, int | None, str]]:
    """The start of every output of these runs, as a tab renders it: (run id, step number or None
    for the final output, the first max_chars). For forgetting their cached renders: the ids are
    ones the caller has already scoped to their user (deleting.delete_where)."""
    final = select(
        PipelineRun.id, literal(None).label("part"),
        func.substr(func.coalesce(json_text("finalOutput"), PipelineRun.final_output, ""), 1, max_chars),
    ).where(PipelineRun.id.in_(run_ids))
    steps = select(RunStep.run_id, RunStep.step_order + 1, func.substr(RunStep.output, 1, max_chars)).where(
        RunStep.run_id.in_(run_ids))
    return [(run_id, part, text) for run_id, part, text in db.session.execute(final.union_all(steps))]
