"""The tables: users, their API tokens, pipelines and pipeline runs; the artifact's JSON shape."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, NotRequired, TypedDict

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from .extensions import Model
from .statuses import CostSource, RunStatus, sql_list
from .types import JSONDocument, Money, UTCDateTime, utcnow


def new_id() -> str:
    """A fresh random UUID as text."""
    return str(uuid.uuid4())


def new_session_token() -> str:
    """A random token naming one login session; rotating it ends every copy of the cookie."""
    return secrets.token_urlsafe(32)


class ArtifactStep(TypedDict):
    """One step's output inside artifact_data, in the executors' camelCase."""

    agentId: str
    agentName: str
    output: str
    stepOrder: int
    model: NotRequired[str]
    inputTokens: NotRequired[int]
    outputTokens: NotRequired[int]
    cost: NotRequired[str]  # a decimal string: JSON numbers would be read back as floats


class ArtifactOutput(TypedDict):
    """The artifact_data document: every step's output in order, and the final output."""

    steps: list[ArtifactStep]
    finalOutput: str


class User(UserMixin, Model):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # Stored lower-cased (see normalize_email), so the unique constraint is case-insensitive.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    session_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_session_token)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    api_tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @validates("email")
    def normalize_email(self, key: str, email: str) -> str:
        return email.strip().lower()

    def get_id(self) -> str:
        """Flask-Login's "alternative token": the session names this, not the user id."""
        return self.session_token

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class ApiToken(Model):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(back_populates="api_tokens")


class Pipeline(Model):
    __tablename__ = "pipelines"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PipelineRun(Model):
    __tablename__ = "pipeline_runs"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(RunStatus)})", name="status"),
        CheckConstraint(f"cost_source IS NULL OR cost_source IN ({sql_list(CostSource)})", name="cost_source"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    pipeline_id: Mapped[str] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.PENDING.value)
    input: Mapped[str] = mapped_column(Text)
    variables: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    # Legacy: before artifact_data, a run's only output. Still written during the transition.
    final_output: Mapped[str | None] = mapped_column(Text)
    artifact_data: Mapped[ArtifactOutput | None] = mapped_column(JSONDocument)
    model: Mapped[str | None] = mapped_column(String(200))
    input_tokens: Mapped[int | None]
    output_tokens: Mapped[int | None]
    cost: Mapped[Decimal | None] = mapped_column(Money())
    cost_source: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    pipeline: Mapped[Pipeline] = relationship()

    def __repr__(self) -> str:
        return f"<PipelineRun {self.id} {self.status}>"


# Serves the list exactly: one user's runs of one status, newest completion first.
Index(
    "ix_pipeline_runs_list",
    PipelineRun.user_id,
    PipelineRun.status,
    PipelineRun.completed_at.desc(),
    PipelineRun.id.desc(),
)


class LoginFailure(Model):
    """One failed login, counted per email and per client address by the login throttle."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    # "email:<sha256 of the address>" or "ip:<address>"; strangers' typing is not kept in clear.
    key: Mapped[str] = mapped_column(String(128))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_login_failures_key_failed_at", "key", "failed_at"),)


class IdempotencyKey(Model):
    """A create request's Idempotency-Key: a retry with the same key returns the same run."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    # The request body's hash: reusing a key for a different request is an error, not a replay.
    request_hash: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
