"""What a list of runs is asked for: the filters and the keyset position (plain values, no request or app).

The reader (queries.py) takes these; paging.py reads them from a request and signs the cursor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from .statuses import FINISHED_STATUSES, RunStatus

# The list shows finished runs; the status filter narrows them.
STATUS_CHOICES = {
    RunStatus.COMPLETED.value: (RunStatus.COMPLETED.value,),
    RunStatus.FAILED.value: (RunStatus.FAILED.value,),
    "all": tuple(status.value for status in FINISHED_STATUSES),
}
DEFAULT_STATUS = RunStatus.COMPLETED.value


@dataclass(frozen=True)
class ListFilters:
    """What the person asked to see. Empty strings mean "any"."""

    pipeline: str = ""
    model: str = ""
    status: str = DEFAULT_STATUS
    completed_from: date | None = None
    completed_to: date | None = None

    @property
    def statuses(self) -> tuple[str, ...]:
        return STATUS_CHOICES[self.status]

    @property
    def active(self) -> bool:
        """Whether anything narrows the default view."""
        return self != ListFilters()

    def range_start(self) -> datetime | None:
        """The first instant of the from-date, in UTC."""
        return datetime.combine(self.completed_from, time.min, timezone.utc) if self.completed_from else None

    def range_end(self) -> datetime | None:
        """The first instant after the to-date (the range includes the whole to-day)."""
        if self.completed_to is None:
            return None
        return datetime.combine(self.completed_to + timedelta(days=1), time.min, timezone.utc)

    def as_params(self) -> dict[str, str]:
        """The filters as query-string parameters, defaults left out."""
        params = {
            "pipeline": self.pipeline,
            "model": self.model,
            "status": "" if self.status == DEFAULT_STATUS else self.status,
            "from": self.completed_from.isoformat() if self.completed_from else "",
            "to": self.completed_to.isoformat() if self.completed_to else "",
        }
        return {key: value for key, value in params.items() if value}


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after this (completed_at, id), under these filters."""

    completed_at: datetime
    run_id: str
    filters: ListFilters
