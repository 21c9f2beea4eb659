"""Reading an export back: each JSONL line, parsed as schemas.ImportedRun, stored exactly as it was
written (id, times, usage, cost and cost source), unlike the API, which prices at completion; and the
export's summary line checked, so a file that was cut off is known for what it is."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from . import queries, rollups, schemas
from .extensions import db, lock_for_writing
from .models import PipelineRun, User
from .recording import RunValidationError, check_finish, name_from_input, pipeline_for, store_new, stored_steps
from .schemas import ExportSummary, ImportedRun
from .statuses import RunStatus


def import_run(user: User, line: ImportedRun) -> PipelineRun:
    """Store a run exactly as an export wrote it: its id, times, usage, cost and cost source.

    Unlike the API, an import is an operator's copy of runs already priced, so the stored cost
    is kept rather than recomputed from today's price table. `steps: null` marks a legacy run.
    """
    check_finish(line.completed_at, line.created_at)
    if line.id is not None and queries.run_exists(line.id):
        raise RunValidationError("id", "a run with this id already exists")
    legacy = line.steps is None
    final_output = line.final_output or ""
    usage = line.usage
    pipeline = line.pipeline.strip()
    run = PipelineRun(
        id=line.id,
        pipeline=pipeline_for(user, pipeline),
        user_id=user.id,
        status=line.status,
        name=line.name.strip() if line.name else name_from_input(line.input),
        tags=list(line.tags) if line.tags else None,
        run_metadata=dict(line.metadata) if line.metadata else None,
        input=line.input,
        variables=line.variables,
        model=line.model,
        artifact_data=None if legacy else {"finalOutput": final_output},
        final_output=final_output if legacy or line.status == RunStatus.COMPLETED else None,
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        cost=line.cost,
        cost_source=line.cost_source,
        error=line.error,
        created_at=line.created_at,
        completed_at=line.completed_at,
    )
    steps = None if legacy else stored_steps(line.steps)
    for step in steps or ():
        # An export does not say whether a step's cost was the provider's or computed: unknown, so a
        # reprice keeps it (RunStep.cost_source).
        step.pop("costSource", None)
    return store_new(run, pipeline, steps)


@dataclass
class FileImport:
    """What reading one file did: runs stored (not yet committed), lines refused, and what its summary
    line said."""

    stored: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    run_lines: int = 0  # lines before the summary line that are not blank: each one a run, as exported
    summary: ExportSummary | None = None
    summary_at: int | None = None  # its line number
    summary_fault: str | None = None  # what is wrong with a line that meant to be the summary
    after_summary: int | None = None  # the first non-blank line after it

    def incomplete(self) -> str | None:
        """Why the file is not one whole export as written (cut off, joined, or miscounted), or None."""
        if self.summary_fault is not None:
            return f"its summary line (line {self.summary_at}) is not valid: {self.summary_fault}"
        if self.summary is None:
            return "it does not end with the export's summary line, so it was cut off (or was not written by an export)"
        if self.after_summary is not None:
            return (f"line {self.after_summary} comes after the summary line (line {self.summary_at}), "
                    "so it is not one export as written")
        if self.summary.export.runs != self.run_lines:
            return (f"its summary line says {self.summary.export.runs:,} runs, but {self.run_lines:,} lines of runs "
                    "come before it")
        return None


def summary_document(document: Any) -> bool:
    """Whether a parsed line is meant as an export's summary line (an object whose only key is "export")."""
    return isinstance(document, dict) and list(document) == ["export"]


def import_lines(user: User, lines: Iterable[bytes], advance: Callable[[int], None]) -> FileImport:
    """Store the runs of an export's lines for the user, each in a savepoint of its own (a bad line is
    rolled back alone and reported), and check its summary line. Commits nothing: the caller decides,
    knowing whether the file was whole. `advance` is told the bytes read."""
    read = FileImport()
    lock_for_writing()  # one transaction for the whole file, its savepoints inside it
    # The summaries are written once, at the end and in key order, not line by line: a long import
    # holds no summary row from its first line on, and cannot deadlock with another writer.
    with rollups.counted_together():
        for number, line in enumerate(lines, start=1):
            advance(len(line))
            if not line.strip():
                continue
            if read.summary_at is not None:
                read.after_summary = read.after_summary or number
                continue
            try:
                document = json.loads(line)
            except ValueError as error:  # not JSON, or not UTF-8
                read.run_lines += 1
                read.rejected.append((number, f"not valid JSON ({getattr(error, 'msg', 'not UTF-8')})"))
                continue
            if summary_document(document):
                read.summary_at = number
                try:
                    read.summary = schemas.parse(ExportSummary, document)
                except schemas.InvalidBody as error:
                    read.summary_fault = str(error)
                continue
            read.run_lines += 1
            try:
                imported = schemas.parse(ImportedRun, document)
                with db.session.begin_nested():
                    import_run(user, imported)
                read.stored += 1
            except (schemas.InvalidBody, RunValidationError) as error:
                read.rejected.append((number, str(error)))
            except (SQLAlchemyError, ValueError, OverflowError) as error:
                # The savepoint is already rolled back; say which line the database refused.
                reason = f"{type(error).__name__}: {str(error).splitlines()[0]}"
                read.rejected.append((number, f"could not be stored ({reason})"))
    return read
