"""The words a run's state is stored and spoken in: its status, its steps' status, where its cost came from."""

from __future__ import annotations

from enum import Enum


class RunStatus(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


OPEN_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING)
FINISHED_STATUSES = (RunStatus.COMPLETED, RunStatus.FAILED)


class StepStatus(str, Enum):
    """A step is recorded once it has ended: it either did its work or it is where the run broke."""

    COMPLETED = "completed"
    FAILED = "failed"


class CostSource(str, Enum):
    COMPUTED = "computed"  # tokens × the price in force at completion
    PROVIDER = "provider"  # what the provider billed, as reported
    UNPRICED = "unpriced"  # no price known, or no usage: never shown as $0


def sql_list(values: type[Enum]) -> str:
    """The enum's values as an SQL list for a CHECK constraint: 'a', 'b'."""
    return ", ".join(f"'{member.value}'" for member in values)
