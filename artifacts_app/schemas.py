"""Every body the API takes or gives, and the export/import line, as typed models (pydantic v2).

One place decides what is valid: the API validates requests with these models in one pass, the
writer receives their typed values and checks only what depends on a stored run (step order,
times, usage against steps), and the OpenAPI document is generated from the same models, so the
published contract cannot drift from what is enforced.

The size limits are settings (limits.py), so they are not fixed in the types: a field says which
limit applies (`Limit("MAX_NAME_LENGTH")`), validation reads its value from the validation context,
and the document reads it while it is generated. Every check here is linear in the input: lengths
come first, and no regular expression runs on the server (the patterns are for the document only).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date as date_type
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainValidator,
    RootModel,
    Tag,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from . import limits
from .statuses import CostSource, RunStatus, StepStatus
from .types import MONEY_LIMIT, MONEY_PLACES, MONEY_QUANTUM

MAX_TOKENS = 2**31 - 1  # the columns are 32-bit integers
MAX_STEP_ORDER = 100_000
MAX_FAULTS = 20  # a 422 lists at most this many; the first is enough to fix the request


# ---------------------------------------------------------------- limits in force

_document_limits: ContextVar[Mapping[str, int] | None] = ContextVar("document_limits", default=None)


def limits_in_force(info: ValidationInfo | None) -> Mapping[str, int]:
    """The limits a validation runs with: its context's, else the current app's, else the defaults."""
    try:  # not isinstance(context, Mapping): this runs for every string of a body, and an ABC check is slow
        return info.context["limits"]  # type: ignore[no-any-return, union-attr, index]
    except (AttributeError, TypeError, KeyError):
        return current_limits()


def current_limits() -> dict[str, int]:
    from flask import has_app_context

    if has_app_context():
        return {name: limits.value(name) for name in limits.LIMITS}
    return limits.defaults()


@contextmanager
def documenting(values: Mapping[str, int]) -> Iterator[None]:
    """Generate JSON schemas with these limits in them."""
    token = _document_limits.set(values)
    try:
        yield
    finally:
        _document_limits.reset(token)


def fault(kind: str, message: str, **values: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, message, values or None)


class Limit:
    """`Annotated[str | list | dict, Limit("MAX_…")]`: the length is checked before anything else."""

    KEYWORDS = {"string": "maxLength", "array": "maxItems", "object": "maxProperties"}

    def __init__(self, name: str) -> None:
        self.name = name

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def check_length(value: Any, info: ValidationInfo) -> Any:
            if isinstance(value, (str, list, dict)):
                limit = limits_in_force(info)[self.name]
                if len(value) > limit:
                    raise fault("too_long", limits.refusal(self.name, limit))
            return value

        return core_schema.with_info_before_validator_function(check_length, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        values = _document_limits.get() or limits.defaults()
        keyword = self.KEYWORDS[json_schema.get("type", "string")]
        return {keyword: values[self.name], "x-limit": self.name, **json_schema}


# ---------------------------------------------------------------- leaf types

# Text the database can store: no NUL (PostgreSQL refuses it), no lone surrogate (no UTF-8 form).
STORABLE_PATTERN = r"^[^\u0000\ud800-\udfff]*$"
# Storable and not only whitespace. Where \s* stops is where the first other character is, so a
# failing match is linear for a backtracking engine too (clients may check with one).
NOT_BLANK_PATTERN = r"^\s*[^\s\u0000\ud800-\udfff][^\u0000\ud800-\udfff]*$"


def storable(value: str) -> str:
    if "\x00" in value:
        raise fault("nul_character", "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise fault("lone_surrogate", "must be valid Unicode (no lone surrogates)") from None
    return value


class Text:
    """A string: storable, and (unless `blank_ok`) not empty or only whitespace."""

    def __init__(self, *, blank_ok: bool) -> None:
        self.blank_ok = blank_ok

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise fault("string_type", "must be a string")
        storable(value)
        if not self.blank_ok and not value.strip():
            raise fault("blank", "must not be empty")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self.check)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        if self.blank_ok:
            return {"type": "string", "pattern": STORABLE_PATTERN}
        return {"type": "string", "minLength": 1, "pattern": NOT_BLANK_PATTERN}


class Label(Text):
    """A tag or metadata key: one line people type into a filter, so no control characters; keys
    (`key_chars`) are further limited to what reads unambiguously in `meta.KEY=VALUE`."""

    # paging.py checks meta.KEY filters with these too.
    KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")
    KEY_PATTERN = r"^[A-Za-z0-9_.:-]+$"

    def __init__(self, *, key_chars: bool = False) -> None:
        super().__init__(blank_ok=False)
        self.key_chars = key_chars

    def check(self, value: Any) -> str:
        text = super().check(value)
        if self.key_chars:
            if not set(text) <= self.KEY_CHARS:
                raise fault("key_chars", "must use only letters, digits and _ . : -")
        elif any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
            raise fault("control_character", "must not contain control characters")
        return text.strip()

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        if self.key_chars:
            return {"type": "string", "minLength": 1, "pattern": self.KEY_PATTERN}
        return {"type": "string", "minLength": 1, "pattern": r"^\s*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"}


# The outermost annotation (the last) runs first: the length, then the text checks.
Name = Annotated[str, Text(blank_ok=False), Limit("MAX_NAME_LENGTH")]
Output = Annotated[str, Text(blank_ok=True), Limit("MAX_OUTPUT_CHARS")]
ErrorText = Annotated[str, Text(blank_ok=False), Limit("MAX_OUTPUT_CHARS")]
VariableText = Annotated[str, Text(blank_ok=True), Limit("MAX_VARIABLE_CHARS")]


def whole_number(value: Any) -> int:
    """An int, or a float without a fraction (JSON's 5.0 is 5); never a bool or a numeric string."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fault("int_type", "must be an integer")
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise fault("int_type", "must be an integer")
        return int(value)
    return value


class Counted:
    """A whole number from `minimum` to `maximum`."""

    def __init__(self, minimum: int, maximum: int) -> None:
        self.minimum, self.maximum = minimum, maximum

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def check(value: Any) -> int:
            number = whole_number(value)
            if number < self.minimum:
                raise fault(
                    "too_small", "must not be negative" if self.minimum == 0 else f"must be at least {self.minimum}"
                )
            if number > self.maximum:
                raise fault("too_large", f"must be at most {self.maximum}")
            return number

        return core_schema.no_info_plain_validator_function(check)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}


Tokens = Annotated[int, Counted(0, MAX_TOKENS)]
StepOrder = Annotated[int, Counted(0, MAX_STEP_ORDER)]

DECIMAL_PATTERN = r"^\s*[0-9]+(\.[0-9]{1,12})?\s*$"


class DollarAmount:
    """US dollars as a decimal string ("0.0042"): never a JSON number, which has been a float."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def check(value: Any) -> Decimal:
            if isinstance(value, str):
                if len(value) > limits.DECIMAL_STRING_LENGTH:
                    raise fault("too_long", f"must be at most {limits.DECIMAL_STRING_LENGTH} characters")
                try:
                    amount = Decimal(value.strip())
                except InvalidOperation:
                    raise fault("decimal_type", 'must be a decimal string such as "0.0042"') from None
            elif isinstance(value, Decimal):
                amount = value
            else:
                raise fault("decimal_type", 'must be a decimal string such as "0.0042"')
            if not amount.is_finite() or amount < 0:
                raise fault("decimal_range", "must be a finite, non-negative amount")
            # Compared before quantizing: quantize needs more digits than the context has for huge values.
            exponent = amount.as_tuple().exponent
            if amount >= MONEY_LIMIT or (isinstance(exponent, int) and exponent < -MONEY_PLACES):
                raise fault(
                    "decimal_range", f"must have at most {MONEY_PLACES} decimal places and be below {MONEY_LIMIT}"
                )
            return amount.quantize(MONEY_QUANTUM)

        return core_schema.no_info_plain_validator_function(check)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "maxLength": limits.DECIMAL_STRING_LENGTH,
            "pattern": DECIMAL_PATTERN,
            "description": 'A non-negative amount of US dollars as a decimal string, e.g. "0.0042".',
        }


Dollars = Annotated[Decimal, DollarAmount()]


def parse_time(value: Any) -> datetime:
    """The one time parser: an ISO 8601 time with an offset ("Z" or ±hh:mm), as a UTC datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and len(value) <= 64:
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise fault("datetime_type", "must be an ISO 8601 time with an offset, e.g. 2025-11-30T12:00:00Z") from None
    else:
        raise fault("datetime_type", "must be an ISO 8601 time with an offset, e.g. 2025-11-30T12:00:00Z")
    if moment.tzinfo is None:
        raise fault("datetime_type", "must be an ISO 8601 time with an offset, e.g. 2025-11-30T12:00:00Z")
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        raise fault("datetime_range", "must be a time between the years 1 and 9999 in UTC") from None


class Timestamp:
    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(parse_time)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "maxLength": 64, "format": "date-time"}


Time = Annotated[datetime, Timestamp()]


class VariableValue:
    """A variable's value: a string (within MAX_VARIABLE_CHARS), a finite number, a boolean or null."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        text = handler.generate_schema(VariableText)

        def check(value: Any, next_: core_schema.ValidatorFunctionWrapHandler) -> Any:
            if isinstance(value, str):
                return next_(value)
            if value is None or isinstance(value, (bool, int)):
                return value
            if isinstance(value, float):
                if not math.isfinite(value):
                    raise fault("finite_number", "must be a finite number")
                return value
            raise fault("variable_type", "must be a string, number, boolean or null")

        return core_schema.no_info_wrap_validator_function(check, text)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        values = _document_limits.get() or limits.defaults()
        return {
            "anyOf": [
                {
                    "type": "string",
                    "maxLength": values["MAX_VARIABLE_CHARS"],
                    "x-limit": "MAX_VARIABLE_CHARS",
                    "pattern": STORABLE_PATTERN,
                },
                {"type": ["number", "boolean", "null"]},
            ]
        }


class VariablesObject:
    """Documents every name as a Name (pydantic would write patternProperties, which let other names through)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return handler(source)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        values = _document_limits.get() or limits.defaults()
        name = {"type": "string", "maxLength": values["MAX_NAME_LENGTH"], "minLength": 1, "pattern": NOT_BLANK_PATTERN}
        value = VariableValue().__get_pydantic_json_schema__(schema, handler)
        return {"type": "object", "propertyNames": name, "additionalProperties": value}


Variables = Annotated[dict[Name, Annotated[Any, VariableValue()]], VariablesObject(), Limit("MAX_VARIABLES")]


def distinct_tags(tags: list[str]) -> list[str]:
    """Each tag once, in the order first given."""
    return list(dict.fromkeys(tags))


RunTag = Annotated[str, Label(), Limit("MAX_LABEL_LENGTH")]
Tags = Annotated[list[RunTag], AfterValidator(distinct_tags), Limit("MAX_TAGS")]
MetadataKey = Annotated[str, Label(key_chars=True), Limit("MAX_LABEL_LENGTH")]
MetadataValue = Annotated[str, Text(blank_ok=True), Limit("MAX_METADATA_CHARS")]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Limit("MAX_METADATA")]


class NotAllowed:
    """A property that must be absent for this status: any value, null included, is refused, once it
    has passed its own type's checks (so a fault inside it is still named where it is)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def refuse(value: Any) -> None:
            raise fault("not_allowed", "is not allowed with this status")

        return core_schema.no_info_after_validator_function(refuse, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"not": {}, "description": "Not allowed with this status."}


# ---------------------------------------------------------------- request bodies


class Body(BaseModel):
    """A JSON object with camelCase names and nothing else in it."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class UsageIn(Body):
    """Token counts and, when the provider reported one, what it billed (wins over the computed cost)."""

    input_tokens: Tokens | None = None
    output_tokens: Tokens | None = None
    cost: Dollars | None = None


class StepIn(Body):
    """One step's output; usage comes nested (`usage`) or flat on the step."""

    agent_id: Name
    agent_name: Name
    output: Output
    step_order: StepOrder
    model: Name | None = None
    usage: UsageIn | None = None
    input_tokens: Tokens | None = None
    output_tokens: Tokens | None = None
    cost: Dollars | None = None
    status: Literal["completed", "failed"] = "completed"
    started_at: Time | None = None
    completed_at: Time | None = None

    @field_validator("completed_at")
    @classmethod
    def ends_after_it_starts(cls, completed_at: datetime | None, info: ValidationInfo) -> datetime | None:
        started_at = info.data.get("started_at")
        if completed_at is not None and started_at is not None and completed_at < started_at:
            raise fault("step_times", "must not be before startedAt")
        return completed_at

    def own_usage(self) -> UsageIn | StepIn:
        """Where the step's usage is: its `usage`, else its own fields of the same names (not copied
        into a UsageIn, which checked them all again: a third of what preparing a 5-step run cost)."""
        return self.usage if self.usage is not None else self


def contiguous_steps(steps: list[StepIn]) -> list[StepIn]:
    """Steps in order; their stepOrder values must be unique and run contiguously from 0."""
    ordered = sorted(steps, key=lambda step: step.step_order)
    for expected, step in enumerate(ordered):
        if step.step_order != expected:
            raise fault(
                "step_order",
                "stepOrder values must be unique and contiguous from 0; expected {expected}, found {found}",
                expected=expected,
                found=step.step_order,
            )
    return ordered


class StepList:
    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(contiguous_steps, handler(source))


Steps = Annotated[list[StepIn], Limit("MAX_STEPS"), StepList()]


class Closing(Body):
    """What finishing a run may bring: its steps (all of them), its usage, when it finished."""

    steps: Steps | None = None
    usage: UsageIn | None = None
    completed_at: Time | None = None


class RunComplete(Closing):
    """POST /runs/{id}/complete."""

    final_output: Output
    model: Name | None = None


class RunFail(Closing):
    """POST /runs/{id}/fail: why it failed, and the steps that ran."""

    error: ErrorText


class NewRun(Body):
    """What every POST /runs says about the run."""

    pipeline: Name
    name: Name | None = Field(None, description="What the list calls the run; by default the input's first line.")
    tags: Tags | None = Field(None, description="Short labels to filter by (`tag=`); each kept once.")
    metadata: Metadata | None = Field(None, description="String key-values to filter by (`meta.KEY=VALUE`).")
    input: Output
    variables: Variables | None = None
    model: Name | None = None
    created_at: Time | None = None


class RunStart(NewRun):
    """Start a run (status running, the default): outputs and usage come later."""

    status: Literal["running"] = Field("running", description="running (the default) starts a run.")
    steps: Annotated[Steps | None, NotAllowed()] = None
    final_output: Annotated[Output | None, NotAllowed()] = None
    usage: Annotated[UsageIn | None, NotAllowed()] = None
    error: Annotated[Output | None, NotAllowed()] = None
    completed_at: Annotated[Time | None, NotAllowed()] = None


class RunRecordCompleted(NewRun, Closing):
    """Record a completed run in one call."""

    status: Literal["completed"]
    final_output: Output = ""
    error: Annotated[Output | None, NotAllowed()] = None


class RunRecordFailed(NewRun, Closing):
    """Record a failed run in one call: it says why, and keeps the steps that ran."""

    status: Literal["failed"]
    error: ErrorText
    final_output: Annotated[Output | None, NotAllowed()] = None


def status_tag(value: Any) -> str | None:
    """Which body this is, by its status; an unknown status is checked as a start, whose status
    field then names the fault."""
    if not isinstance(value, Mapping):
        return None
    status = value.get("status", "running")
    return status if status in ("completed", "failed") else "running"


class RunCreate(
    RootModel[
        Annotated[
            Annotated[RunStart, Tag("running")]
            | Annotated[RunRecordCompleted, Tag("completed")]
            | Annotated[RunRecordFailed, Tag("failed")],
            Discriminator(status_tag, custom_error_type="not_an_object", custom_error_message="must be a JSON object"),
        ]
    ]
):
    """POST /runs: start a run, or record a finished one (status completed or failed) in one call."""

    model_config = ConfigDict(frozen=True)


MAX_BATCH_RUNS = 500  # runs in one POST /runs/batch: one transaction, answered within seconds
IDEMPOTENCY_KEY_RULE = "must be 1 to 255 printable ASCII characters"


def valid_idempotency_key(key: str) -> bool:
    """An Idempotency-Key (the header of POST /runs, a field of a batch's run): IDEMPOTENCY_KEY_RULE."""
    return 1 <= len(key) <= 255 and all(" " <= char <= "~" for char in key)


class BatchKey(Body):
    """A run of a batch carries its own Idempotency-Key as a field."""

    idempotency_key: str | None = Field(
        None, description="This run's Idempotency-Key (1 to 255 printable ASCII characters): as the header of "
                          "POST /runs, a retry with the same key and run answers with the run already recorded.",
    )

    @field_validator("idempotency_key")
    @classmethod
    def printable_key(cls, key: str | None) -> str | None:
        if key is not None and not valid_idempotency_key(key):
            raise fault("idempotency_key", IDEMPOTENCY_KEY_RULE)
        return key


class RunStartItem(RunStart, BatchKey):
    """A start in a batch."""


class RunRecordCompletedItem(RunRecordCompleted, BatchKey):
    """A completed run in a batch."""


class RunRecordFailedItem(RunRecordFailed, BatchKey):
    """A failed run in a batch."""


class RunBatchItem(
    RootModel[
        Annotated[
            Annotated[RunStartItem, Tag("running")]
            | Annotated[RunRecordCompletedItem, Tag("completed")]
            | Annotated[RunRecordFailedItem, Tag("failed")],
            Discriminator(status_tag, custom_error_type="not_an_object", custom_error_message="must be a JSON object"),
        ]
    ]
):
    """One run of POST /runs/batch: a body of POST /runs, with its idempotencyKey when it has one."""

    model_config = ConfigDict(frozen=True)


class RunBatch(Body):
    """POST /runs/batch: up to MAX_BATCH_RUNS runs, each checked on its own (the envelope is checked
    first: a bad one is refused whole)."""

    runs: list[RunBatchItem] = Field(min_length=1, max_length=MAX_BATCH_RUNS)


# ---------------------------------------------------------------- responses, export and import


class Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class StepOut(Out):
    agent_id: str
    agent_name: str
    output: str
    step_order: int
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: str | None = None
    status: StepStatus = StepStatus.COMPLETED
    started_at: str | None = None
    completed_at: str | None = None


class UsageOut(Out):
    input_tokens: int | None
    output_tokens: int | None


class RunSummary(Out):
    """A run in a list: no outputs."""

    id: str
    url: str = Field(description="The run's page in the web app.")
    pipeline: str
    name: str
    tags: list[str]
    status: RunStatus
    model: str | None
    usage: UsageOut
    cost: str | None = Field(description="US dollars as a decimal string; null when unpriced.")
    cost_source: CostSource | None
    created_at: str
    completed_at: str | None


class RunPage(Out):
    runs: list[RunSummary]
    next_cursor: str | None


class RunRecord(Out):
    """A run with every output: one line of an export, and the base of what the API returns."""

    id: str
    pipeline: str
    name: str
    tags: list[str]
    metadata: dict[str, str]
    status: RunStatus
    input: str
    variables: dict[str, Any] | None
    model: str | None
    steps: list[StepOut] | None = Field(description="null for a legacy run, which has only a final output.")
    final_output: str | None
    usage: UsageOut
    cost: str | None = Field(description="US dollars as a decimal string; null when unpriced.")
    cost_source: CostSource | None
    error: str | None
    created_at: str
    completed_at: str | None


class ExportTotals(Out):
    runs: int = Field(description="How many run lines come before this one.")
    complete: Literal[True] = Field(description="The export reached its end.")


class ExportSummary(Out):
    """The last line of a JSONL export: {"export": {"runs": N, "complete": true}}. Written only once
    every run is out, so a file without it, or with lines after it, was cut off or joined; `flask runs
    import` refuses such a file."""

    export: ExportTotals


class RunOut(RunRecord):
    """A run as the API returns it: with its page's URL, and warnings when it is unpriced."""

    url: str = Field(description="The run's page in the web app.")
    warnings: list[str] | None = Field(None, description="Present when the run is unpriced, saying why.")


class FieldFault(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    error: str
    message: str
    fields: list[FieldFault] | None = None


class BatchResult(Out):
    """What became of one run of a batch, by its place in the request: 201 created, 200 replayed (its
    idempotencyKey was used before for the same run), or the error POST /runs would have answered."""

    index: int
    status: int = Field(description="201, 200, or the 4xx POST /runs would have answered (409, 422).")
    id: str | None = Field(None, description="The run recorded (or replayed).")
    url: str | None = Field(None, description="The run's page in the web app.")
    error: str | None = None
    message: str | None = None
    fields: list[FieldFault] | None = None


class BatchOut(Out):
    results: list[BatchResult]
    created: int
    replayed: int
    failed: int


class ImportedUsage(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")

    input_tokens: Tokens | None = None
    output_tokens: Tokens | None = None


class ImportedRun(BaseModel):
    """One line of an export, read back exactly: id, times, usage, cost and cost source kept.

    Unlike the API's bodies, unknown properties (the export's `url`, `warnings`) are ignored.
    `steps: null` marks a legacy run, which has only a final output.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")

    id: Annotated[str, Field(max_length=36), Text(blank_ok=False)] | None = None
    pipeline: Name
    name: Name | None = None
    tags: Tags | None = None
    metadata: Metadata | None = None
    status: Literal["completed", "failed"]
    input: Output
    variables: Variables | None = None
    model: Name | None = None
    steps: Steps | None = []
    final_output: Output | None = None
    usage: ImportedUsage | None = None
    cost: Dollars | None = None
    cost_source: CostSource | None = None
    error: ErrorText | None = None
    created_at: Time
    completed_at: Time


# ---------------------------------------------------------------- the price file (TOML)

PRICE_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
PRICE_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")  # the sign is let through to be refused by name


def price_amount(value: Any) -> Decimal:
    """Dollars per million tokens: a quoted decimal ("2.50") or a whole number; a TOML float would
    already have been rounded, so it is refused."""
    if isinstance(value, (bool, float)):
        raise fault("price_type", 'must be a quoted decimal string like "2.50"')
    text = str(value).strip() if isinstance(value, (int, str)) else ""
    if not PRICE_TEXT.fullmatch(text):
        raise fault("price_type", 'must be a decimal string like "2.50"')
    amount = Decimal(text)
    if amount < 0:
        raise fault("price_range", "must not be negative")
    return amount


def price_day(value: Any) -> Any:
    """An unquoted TOML date (2024-10-02): not a string, not a date with a time of day."""
    if isinstance(value, datetime) or not isinstance(value, date_type):
        raise fault("date_type", "must be an unquoted TOML date like 2024-10-02")
    return value


def lower_case_name(value: Any) -> str:
    if not isinstance(value, str) or not value or value != value.strip().lower():
        raise fault("name", "must be a non-empty lower-case string")
    return value


PriceAmount = Annotated[Decimal, WithJsonSchema({"type": "string", "pattern": PRICE_PATTERN}),
                        PlainValidator(price_amount)]
ModelName = Annotated[str, PlainValidator(lower_case_name)]


class PriceFileRow(BaseModel):
    """One [[price]] table: a model's prices from the day they take effect."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelName
    provider: Annotated[str, PlainValidator(lambda value: Text(blank_ok=False).check(value).strip())]
    input: PriceAmount
    output: PriceAmount
    effective: Annotated[date_type, PlainValidator(price_day)]


class PriceFile(BaseModel):
    """A price file: [[price]] rows and [aliases] (a dated or vendor name → the priced model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    price: list[PriceFileRow] = []
    aliases: dict[ModelName, ModelName] = {}


# ---------------------------------------------------------------- validating

M = TypeVar("M", bound=BaseModel)
TAGS = ("running", "completed", "failed")


def field_path(location: Sequence[int | str]) -> str:
    """A pydantic location as the API names fields: steps[2].stepOrder, variables.topic."""
    if "[key]" in location:  # a bad variable name: the fault is the object's (the name may be unprintable)
        location = location[: location.index("[key]") - 1]
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


STATUS_MESSAGE = 'must be "running", "completed" or "failed"'
MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "literal_error": "is not one of the allowed values",
}


def faults(error: ValidationError, *, tagged: bool = False) -> list[dict[str, str]]:
    """Each fault as {field, message}, without echoing the value (it may be 16 MB), at most MAX_FAULTS."""
    listed = []
    for item in error.errors(include_url=False, include_input=False):
        location = list(item["loc"])
        if tagged and location and location[0] in TAGS:
            location = location[1:]
        field = field_path(location)
        message = MESSAGES.get(item["type"], item["msg"])
        if item["type"] == "literal_error" and tagged and field == "status":
            message = STATUS_MESSAGE  # the run's status chooses the body's shape
        elif item["type"] == "literal_error" and "expected" in item.get("ctx", {}):
            message = "must be " + str(item["ctx"]["expected"]).replace("'", '"')
        listed.append({"field": field, "message": message})
    return listed[:MAX_FAULTS]


class InvalidBody(ValueError):
    """A body that was refused; `faults` names each field at fault, `field` and `message` the first."""

    def __init__(self, fault_list: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{item['field']}: {item['message']}" for item in fault_list))
        self.faults = fault_list
        self.field, self.message = fault_list[0]["field"], fault_list[0]["message"]


def parse(model: type[M], data: Any, limit_values: Mapping[str, int] | None = None) -> M:
    """`data` as a `model`, with the limits in force; InvalidBody naming every fault otherwise."""
    context = {"limits": limit_values if limit_values is not None else current_limits()}
    try:
        return model.model_validate(data, context=context)
    except ValidationError as error:
        raise InvalidBody(faults(error, tagged=issubclass(model, RootModel))) from None


REQUEST_MODELS: tuple[type[BaseModel], ...] = (RunCreate, StepIn, RunComplete, RunFail, RunBatch)
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (RunOut, RunPage, ErrorOut, BatchOut)
# The lines of a JSONL export (/artifacts/export?format=jsonl, `flask runs export`): runs, then the summary.
EXPORT_MODELS: tuple[type[BaseModel], ...] = (RunRecord, ExportSummary)
