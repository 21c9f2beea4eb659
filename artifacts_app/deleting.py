"""Deleting runs (a run and everything of it, from everywhere it shows, in one transaction),
pruning old ones (by age, or by each user's retention setting), and deleting a whole account.

Its steps, its search index and its Idempotency-Keys go with its row (ON DELETE CASCADE:
pipeline_run_steps, idempotency_keys, run_search_parts on SQLite, run_search_pending on
PostgreSQL); the summaries (totals, filter menus) count it out in the same transaction; its cached
renders are dropped from the render cache. Its pipeline stays: a name the user's other runs
and future ones share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, select
from sqlalchemy.orm import load_only

from . import queries, rendering, rollups, throttle
from .artifacts.tabs import tab_key
from .extensions import db
from .models import LoginFailure, Pipeline, PipelineRun, User
from .statuses import FINISHED_STATUSES

PRUNE_BATCH = 500  # runs per transaction: short locks, and a stopped prune keeps what it did



def delete_runs(user: User, run_ids: Iterable[str]) -> list[str]:
    """Delete those of these runs that are the user's; the ids deleted, in id order (another user's
    ids and unknown ones are not deleted and not reported)."""
    wanted = list(dict.fromkeys(run_ids))
    if not wanted:
        return []
    return delete_where(PipelineRun.user_id == user.id, PipelineRun.id.in_(wanted))


def delete_where(*conditions: Any, limit: int | None = None) -> list[str]:
    """Delete the runs matching `conditions` (at most `limit` of them, lowest ids first); their ids.

    The rows are locked first (PostgreSQL), so a run being written to is deleted after that write
    or not at all, and is counted out of the summaries in the state it was deleted in.
    """
    statement = (
        select(PipelineRun, Pipeline.name).join(Pipeline).options(load_only(*rollups.SHARE_COLUMNS))
        .where(*conditions).order_by(PipelineRun.id).limit(limit).with_for_update(of=PipelineRun)
    )
    rows = db.session.execute(statement).all()
    if not rows:
        return []
    ids = [run.id for run, _ in rows]
    forget_renders(ids)
    rollups.count([(rollups.share_of(run, pipeline_name), -1) for run, pipeline_name in rows])
    db.session.execute(delete(PipelineRun).where(PipelineRun.id.in_(ids)).execution_options(synchronize_session=False))
    for run, _ in rows:
        db.session.expunge(run)
    return ids


def forget_renders(run_ids: list[str]) -> None:
    """Drop the cached renders of every output of these runs: each is cached under its run, tab
    and render limit, with its text's digest, so the texts are read (their start only) to name them.
    Renders made under an earlier RENDER_LIMIT_BYTES are not found; they expire."""
    limit = current_app.config["RENDER_LIMIT_BYTES"]
    rendering.forget_cached(
        (rendering.panel_cache_key(run_id, tab_key(part), limit), rendering.truncate_for_render(text, limit)[0])
        for run_id, part, text in queries.rendered_texts(run_ids, max_chars=limit + 1)
    )


def prune_conditions(before: datetime, user: User | None) -> list[Any]:
    """The finished runs listed (completed) before `before`, the user's or everyone's. Open runs
    are left alone: their executor may still write to them."""
    conditions = [PipelineRun.listed_at < before, PipelineRun.status.in_(FINISHED_STATUSES)]
    if user is not None:
        conditions.append(PipelineRun.user_id == user.id)
    return conditions


def prunable(before: datetime, user: User | None = None) -> int:
    """How many runs a prune with these bounds deletes."""
    return count_where(prune_conditions(before, user))


def prune(before: datetime, user: User | None = None, *, batch_size: int = PRUNE_BATCH,
          advance: Callable[[int], None] = lambda done: None) -> int:
    """Delete those runs, batch_size at a time, each batch its own transaction; how many went."""
    return prune_where(prune_conditions(before, user), batch_size=batch_size, advance=advance)


def count_where(conditions: list[Any]) -> int:
    return int(db.session.execute(select(func.count()).select_from(PipelineRun).where(*conditions)).scalar_one())


def prune_where(conditions: list[Any], *, batch_size: int = PRUNE_BATCH,
                advance: Callable[[int], None] = lambda done: None) -> int:
    """Delete the runs matching `conditions`, batch_size at a time, each batch its own transaction."""
    total = 0
    while ids := delete_where(*conditions, limit=batch_size):
        db.session.commit()
        total += len(ids)
        advance(len(ids))
    return total


@dataclass(frozen=True)
class Retention:
    """The runs one retention setting lets go: those finished before `before` of the users keeping
    runs `days` days."""

    days: int
    before: datetime
    users: int
    conditions: list[Any]


def retentions(now: datetime, user: User | None = None) -> list[Retention]:
    """Per retention setting in use (the user's, or everyone's), the finished runs it lets go. One
    scope per distinct number of days, not per user: a few queries however many users there are."""
    in_use = select(User.retention_days, func.count()).where(User.retention_days.is_not(None))
    if user is not None:
        in_use = in_use.where(User.id == user.id)
    found = []
    for days, users in db.session.execute(in_use.group_by(User.retention_days).order_by(User.retention_days)):
        before = now - timedelta(days=days)
        # The setting is read again with each batch: a user who changes it meanwhile keeps the new one.
        keeping = PipelineRun.user_id.in_(select(User.id).where(User.retention_days == days))
        found.append(Retention(days, before, users, [*prune_conditions(before, user), keeping]))
    return found


def delete_account(user: User) -> None:
    """Delete the user and everything of theirs; the caller commits.

    The user's row goes, and with it (ON DELETE CASCADE) their API tokens, pipelines, runs and all
    that hangs on the runs (see delete_where), filter menus and totals. Their cached renders are
    dropped first, and the login throttle's rows for their email: the account rule's and the
    (email, address) pairs' for every address the throttle holds, so no hash of the address stays.
    """
    for start in range(0, len(ids := queries.run_ids(user)), PRUNE_BATCH):
        forget_renders(ids[start:start + PRUNE_BATCH])
    addresses = [key.removeprefix(throttle.ADDRESS_RULE.prefix + ":") for key in db.session.execute(
        select(LoginFailure.key.distinct()).where(LoginFailure.key.startswith(throttle.ADDRESS_RULE.prefix + ":"))
    ).scalars()]
    keys = {throttle.email_key(user.email), throttle.pair_key(user.email, None),
            *(throttle.pair_key(user.email, address) for address in addresses)}
    db.session.execute(delete(LoginFailure).where(LoginFailure.key.in_(keys)))
    db.session.execute(delete(User).where(User.id == user.id).execution_options(synchronize_session=False))
    db.session.expunge(user)
