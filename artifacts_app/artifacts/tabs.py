"""Which tabs a run has and which one a request names: "final", then "step-1", "step-2", …"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..queries import StepHeader

FINAL = "final"
STEP_PATTERN = re.compile(r"step-([1-9][0-9]{0,5})")


class BadTab(ValueError):
    """A tab or part name that is not of the form "final" or "step-N"."""


class NoSuchTab(LookupError):
    """A well-formed step number the run does not have."""


@dataclass(frozen=True)
class Tab:
    key: str  # "final" or "step-N", as in ?tab= and the element ids
    label: str
    step: StepHeader | None  # None for the final output

    @property
    def number(self) -> int | None:
        return None if self.step is None else self.step.number


def tabs_for(steps: list[StepHeader]) -> list[Tab]:
    """"Final output" first, then one tab per step in stepOrder: "1 · Researcher"."""
    return [Tab(FINAL, "Final output", None)] + [
        Tab(f"step-{step.number}", f"{step.number} · {step.agent_name}", step) for step in steps
    ]


def find_tab(tabs: list[Tab], key: str | None) -> Tab:
    """The tab a ?tab= (or ?part=) value names; malformed is BadTab, out of range NoSuchTab."""
    key = key or FINAL
    if key != FINAL and not STEP_PATTERN.fullmatch(key):
        raise BadTab(f"{key!r} is not a tab; use \"final\" or \"step-N\"")
    for tab in tabs:
        if tab.key == key:
            return tab
    raise NoSuchTab(f"This run has no {key}.")
