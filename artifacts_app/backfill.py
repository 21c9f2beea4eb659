"""Legacy runs brought into the current shape (`flask runs backfill-artifacts`).

A legacy run was stored before artifact storage (migration 0002): no artifact_data, its only output
the text final_output. The reader copes (queries.output_text falls back to final_output, exports write
`steps: null`), but every reader has to. This gives each one the shape a run recorded today without
steps has: artifact_data {"finalOutput": its final_output, or "" when it has none} and no step rows.
final_output stays as it is, as every completed run still writes it during the transition.

The document is built by the database, so no output crosses into Python; the search text (name,
input, final output) is the same before and after, so the search index needs nothing. It walks every
user's runs (an operator's command) in id order, a batch per transaction, and is idempotent: a
backfilled run is no longer legacy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, Text, cast, func, or_, select, update

from .extensions import db
from .models import PipelineRun

BATCH = 1000


def is_legacy() -> ColumnElement[bool]:
    """No artifact document: SQL NULL, or JSON null (what an import of an export's legacy line writes)."""
    return or_(PipelineRun.artifact_data.is_(None), cast(PipelineRun.artifact_data, Text) == "null")


def legacy_count() -> int:
    return db.session.execute(select(func.count()).select_from(PipelineRun).where(is_legacy())).scalar_one()


def current_document() -> ColumnElement[Any]:
    """{"finalOutput": final_output or ""}, built in SQL."""
    build = func.jsonb_build_object if db.session.get_bind().dialect.name == "postgresql" else func.json_object
    return build("finalOutput", func.coalesce(PipelineRun.final_output, ""))


def backfill(*, dry_run: bool = False, batch_size: int = BATCH, advance: Callable[[int], None] = lambda done: None
             ) -> int:
    """Give every legacy run its artifact document, committing batch by batch; how many were (or, in a
    dry run, would be) changed. `advance` is told how many runs each batch covered."""
    changed = 0
    after = ""
    while ids := list(db.session.execute(
        select(PipelineRun.id).where(is_legacy(), PipelineRun.id > after).order_by(PipelineRun.id).limit(batch_size)
    ).scalars()):
        after = ids[-1]
        if dry_run:
            changed += len(ids)
        else:
            # Still legacy: a run written between the read and this update is left as its writer made it.
            result: CursorResult[Any] = db.session.execute(  # type: ignore[assignment]
                update(PipelineRun).where(PipelineRun.id.in_(ids), is_legacy())
                .values(artifact_data=current_document()).execution_options(synchronize_session=False)
            )
            changed += result.rowcount
            db.session.commit()
        advance(len(ids))
    if dry_run:
        db.session.rollback()
    return changed
