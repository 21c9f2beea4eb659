"""Runs abandoned by a crashed executor marked failed (`flask runs reap`).

A run that was started and never completed would stay open for ever. It is abandoned when it is
still open (pending or running) and nothing has happened to it for the given age. What happened
last is the latest of its start (created_at) and its steps' ends (pipeline_run_steps.completed_at):
a run keeps no "updated at", and posting a step is the only write an open run gets. A step posted
without times ended when the server received it, so that is our clock; one sent with its own times
carries the executor's. A step with no end tells nothing (only a closing body brings those, and it
closes the run).

Each abandoned run is failed by recording.fail_run, the writer an executor's /fail reaches, so one
place decides everything else: its steps stay and are priced as of its end, its tokens and cost are
theirs, the summaries and the search index move with it in the same transaction. It ends at its last
activity, not at the reap, so its duration and timeline say how long it really ran.

Batches of one transaction each, in id order. On PostgreSQL the rows are locked FOR UPDATE SKIP
LOCKED: a run its executor is writing at this moment is skipped (it is not abandoned), and a write
that arrives while the batch holds the lock waits for it, then finds the run failed (the API's 409).
SQLite locks the whole database instead: the batch takes the write lock as it begins, as a writing
request does (extensions.py). fail_run's conditional close settles the rest: of two closers, exactly
one wins.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select

from . import recording, rollups, schemas
from .extensions import db, lock_for_writing
from .models import PipelineRun, RunStep, User
from .statuses import OPEN_STATUSES

BATCH = 100  # runs per transaction: each is a few statements, and the batch holds its rows' locks


def age_text(age: timedelta) -> str:
    """An age as `flask runs reap --older-than` takes it: 2h, 3d, 2w."""
    hours = int(age.total_seconds()) // 3600
    if hours % (24 * 7) == 0:
        return f"{hours // (24 * 7)}w"
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


def abandoned_message(age: timedelta) -> str:
    """The error an abandoned run is failed with."""
    return f"Abandoned: no activity for {age_text(age)}; marked failed by `flask runs reap`"


def abandoned_conditions(before: datetime, user: User | None) -> list[Any]:
    """Open runs, the user's or everyone's, started before `before` with no step ending since."""
    recent_step = exists().where(RunStep.run_id == PipelineRun.id, RunStep.completed_at >= before)
    conditions = [PipelineRun.status.in_(OPEN_STATUSES), PipelineRun.created_at < before, ~recent_step]
    if user is not None:
        conditions.append(PipelineRun.user_id == user.id)
    return conditions


def abandoned_count(before: datetime, user: User | None = None) -> int:
    """How many runs a reap with these bounds would fail (a dry run's answer; nothing is locked)."""
    return int(db.session.execute(
        select(func.count()).select_from(PipelineRun).where(*abandoned_conditions(before, user))).scalar_one())


def last_activity(run_ids: list[str]) -> dict[str, tuple[str, datetime]]:
    """Each run's owner and when it was last written to: its start, or its latest step's end.

    Read after the rows are locked, in a statement of its own: on PostgreSQL that sees a step
    committed between the batch's read and its lock, which the read's own snapshot did not.
    """
    rows = db.session.execute(
        select(PipelineRun.id, PipelineRun.user_id, PipelineRun.created_at, func.max(RunStep.completed_at))
        .outerjoin(RunStep, RunStep.run_id == PipelineRun.id)
        .where(PipelineRun.id.in_(run_ids))
        .group_by(PipelineRun.id, PipelineRun.user_id, PipelineRun.created_at)
        .order_by(PipelineRun.id)
    ).all()
    return {run_id: (user_id, max(started, last_step or started)) for run_id, user_id, started, last_step in rows}


def fail_batch(before: datetime, error: str, user: User | None, *, after: str = "", limit: int = BATCH
               ) -> tuple[list[str], int]:
    """Fail the next `limit` abandoned runs with ids above `after` in the current transaction (the
    caller commits): the ids locked and looked at, in order, and how many of them were failed."""
    lock_for_writing()
    ids = list(db.session.execute(
        select(PipelineRun.id).where(*abandoned_conditions(before, user), PipelineRun.id > after)
        .order_by(PipelineRun.id).limit(limit).with_for_update(skip_locked=True)
    ).scalars())
    failed = 0
    with rollups.counted_together():  # the batch's summary rows touched once each, in key order
        for run_id, (user_id, last) in last_activity(ids).items():
            if last >= before:
                continue  # a step arrived between the read and the lock: not abandoned
            owner = db.session.get(User, user_id)
            assert owner is not None  # a run's user goes only with the run (ON DELETE CASCADE)
            recording.fail_run(owner, run_id, schemas.parse(schemas.RunFail, {"error": error, "completedAt": last}))
            failed += 1
    return ids, failed


def reap(before: datetime, error: str, user: User | None = None, *, batch_size: int = BATCH,
         advance: Callable[[int], None] = lambda done: None) -> int:
    """Fail every run abandoned before `before`, batch by batch, each committed; how many were failed.
    `advance` is told how many runs each batch looked at."""
    total = 0
    after = ""
    while True:
        ids, failed = fail_batch(before, error, user, after=after, limit=batch_size)
        db.session.commit()
        if not ids:
            return total
        total += failed
        advance(len(ids))
        after = ids[-1]
