"""Two runs side by side: how their facts differ, and which of their parts to diff against which.

The parts are the input, the final output and the steps. Steps pair up by agent, in order: the two
runs' agent sequences are aligned (difflib), so a step added or removed in one run leaves the steps
after it paired with their own agent. Where the alignment replaces as many steps as it puts in
their place, those pair up by position (an agent renamed, or swapped for another).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from difflib import SequenceMatcher
from typing import Any, Generic, TypeVar

from .models import PipelineRun
from .queries import StepHeader
from .statuses import FINISHED_STATUSES

INPUT, FINAL = "input", "final"
STEP_PAIR = re.compile(r"step-(0|[1-9][0-9]{0,5})-(0|[1-9][0-9]{0,5})")

Amount = TypeVar("Amount", int, Decimal, timedelta)


class BadPair(ValueError):
    """A ?tab= that is not "input", "final" or "step-N-M"."""


class NoSuchPair(LookupError):
    """A well-formed step pair these two runs do not have."""


@dataclass(frozen=True)
class Pair:
    """One part of each run to compare (a step missing on one side is None there)."""

    key: str  # "input", "final", or "step-N-M": step N of the old run with step M of the new (0: none)
    label: str
    old: StepHeader | None = None
    new: StepHeader | None = None

    @property
    def is_step(self) -> bool:
        return self.key not in (INPUT, FINAL)

    @property
    def swapped_key(self) -> str:
        """The same pair once A and B change places."""
        match = STEP_PAIR.fullmatch(self.key)
        return f"step-{match[2]}-{match[1]}" if match else self.key

    @property
    def one_sided(self) -> str | None:
        """"old" or "new" for a step only that run has."""
        if not self.is_step or (self.old and self.new):
            return None
        return "old" if self.old else "new"


def step_label(old: StepHeader | None, new: StepHeader | None) -> str:
    """ "2 · Writer", or "2 · Writer → 3 · Editor" when the two sides differ; a step only one run
    has is named alone (its tab says which run has it)."""
    names = [f"{step.number} · {step.agent_name}" for step in (old, new) if step]
    return names[0] if len(set(names)) == 1 else " → ".join(names)


def step_pair(old: StepHeader | None, new: StepHeader | None) -> Pair:
    key = f"step-{old.number if old else 0}-{new.number if new else 0}"
    return Pair(key, step_label(old, new), old, new)


def pair_steps(old: list[StepHeader], new: list[StepHeader]) -> list[Pair]:
    """The steps of both runs, paired (see the module's docstring), in the order they ran."""
    matcher = SequenceMatcher(None, [step.agent_id for step in old], [step.agent_id for step in new], autojunk=False)
    pairs: list[Pair] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            pairs.extend(step_pair(a, b) for a, b in zip(old[i1:i2], new[j1:j2], strict=True))
        else:
            pairs.extend(step_pair(a, None) for a in old[i1:i2])
            pairs.extend(step_pair(None, b) for b in new[j1:j2])
    return pairs


def pairs_for(old: list[StepHeader], new: list[StepHeader]) -> list[Pair]:
    """What a comparison shows, in order: the input, the final output, then each pair of steps."""
    return [Pair(INPUT, "Input"), Pair(FINAL, "Final output"), *pair_steps(old, new)]


def find_pair(pairs: list[Pair], key: str | None) -> Pair:
    """The pair a ?tab= names (the final output without one); malformed is BadPair, unknown NoSuchPair."""
    key = key or FINAL
    if key not in (INPUT, FINAL) and not STEP_PAIR.fullmatch(key):
        raise BadPair(f"{key!r} is not a part to compare; use \"input\", \"final\" or \"step-N-M\"")
    for pair in pairs:
        if pair.key == key:
            return pair
    raise NoSuchPair(f"These runs have no {key} to compare.")


@dataclass(frozen=True)
class Delta(Generic[Amount]):
    """new − old, shown as a sign and a size (each formatted like the values) and a percent."""

    sign: str  # "+", "−" or "" for no change
    size: Amount
    percent: Decimal | None  # None when old is zero

    @property
    def changed(self) -> bool:
        return self.sign != ""


def delta(old: Amount | None, new: Amount | None) -> Delta[Amount] | None:
    """How new differs from old; None when either is unknown."""
    if old is None or new is None:
        return None
    difference = new - old
    zero = type(difference)()  # 0, Decimal(0) or timedelta(0)
    sign = "+" if difference > zero else "−" if difference < zero else ""
    percent = None if old == zero else (exact(difference) / exact(old) * 100).quantize(Decimal(1))
    return Delta(sign, abs(difference), percent)


def exact(amount: int | Decimal | timedelta) -> Decimal:
    """An amount as a Decimal, exactly (a duration in microseconds), so no percent goes through a float."""
    return Decimal(amount // timedelta(microseconds=1)) if isinstance(amount, timedelta) else Decimal(amount)


def run_duration(run: PipelineRun) -> timedelta | None:
    """A finished run's time from creation to completion."""
    if run.status not in FINISHED_STATUSES or run.completed_at is None:
        return None
    return run.completed_at - run.created_at


def total_tokens(run: PipelineRun) -> int | None:
    if run.input_tokens is None and run.output_tokens is None:
        return None
    return (run.input_tokens or 0) + (run.output_tokens or 0)


@dataclass(frozen=True)
class Facts:
    """The deltas shown beside the two runs' facts."""

    input_tokens: Delta[int] | None
    output_tokens: Delta[int] | None
    tokens: Delta[int] | None
    cost: Delta[Decimal] | None
    duration: Delta[timedelta] | None
    steps: Delta[int] | None


def facts(old: PipelineRun, new: PipelineRun, old_steps: int, new_steps: int) -> Facts:
    return Facts(
        input_tokens=delta(old.input_tokens, new.input_tokens),
        output_tokens=delta(old.output_tokens, new.output_tokens),
        tokens=delta(total_tokens(old), total_tokens(new)),
        cost=delta(old.cost, new.cost),
        duration=delta(run_duration(old), run_duration(new)),
        steps=delta(old_steps, new_steps),
    )


def step_duration(step: StepHeader | None) -> timedelta | None:
    if step is None or step.started_at is None or step.completed_at is None:
        return None
    return step.completed_at - step.started_at


@dataclass(frozen=True)
class StepFacts:
    """The deltas beside a pair of steps' facts (None where a side lacks the step or the fact)."""

    input_tokens: Delta[int] | None
    output_tokens: Delta[int] | None
    cost: Delta[Decimal] | None
    duration: Delta[timedelta] | None


def step_facts(old: StepHeader | None, new: StepHeader | None) -> StepFacts:
    return StepFacts(
        input_tokens=delta(old.input_tokens if old else None, new.input_tokens if new else None),
        output_tokens=delta(old.output_tokens if old else None, new.output_tokens if new else None),
        cost=delta(old.cost if old else None, new.cost if new else None),
        duration=delta(step_duration(old), step_duration(new)),
    )


@dataclass(frozen=True)
class Variable:
    name: str
    old: str | None  # None: the run has no such variable
    new: str | None

    @property
    def changed(self) -> bool:
        return self.old != self.new


def variables(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[Variable]:
    """Every variable either run has, by name, with both runs' values."""
    old, new = old or {}, new or {}
    return [Variable(name, as_text(old.get(name)), as_text(new.get(name))) for name in sorted(old.keys() | new.keys())]


def as_text(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
