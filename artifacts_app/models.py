"""The tables: users, their API tokens, pipelines and pipeline runs; the artifact's JSON shape."""

from __future__ import annotations

import secrets
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NotRequired, TypedDict

from flask_login import UserMixin
from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from .extensions import Model
from .statuses import CostSource, RunStatus, StepStatus, sql_list
from .types import JSONDocument, JSONOrNull, Money, MoneyTotal, StringList, UTCDateTime, utcnow

# A step's cost is the provider's or ours; "unpriced" is said by the step having no cost.
STEP_COST_SOURCES = ", ".join(f"'{source.value}'" for source in (CostSource.COMPUTED, CostSource.PROVIDER))


def new_id() -> str:
    """A fresh random UUID as text."""
    return str(uuid.uuid4())


def new_session_token() -> str:
    """A random token naming one login session; rotating it ends every copy of the cookie."""
    return secrets.token_urlsafe(32)


class ArtifactStep(TypedDict):
    """One step as the executors and the exports spell it (camelCase): what the writer checks and
    prices before it becomes a RunStep row, and what a row is read back as."""

    agentId: str
    agentName: str
    output: str
    stepOrder: int
    status: NotRequired[str]  # StepStatus; "completed" when not given
    model: NotRequired[str]
    inputTokens: NotRequired[int]
    outputTokens: NotRequired[int]
    cost: NotRequired[str]  # a decimal string: JSON numbers would be read back as floats
    costSource: NotRequired[str]  # where the cost came from (RunStep.cost_source); never exported
    startedAt: NotRequired[datetime]
    completedAt: NotRequired[datetime]


class ArtifactOutput(TypedDict):
    """The artifact_data document: the final output. A run's steps are rows of their own
    (RunStep); a document with "steps" is from before migration 0007."""

    finalOutput: str


# The longest retention the settings accept; beyond it, "for ever" (NULL) says what is meant.
MAX_RETENTION_DAYS = 3650


class User(UserMixin, Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            f"retention_days IS NULL OR retention_days BETWEEN 1 AND {MAX_RETENTION_DAYS}", name="retention_days"
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # Stored lower-cased (see normalize_email), so the unique constraint is case-insensitive.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    session_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_session_token)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Finished runs older than this many days go when `flask runs prune --retention` runs; NULL keeps them.
    retention_days: Mapped[int | None]

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
    # What the list calls the run: the name the executor gave, else the input's first line.
    name: Mapped[str] = mapped_column(String(200), server_default="")
    tags: Mapped[list[str] | None] = mapped_column(StringList)
    # "metadata" is taken on declarative classes; the column keeps the API's name.
    run_metadata: Mapped[dict[str, str] | None] = mapped_column("metadata", JSONOrNull)
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
    # The list's sort keys, written by the writer with the values they derive from
    # (recording.listing_columns): the time a row shows (completion, or start while open),
    # tokens in and out together, the cost and the duration (SORTS_LAST_… when the run
    # has none). Plain columns, not expression indexes: SQLite cannot reflect those, so a later
    # batch migration (a table copy) would drop them.
    listed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    total_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    sort_cost: Mapped[Decimal] = mapped_column(Money(), server_default="-1")
    sort_duration_ms: Mapped[int] = mapped_column(BigInteger, server_default="-1")

    pipeline: Mapped[Pipeline] = relationship()
    # Loaded only when asked for (a whole run's download, the API, exports): a tab reads its own row.
    steps: Mapped[list[RunStep]] = relationship(
        order_by="RunStep.step_order", cascade="all, delete-orphan", passive_deletes=True,
    )

    def __repr__(self) -> str:
        return f"<PipelineRun {self.id} {self.status}>"


class RunStep(Model):
    """One step of a run: a row of its own, so reading or adding one step never touches the others
    (on PostgreSQL each output is its own TOASTed value). stepOrder runs contiguously from 0."""

    __tablename__ = "pipeline_run_steps"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(StepStatus)})", name="status"),
        CheckConstraint(f"cost_source IS NULL OR cost_source IN ({STEP_COST_SOURCES})", name="cost_source"),
    )

    run_id: Mapped[str] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"), primary_key=True)
    step_order: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    agent_id: Mapped[str] = mapped_column(String(200))
    agent_name: Mapped[str] = mapped_column(String(200))
    output: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=StepStatus.COMPLETED.value)
    model: Mapped[str | None] = mapped_column(String(200))
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost: Mapped[Decimal | None] = mapped_column(Money())
    # "provider" (the step came with it) or "computed" (priced here), so a reprice recomputes only
    # ours; NULL without a cost, and for a cost of unknown origin: stored before migration 0009, or
    # imported (an export does not say), which a reprice keeps as it is.
    cost_source: Mapped[str | None] = mapped_column(String(16))
    # Unknown for steps stored before they were recorded (migration 0007) or sent without them in bulk.
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @classmethod
    def from_values(cls, run_id: str, step: ArtifactStep) -> RunStep:
        """The row for a checked and priced step."""
        return cls(**cls.row_of(run_id, step))

    @staticmethod
    def row_of(run_id: str, step: ArtifactStep) -> dict[str, Any]:
        """A checked and priced step's row as plain values, by attribute name."""
        return {
            "run_id": run_id, "step_order": step["stepOrder"], "agent_id": step["agentId"],
            "agent_name": step["agentName"], "output": step["output"],
            "status": step.get("status", StepStatus.COMPLETED.value), "model": step.get("model"),
            "input_tokens": step.get("inputTokens"), "output_tokens": step.get("outputTokens"),
            "cost": Decimal(step["cost"]) if "cost" in step else None,
            "cost_source": step.get("costSource") if "cost" in step else None,
            "started_at": step.get("startedAt"), "completed_at": step.get("completedAt"),
        }

    def values(self, *, output: bool = True) -> ArtifactStep:
        """The step in the executors' shape; what it does not have is left out (and its output,
        as "", when output=False: pricing needs only the usage)."""
        step: ArtifactStep = {
            "agentId": self.agent_id, "agentName": self.agent_name, "output": self.output if output else "",
            "stepOrder": self.step_order, "status": self.status,
        }
        for key, value in (
            ("model", self.model), ("inputTokens", self.input_tokens), ("outputTokens", self.output_tokens),
            ("startedAt", self.started_at), ("completedAt", self.completed_at),
        ):
            if value is not None:
                step[key] = value  # type: ignore[literal-required]
        if self.cost is not None:
            step["cost"] = format(self.cost, "f")
        return step


# What an unpriced run sorts by as its cost, and an open one as its duration: below every real
# value (the smallest Money step below $0, and -1 ms).
SORTS_LAST_COST = Decimal("-0.000000000001")
SORTS_LAST_DURATION = -1

# One index per keyset order of the list (queries.SORT_KEYS), each led by the user; the
# status-filtered default order has its own.
Index("ix_pipeline_runs_listed", PipelineRun.user_id, PipelineRun.listed_at.desc(), PipelineRun.id.desc())
Index(
    "ix_pipeline_runs_status_listed",
    PipelineRun.user_id, PipelineRun.status, PipelineRun.listed_at.desc(), PipelineRun.id.desc(),
)
Index("ix_pipeline_runs_cost", PipelineRun.user_id, PipelineRun.sort_cost, PipelineRun.id)
# Finds the runs with a rare tag (GIN on PostgreSQL; on SQLite a plain index the tag filter does not use).
Index("ix_pipeline_runs_tags", PipelineRun.tags, postgresql_using="gin")
Index("ix_pipeline_runs_tokens", PipelineRun.user_id, PipelineRun.total_tokens, PipelineRun.id)
Index("ix_pipeline_runs_duration", PipelineRun.user_id, PipelineRun.sort_duration_ms, PipelineRun.id)


class CostReprice(Model):
    """One `flask runs reprice` that changed something: when, with which prices, over which runs,
    and what their costs added up to before and after. Written batch by batch with the runs it
    changed, so it always tells what was committed (finished_at stays NULL if it was cut short)."""

    __tablename__ = "cost_reprices"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    prices_fingerprint: Mapped[str] = mapped_column(String(64))  # pricing.PriceTable.fingerprint()
    prices_file: Mapped[str | None] = mapped_column(String(1000))  # the operator's PRICES_FILE, if any
    # What it was asked to reprice: a model, and runs completed from / to these days (UTC).
    model: Mapped[str | None] = mapped_column(String(200))
    completed_from: Mapped[date | None] = mapped_column(Date)
    completed_to: Mapped[date | None] = mapped_column(Date)
    runs_considered: Mapped[int] = mapped_column(BigInteger, default=0)
    runs_changed: Mapped[int] = mapped_column(BigInteger, default=0)
    total_before: Mapped[Decimal] = mapped_column(MoneyTotal(), default=Decimal(0))  # of the runs considered
    total_after: Mapped[Decimal] = mapped_column(MoneyTotal(), default=Decimal(0))


class CostRepriceRun(Model):
    """A run a reprice changed (its cost, or one of its steps'), with its cost before and after:
    the run's page says when its cost was last recomputed, and the change can be traced."""

    __tablename__ = "cost_reprice_runs"

    run_id: Mapped[str] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"), primary_key=True)
    reprice_id: Mapped[int] = mapped_column(
        ForeignKey("cost_reprices.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    cost_before: Mapped[Decimal | None] = mapped_column(Money())
    cost_after: Mapped[Decimal | None] = mapped_column(Money())
    cost_source_before: Mapped[str] = mapped_column(String(16))
    cost_source_after: Mapped[str] = mapped_column(String(16))


class RunFacet(Model):
    """A value the user's runs use (a pipeline, model or tag) and how many runs use it: the list's
    filter menus read these instead of a DISTINCT over every run. The writer keeps the counts in the
    transaction that changes the runs; a value leaves when its last run does."""

    __tablename__ = "run_facets"
    __table_args__ = (CheckConstraint("kind IN ('pipeline', 'model', 'tag')", name="kind"),)

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    runs: Mapped[int] = mapped_column(BigInteger)


class RunRollup(Model):
    """The user's runs summed per pipeline, model, status and day (of listed_at, in UTC): the
    list's totals for those filters add up a few of these rows instead of every run. Kept by the
    writer in the same transaction as the runs (rollups.py), so they are never stale."""

    __tablename__ = "run_rollups"
    __table_args__ = (UniqueConstraint("user_id", "pipeline_id", "model", "status", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    pipeline_id: Mapped[str] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(200))  # "" for runs without a model
    status: Mapped[str] = mapped_column(String(16))
    day: Mapped[date] = mapped_column(Date)
    runs: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    cost: Mapped[Decimal] = mapped_column(MoneyTotal())  # of the priced runs
    unpriced_runs: Mapped[int] = mapped_column(BigInteger)  # finished runs without a cost


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
