"""Which tabs a run has and which one a request names: "final", then "step-1", "step-2", …"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ..queries import StepHeader
from ..statuses import RunStatus, StepStatus

FINAL = "final"
STEP_PATTERN = re.compile(r"step-([1-9][0-9]{0,5})")


class BadTab(ValueError):
    """A tab or part name that is not of the form "final" or "step-N"."""


class NoSuchTab(LookupError):
    """A well-formed step number the run does not have."""


@dataclass(frozen=True)
class Span:
    """Where a step sits on the run's timeline, in percent of the run's duration."""

    start: float
    width: float


@dataclass(frozen=True)
class Tab:
    key: str  # "final" or "step-N", as in ?tab= and the element ids
    label: str
    step: StepHeader | None  # None for the final output
    span: Span | None = None  # None when the step's times (or the run's) are unknown

    @property
    def failed(self) -> bool:
        return self.step is not None and self.step.status == StepStatus.FAILED

    @property
    def number(self) -> int | None:
        return None if self.step is None else self.step.number


MIN_SPAN = 0.6  # percent: a step of a few milliseconds still shows as a sliver


def span_of(step: StepHeader, run_start: datetime, run_end: datetime | None) -> Span | None:
    """The step's share of the run's time, placed where it ran."""
    if step.started_at is None or step.completed_at is None or run_end is None or run_end <= run_start:
        return None
    total = (run_end - run_start).total_seconds()
    start = min(max((step.started_at - run_start).total_seconds() / total * 100, 0.0), 100.0)
    width = (step.completed_at - step.started_at).total_seconds() / total * 100
    return Span(start=round(start, 2), width=round(max(min(width, 100.0 - start), MIN_SPAN), 2))


def tab_key(step_number: int | None) -> str:
    """The tab of step N (1-based), or of the final output for None."""
    return FINAL if step_number is None else f"step-{step_number}"


def tabs_for(steps: list[StepHeader], run_start: datetime | None = None, run_end: datetime | None = None) -> list[Tab]:
    """"Final output" first, then one tab per step in stepOrder: "1 · Researcher", each placed on
    the run's timeline (from run_start to run_end: its completion, or now while it runs)."""
    if run_end is None and steps:
        run_end = max((step.completed_at for step in steps if step.completed_at), default=None)
    return [Tab(FINAL, "Final output", None)] + [
        Tab(tab_key(step.number), f"{step.number} · {step.agent_name}", step,
            None if run_start is None else span_of(step, run_start, run_end))
        for step in steps
    ]


def opening_tab(tabs: list[Tab], status: str) -> Tab:
    """The tab a run opens on without ?tab=: a failed run's failing step, else the final output."""
    if status == RunStatus.FAILED:
        failing = [tab for tab in tabs if tab.failed]
        if failing:
            return failing[0]
    return tabs[0]


def find_tab(tabs: list[Tab], key: str | None) -> Tab:
    """The tab a ?tab= (or ?part=) value names; malformed is BadTab, out of range NoSuchTab."""
    key = key or FINAL
    if key != FINAL and not STEP_PATTERN.fullmatch(key):
        raise BadTab(f"{key!r} is not a tab; use \"final\" or \"step-N\"")
    for tab in tabs:
        if tab.key == key:
            return tab
    raise NoSuchTab(f"This run has no {key}.")
