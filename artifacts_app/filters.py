"""What a list of runs is asked for: the filters, the order and the keyset position (plain values,
no request or app).

The reader (queries.py) takes these; paging.py reads them from a request and signs the cursor.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

from .statuses import FINISHED_STATUSES, RunStatus

ALL_STATUSES = tuple(status.value for status in RunStatus)
FINISHED = tuple(status.value for status in FINISHED_STATUSES)
# "" (every status) is the default; each status narrows to itself.
STATUS_CHOICES = ("", *ALL_STATUSES)

# Each order the list offers: newest and oldest by the time a row shows (completion, or start
# while a run is open), the rest largest first; ties go by run id, so paging stays exact.
SORTS = ("newest", "oldest", "cost", "tokens", "duration", "relevance")
DEFAULT_SORT = "newest"
SEARCH_ONLY_SORTS = ("relevance",)

SortValue = datetime | Decimal | int


@dataclass(frozen=True)
class ListFilters:
    """What the person asked to see. Empty values mean "any"."""

    pipelines: tuple[str, ...] = ()
    models: tuple[str, ...] = ()  # each matches a family: "gpt-4o" finds "gpt-4o-2024-08-06"
    status: str = ""
    tags: tuple[str, ...] = ()  # every one must be on the run
    metadata: tuple[tuple[str, str], ...] = ()  # (key, value) pairs, every one must match
    listed_from: date | None = None
    listed_to: date | None = None
    query: str = ""  # full-text search (search.py)
    sort: str = DEFAULT_SORT
    # Only finished runs (exports: an open run is not a record yet). Not a query parameter.
    finished_only: bool = False

    @property
    def statuses(self) -> tuple[str, ...]:
        chosen = (self.status,) if self.status else ALL_STATUSES
        return tuple(status for status in chosen if status in FINISHED) if self.finished_only else chosen

    @property
    def active(self) -> bool:
        """Whether anything narrows the default view (the order does not)."""
        return replace(self, sort=DEFAULT_SORT) != ListFilters(finished_only=self.finished_only)

    @property
    def summarised(self) -> bool:
        """Whether the totals can be added up from the rollups (pipeline, model, status and day);
        tags, metadata and a search need the matching runs themselves."""
        return not (self.tags or self.metadata or self.query)

    def range_start(self) -> datetime | None:
        """The first instant of the from-date, in UTC."""
        return datetime.combine(self.listed_from, time.min, timezone.utc) if self.listed_from else None

    def range_end(self) -> datetime | None:
        """The first instant after the to-date (the range includes the whole to-day)."""
        if self.listed_to is None:
            return None
        return datetime.combine(self.listed_to + timedelta(days=1), time.min, timezone.utc)

    def as_params(self) -> dict[str, str | list[str]]:
        """The filters as query-string parameters, empty and default ones left out (url_for repeats
        a list's values)."""
        params: dict[str, str | list[str]] = {
            "q": self.query,
            "pipeline": list(self.pipelines),
            "model": list(self.models),
            "status": self.status,
            "tag": list(self.tags),
            "from": self.listed_from.isoformat() if self.listed_from else "",
            "to": self.listed_to.isoformat() if self.listed_to else "",
            "sort": "" if self.sort == DEFAULT_SORT else self.sort,
        }
        params |= {f"meta.{key}": value for key, value in self.metadata}
        return {key: value for key, value in params.items() if value}


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after the run with this sort value and id, under these filters."""

    value: SortValue
    run_id: str
    filters: ListFilters
