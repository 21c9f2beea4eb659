"""The one reader of users' data: every function that reads runs, pipelines or tokens takes the user."""

from __future__ import annotations

from sqlalchemy import func, select

from .extensions import db
from .models import ApiToken, Pipeline, PipelineRun, User


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
