"""The one reader of users' data: every function that reads runs, pipelines or tokens takes the user."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, String, func, literal, select, tuple_, union_all

from .extensions import db
from .listing import Cursor, ListFilters
from .models import ApiToken, Pipeline, PipelineRun, User
from .types import UTCDateTime


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


def token_by_hash(token_hash: str) -> ApiToken | None:
    """The API token with this hash (how a bearer token finds its user)."""
    return db.session.execute(
        select(ApiToken).where(ApiToken.token_hash == token_hash)
    ).scalar_one_or_none()


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


LIST_COLUMNS = (
    PipelineRun.id,
    Pipeline.name.label("pipeline_name"),
    PipelineRun.model,
    PipelineRun.status,
    PipelineRun.input_tokens,
    PipelineRun.output_tokens,
    PipelineRun.cost,
    PipelineRun.cost_source,
    PipelineRun.created_at,
    PipelineRun.completed_at,
)


def filtered(statement: Select[Any], user: User, filters: ListFilters, statuses: tuple[str, ...]) -> Select[Any]:
    """Narrow a statement over pipeline_runs to the user's runs matching the filters."""
    statement = statement.where(PipelineRun.user_id == user.id, PipelineRun.completed_at.is_not(None))
    statement = statement.where(
        PipelineRun.status == statuses[0] if len(statuses) == 1 else PipelineRun.status.in_(statuses)
    )
    if filters.pipeline:
        # A subquery, not a join: the totals aggregate then never touches pipelines.
        statement = statement.where(
            PipelineRun.pipeline_id
            == select(Pipeline.id).where(Pipeline.user_id == user.id, Pipeline.name == filters.pipeline).scalar_subquery()
        )
    if filters.model:
        statement = statement.where(PipelineRun.model == filters.model)
    if (start := filters.range_start()) is not None:
        statement = statement.where(PipelineRun.completed_at >= start)
    if (end := filters.range_end()) is not None:
        statement = statement.where(PipelineRun.completed_at < end)
    return statement


def keyset_after(cursor: Cursor) -> ColumnElement[bool]:
    """Rows strictly after the cursor in (completed_at desc, id desc) order, as one row comparison."""
    return tuple_(PipelineRun.completed_at, PipelineRun.id) < tuple_(
        literal(cursor.completed_at, UTCDateTime()), literal(cursor.run_id, String())
    )


def list_runs(user: User, filters: ListFilters, after: Cursor | None, limit: int) -> list[Row[Any]]:
    """One page of the user's finished runs, newest completion first; never reads artifact_data.

    Keyset pagination on (completed_at, id): a run completing while someone scrolls cannot
    shift the pages, and a deep page costs the same as the first. With several statuses each
    gets its own index-ordered scan, merged afterwards, so no status forces a full sort.
    """
    order = (PipelineRun.completed_at.desc(), PipelineRun.id.desc())
    pages = []
    for status in filters.statuses:
        statement = filtered(select(*LIST_COLUMNS).join(Pipeline), user, filters, (status,))
        if after is not None:
            statement = statement.where(keyset_after(after))
        pages.append(statement.order_by(*order).limit(limit))
    if len(pages) == 1:
        return list(db.session.execute(pages[0]).all())
    merged = union_all(*(page.subquery().select() for page in pages)).subquery()
    return list(
        db.session.execute(
            select(merged).order_by(merged.c.completed_at.desc(), merged.c.id.desc()).limit(limit)
        ).all()
    )


def run_totals(user: User, filters: ListFilters) -> Totals:
    """Count, tokens and cost of every run the filtered list shows, in one aggregate query."""
    row = db.session.execute(
        filtered(
            select(
                func.count(),
                func.coalesce(func.sum(PipelineRun.input_tokens), 0),
                func.coalesce(func.sum(PipelineRun.output_tokens), 0),
                func.sum(PipelineRun.cost),
                func.count().filter(PipelineRun.cost.is_(None)),
            ).select_from(PipelineRun),
            user,
            filters,
            filters.statuses,
        )
    ).one()
    return Totals(
        runs=row[0], input_tokens=int(row[1]), output_tokens=int(row[2]),
        cost=row[3] if row[3] is not None else Decimal(0), unpriced_runs=row[4],
    )


def pipeline_names(user: User) -> list[str]:
    """The names of the user's pipelines, for the filter menu."""
    return list(
        db.session.execute(select(Pipeline.name).where(Pipeline.user_id == user.id).order_by(Pipeline.name)).scalars()
    )


def model_names(user: User) -> list[str]:
    """The models the user's runs used, for the filter menu."""
    return list(
        db.session.execute(
            select(PipelineRun.model)
            .where(PipelineRun.user_id == user.id, PipelineRun.model.is_not(None))
            .distinct()
            .order_by(PipelineRun.model)
        ).scalars()
    )


def export_runs(
    user: User, filters: ListFilters, after: Cursor | None, limit: int
) -> list[tuple[PipelineRun, str]]:
    """Whole runs (artifact_data included) with their pipeline names, in list order, for exports."""
    pages = []
    for status in filters.statuses:
        statement = filtered(select(PipelineRun, Pipeline.name).join(Pipeline), user, filters, (status,))
        if after is not None:
            statement = statement.where(keyset_after(after))
        pages.append(statement.order_by(PipelineRun.completed_at.desc(), PipelineRun.id.desc()).limit(limit))
    found: list[tuple[PipelineRun, str]] = []
    for page in pages:
        found.extend(tuple(row) for row in db.session.execute(page).all())  # type: ignore[misc]
    found.sort(key=lambda pair: (pair[0].completed_at, pair[0].id), reverse=True)
    return found[:limit]
