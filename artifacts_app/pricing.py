"""Model prices and run costs: the price table, model-name resolution and exact cost (display is formatting.py).

Money is Decimal throughout and never float: prices are read from TOML strings, costs are
computed exactly and rounded once, to the 12 places the cost column keeps.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from .models import ArtifactStep
from .schemas import MAX_TOKENS, CostSource, InvalidBody, PriceFile, UsageIn
from .types import MONEY_LIMIT

PACKAGED_PRICES = Path(__file__).with_name("prices.toml")

TOKENS_PER_PRICE_UNIT = 1_000_000
COST_PLACES = 12
COST_QUANTUM = Decimal(1).scaleb(-COST_PLACES)  # Decimal("0.000000000001"), as the cost column keeps


# Where the model name says who serves it, not what it is: "openai/gpt-4o" (OpenRouter,
# LiteLLM), "models/gemini-2.5-flash" (Gemini API), "us.anthropic.claude-..." (Bedrock).
PROVIDER_PREFIX = re.compile(
    r"^(?:openai/|anthropic/|google/|gemini/|mistral/|mistralai/|models/"
    r"|(?:us\.|eu\.|apac\.|global\.)?anthropic\.)"
)
# Bedrock model ids end in a model version, e.g. "anthropic.claude-3-haiku-20240307-v1:0".
BEDROCK_VERSION = re.compile(r"-v[0-9]+:[0-9]+$")
# One trailing version suffix each; the order matters only in that longer date forms are
# tried before the 4-digit one, which would otherwise never see them whole.
VERSION_SUFFIXES = (
    re.compile(r"-[0-9]{4}-(?:0[1-9]|1[0-2])-[0-3][0-9]$"),  # -2024-08-06 (OpenAI)
    re.compile(r"[-@][0-9]{4}(?:0[1-9]|1[0-2])[0-3][0-9]$"),  # -20250929 (Anthropic), @20250929 (Vertex)
    re.compile(r"-(?:preview|exp)-(?:0[1-9]|1[0-2])-[0-3][0-9]$"),  # -preview-05-20 (Gemini)
    re.compile(r"-[0-9]{2}(?:0[1-9]|1[0-2])$"),  # -2411 (Mistral YYMM)
    re.compile(r"-[0-9]{3}$"),  # -001 (Gemini stable versions)
    re.compile(r"-(?:latest|preview|exp)$"),
)


@dataclass(frozen=True)
class PriceRow:
    """One model's per-million-token prices in USD from the day they take effect."""

    model: str
    provider: str
    input_per_million: Decimal
    output_per_million: Decimal
    effective: date

    def __post_init__(self) -> None:
        """Reject rows that would make a cost wrong rather than merely unknown."""
        for name in ("input_per_million", "output_per_million"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise ValueError(f"{name} must be a finite Decimal, got {value!r}")
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        # datetime is a date subclass; a time of day would make "in force on that day" ambiguous.
        if not isinstance(self.effective, date) or isinstance(self.effective, datetime):
            raise ValueError(f"effective must be a date, got {self.effective!r}")
        if not self.model or self.model != self.model.strip().lower():
            raise ValueError(f"model must be a non-empty lower-case name, got {self.model!r}")
        if not self.provider:
            raise ValueError("provider must not be empty")


class PriceTable:
    """Price rows by model family, with aliases, resolving the many spellings of a model name."""

    def __init__(self, rows: Iterable[PriceRow], aliases: Mapping[str, str] | None = None) -> None:
        """Index the rows; duplicate (model, effective) pairs and dangling aliases are errors."""
        by_model: dict[str, list[PriceRow]] = {}
        for row in rows:
            by_model.setdefault(row.model, []).append(row)
        self._rows: dict[str, tuple[PriceRow, ...]] = {}
        self._dates: dict[str, list[date]] = {}
        for model, model_rows in by_model.items():
            model_rows.sort(key=lambda row: row.effective)
            dates = [row.effective for row in model_rows]
            if len(set(dates)) != len(dates):
                raise ValueError(f"model {model!r} has two rows with the same effective date")
            self._rows[model] = tuple(model_rows)
            self._dates[model] = dates

        checked: dict[str, str] = {}
        for name, target in (aliases or {}).items():
            if not isinstance(name, str) or not name or name != name.strip().lower():
                raise ValueError(f"alias {name!r} must be a non-empty lower-case name")
            if not isinstance(target, str) or target not in self._rows:
                raise ValueError(f"alias {name!r} points to {target!r}, which has no price row")
            if name in self._rows:
                # The exact row would always win, so the alias could never take effect.
                raise ValueError(f"alias {name!r} is also a priced model name")
            checked[name] = target
        self._aliases = checked

    @classmethod
    def load(cls, extra_file: str | Path | None = None) -> PriceTable:
        """The packaged prices, plus the operator's file whose rows and aliases add or override."""
        rows, aliases = read_price_file(PACKAGED_PRICES)
        merged = {(row.model, row.effective): row for row in rows}
        if extra_file is None or str(extra_file) == "":
            return cls(merged.values(), aliases)
        extra_rows, extra_aliases = read_price_file(Path(extra_file))
        for row in extra_rows:
            merged[(row.model, row.effective)] = row
        try:
            return cls(merged.values(), {**aliases, **extra_aliases})
        except ValueError as error:
            # The packaged file is known to be consistent, so a conflict comes from the operator's.
            raise ValueError(f"{extra_file}: {error}") from None

    @property
    def rows(self) -> tuple[PriceRow, ...]:
        """Every row, grouped by model and in effective-date order within a model."""
        return tuple(row for model_rows in self._rows.values() for row in model_rows)

    @property
    def aliases(self) -> Mapping[str, str]:
        """The alias names and the model each is priced as (read-only)."""
        return MappingProxyType(self._aliases)

    def models(self) -> list[str]:
        """The priced model names, sorted."""
        return sorted(self._rows)

    def fingerprint(self) -> str:
        """A SHA-256 of every row and alias, in hex: which prices a cost was computed with. The same
        prices give the same fingerprint however the files spell them ("2.50" or "2.5", in any order)."""
        document = {
            "rows": sorted(
                [row.model, row.provider, plain(row.input_per_million), plain(row.output_per_million),
                 row.effective.isoformat()]
                for row in self.rows
            ),
            "aliases": sorted(self._aliases.items()),
        }
        return hashlib.sha256(json.dumps(document, separators=(",", ":")).encode()).hexdigest()

    def _lookup(self, name: str) -> str | None:
        """The model a name is exactly, or is an alias of."""
        if name in self._rows:
            return name
        return self._aliases.get(name)

    def resolve(self, model: str) -> str | None:
        """The model name this table prices `model` as, or None; never a loose prefix match."""
        if not isinstance(model, str):
            return None
        found = self._lookup(model)
        if found is not None:
            return found
        name = model.strip().lower()
        while (stripped := PROVIDER_PREFIX.sub("", name, count=1)) != name:
            name = stripped
        name = BEDROCK_VERSION.sub("", name)
        while name:
            found = self._lookup(name)
            if found is not None:
                return found
            for suffix in VERSION_SUFFIXES:
                stripped = suffix.sub("", name)
                if stripped != name:
                    name = stripped
                    break
            else:
                return None
        return None

    def price_at(self, model: str, at: datetime | date) -> PriceRow | None:
        """The row in force on `at`'s UTC date; the earliest row if `at` precedes them all."""
        family = self.resolve(model)
        if family is None:
            return None
        index = bisect_right(self._dates[family], utc_date(at))
        # Effective dates in a public price list are approximate (announcement vs. rollout,
        # time zones), so a run just before the first listed date is priced at that first
        # price rather than left unpriced.
        return self._rows[family][max(index - 1, 0)]


def plain(amount: Decimal) -> str:
    """A price in its shortest exact digits: "2.5" for "2.50", "10" for "10.00"."""
    return format(amount.normalize(), "f")


def utc_date(at: datetime | date) -> date:
    """The UTC calendar date of a datetime (naive ones are taken as UTC), or the date itself."""
    if isinstance(at, datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            return at.date()
        return at.astimezone(UTC).date()
    if isinstance(at, date):
        return at
    raise TypeError(f"expected a datetime or date, got {type(at).__name__}")


def read_price_file(path: Path) -> tuple[list[PriceRow], dict[str, str]]:
    """The rows and aliases of one price file (schemas.PriceFile); any problem is a ValueError naming
    the file and the row."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as error:
        # One exception type for "this price file cannot be used", whatever the cause.
        raise ValueError(f"{path}: cannot read price file: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    try:
        parsed = PriceFile.model_validate(document)
    except ValidationError as error:
        raise ValueError(f"{path}: " + "; ".join(price_fault(item["loc"], item["type"], item["msg"], document)
                                               for item in error.errors(include_url=False))) from None
    rows: list[PriceRow] = []
    seen: set[tuple[str, date]] = set()
    for number, raw in enumerate(parsed.price, start=1):
        # Within one file a repeated (model, date) is a mistake; only another file may override.
        if (raw.model, raw.effective) in seen:
            raise ValueError(f"{path}: [[price]] row {number} (model {raw.model!r}): "
                             f"a second row for the same effective date {raw.effective}")
        seen.add((raw.model, raw.effective))
        rows.append(PriceRow(model=raw.model, provider=raw.provider, input_per_million=raw.input,
                             output_per_million=raw.output, effective=raw.effective))
    return rows, dict(parsed.aliases)


def price_fault(location: tuple[int | str, ...], kind: str, message: str, document: dict[str, Any]) -> str:
    """One fault of a price file in its own terms: "[[price]] row 2 (model 'x'): output is required"."""
    if kind == "extra_forbidden" and len(location) == 1:
        return f"unknown top-level key {location[0]} (expected [[price]] and [aliases])"
    if location[:1] == ("price",) and len(location) > 1 and isinstance(location[1], int):
        row = document["price"][location[1]]
        named = f" (model {row.get('model')!r})" if isinstance(row, dict) and "model" in row else ""
        field = ".".join(str(part) for part in location[2:])
        if kind == "missing":
            return f"[[price]] row {location[1] + 1}{named}: missing field {field}"
        if kind == "extra_forbidden":
            return f"[[price]] row {location[1] + 1}{named}: unknown field {field}"
        return f"[[price]] row {location[1] + 1}{named}: {field} {message}"
    if location[:1] == ("aliases",):
        return f"alias {'.'.join(str(part) for part in location[1:])}: {message} (quote keys containing dots)"
    return f"{'.'.join(str(part) for part in location) or 'file'}: {message}"


def check_tokens(name: str, value: Any) -> int:
    """A token count: a non-negative int, and not a bool."""
    # bool is an int subclass, so True would otherwise be priced as one token.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


# Traps Inexact so that the sum and the division are exact or fail loudly; the only
# rounding is the final quantize, done with the trap off.
_EXACT = Context(prec=60, rounding=ROUND_HALF_UP, traps=[Inexact, InvalidOperation, Overflow, DivisionByZero])


def calculate_cost(
    model: str | None,
    input_tokens: int,
    output_tokens: int,
    at: datetime | date | None = None,
    *,
    table: PriceTable,
) -> Decimal | None:
    """The exact cost in USD, rounded half-up to 12 places; None when the model has no price."""
    input_tokens = check_tokens("input_tokens", input_tokens)
    output_tokens = check_tokens("output_tokens", output_tokens)
    if not model:
        return None
    row = table.price_at(model, at if at is not None else datetime.now(UTC))
    if row is None:
        return None
    with localcontext(_EXACT) as context:
        try:
            total = Decimal(input_tokens) * row.input_per_million + Decimal(output_tokens) * row.output_per_million
            cost = total / TOKENS_PER_PRICE_UNIT
        except Inexact:
            raise ValueError("token counts too large to price exactly") from None
        context.traps[Inexact] = False
        return cost.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------- a run's cost


def refused(field: str, message: str) -> InvalidBody:
    """The steps and the run's usage do not add up: a fault of the body, named like any other."""
    return InvalidBody([{"field": field, "message": message}])


@dataclass(frozen=True)
class Pricing:
    """What a completed run is charged: tokens, cost, and where the cost came from."""

    input_tokens: int | None
    output_tokens: int | None
    cost: Decimal | None
    cost_source: str


def step_has_usage(step: ArtifactStep) -> bool:
    """Whether a step reported its own token counts."""
    return "inputTokens" in step and "outputTokens" in step


def price_steps(steps: list[ArtifactStep], run_model: str | None, at: datetime, table: PriceTable) -> None:
    """Give each step with its own usage a cost (the provider's, else computed) in place."""
    for step in steps:
        if "cost" in step or not step_has_usage(step):
            continue
        model = step.get("model") or run_model
        if not model:
            continue
        cost = calculate_cost(model, step["inputTokens"], step["outputTokens"], at=at, table=table)
        if cost is not None:
            step["cost"] = format(cost, "f")  # plain digits, never "5E-7"
            step["costSource"] = CostSource.COMPUTED.value


def price_run(
    steps: list[ArtifactStep], model: str | None, usage: UsageIn | None, at: datetime, table: PriceTable
) -> Pricing:
    """The run's tokens and cost: the steps' exact sums when every step has usage, else the run's."""
    usage = usage or UsageIn()
    if steps and all(step_has_usage(step) for step in steps):
        input_tokens = sum(step["inputTokens"] for step in steps)
        output_tokens = sum(step["outputTokens"] for step in steps)
        if max(input_tokens, output_tokens) > MAX_TOKENS:
            raise refused("steps", f"the steps' token counts add up to more than {MAX_TOKENS}")
        for name, given, total in (
            ("usage.inputTokens", usage.input_tokens, input_tokens),
            ("usage.outputTokens", usage.output_tokens, output_tokens),
        ):
            if given is not None and given != total:
                raise refused(name, f"is {given} but the steps add up to {total}")
        if usage.cost is not None:
            return Pricing(input_tokens, output_tokens, usage.cost, CostSource.PROVIDER)
        if all("cost" in step for step in steps):
            cost = sum((Decimal(step["cost"]) for step in steps), Decimal(0))
            if cost >= MONEY_LIMIT:
                raise refused("steps", "the steps' costs add up to more than the column holds")
            return Pricing(input_tokens, output_tokens, cost, CostSource.COMPUTED)
        return Pricing(input_tokens, output_tokens, None, CostSource.UNPRICED)

    if usage.cost is not None:
        return Pricing(usage.input_tokens, usage.output_tokens, usage.cost, CostSource.PROVIDER)
    if model and usage.input_tokens is not None and usage.output_tokens is not None:
        computed = calculate_cost(model, usage.input_tokens, usage.output_tokens, at=at, table=table)
        if computed is not None:
            return Pricing(usage.input_tokens, usage.output_tokens, computed, CostSource.COMPUTED)
    return Pricing(usage.input_tokens, usage.output_tokens, None, CostSource.UNPRICED)
