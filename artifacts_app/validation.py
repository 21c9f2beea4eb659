"""Request bodies checked against the OpenAPI document's own schemas, in time linear in the body.

jsonschema walks the schemas; the keywords that look at strings, lists and objects are replaced
here so that (1) a length limit is checked before anything else and a pattern never runs on a
string already too long, (2) no message repeats the offending value (jsonschema's own put a
16 MB string's repr into the answer), and (3) every message names the limit it enforces.
Why not a faster validator (jsonschema-rs): the messages and the field names people see are
the point of a 422, and they come from here.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from . import openapi
from .limits import refusal

SPEC_URI = "urn:artifacts:openapi"
# Enough to fix a body in one go; a body with a million faults is not worth listing.
MAX_REPORTED_FAULTS = 20
TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "object": "an object",
              "array": "a list", "boolean": "true or false", "null": "null"}


def _too_long(schema: Mapping[str, Any], size: int, keyword: str, unit: str) -> str | None:
    limit = schema[keyword]
    if size <= limit:
        return None
    if "x-limit" in schema:
        return refusal(schema["x-limit"], limit)
    return f"must be at most {limit:,} {unit}"


def _max_length(validator: Validator, limit: int, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if isinstance(instance, str) and (message := _too_long(schema, len(instance), "maxLength", "characters")):
        yield ValidationError(message)


def _max_items(validator: Validator, limit: int, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if isinstance(instance, list) and (message := _too_long(schema, len(instance), "maxItems", "items")):
        yield ValidationError(message)


def _max_properties(validator: Validator, limit: int, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if isinstance(instance, dict) and (message := _too_long(schema, len(instance), "maxProperties", "entries")):
        yield ValidationError(message)


def _min_length(validator: Validator, limit: int, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if isinstance(instance, str) and len(instance) < limit:
        yield ValidationError("must not be empty" if limit == 1 else f"must be at least {limit} characters")


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _pattern(validator: Validator, pattern: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if not isinstance(instance, str):
        return
    if "maxLength" in schema and len(instance) > schema["maxLength"]:
        return  # already refused for its length; the pattern is not worth running
    if not _compiled(pattern).search(instance):
        yield ValidationError(openapi.PATTERN_MESSAGES.get(pattern, "is not in the expected form"))


def _type(validator: Validator, types: str | list[str], instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    wanted = [types] if isinstance(types, str) else types
    if not any(validator.is_type(instance, kind) for kind in wanted):
        yield ValidationError("must be " + " or ".join(TYPE_WORDS.get(kind, kind) for kind in wanted))


def _enum(validator: Validator, choices: list[Any], instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if instance not in choices or isinstance(instance, bool):
        yield ValidationError("must be one of " + ", ".join(str(choice) for choice in choices))


def _minimum(validator: Validator, limit: int, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "number") and instance < limit:
        yield ValidationError(f"must be at least {limit}")


def _maximum(validator: Validator, limit: int, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "number") and instance > limit:
        yield ValidationError(f"must be at most {limit}")


def _additional_properties(validator: Validator, allowed: Any, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if not isinstance(instance, dict):
        return
    known = schema.get("properties", {})
    if allowed is False:
        for key in instance:
            if key not in known:
                yield ValidationError("is not a field of this body", path=[key[:100]])
        return
    for key, item in instance.items():
        if key not in known:
            yield from validator.descend(item, allowed, path=key)


def _any_of(validator: Validator, options: list[Any], instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    faults = []
    for option in options:
        found = list(itertools.islice(validator.descend(instance, option), 1))
        if not found:
            return
        faults.append(found[0])
    # A value too long (or unstorable) as text says so; otherwise it is simply the wrong kind.
    for fault in faults:
        if fault.validator in ("maxLength", "pattern"):
            yield ValidationError(fault.message)
            return
    yield ValidationError("must be a string, a number, true, false or null")


def _not(validator: Validator, forbidden: Any, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if not any(True for _ in validator.descend(instance, forbidden)):
        yield ValidationError(
            "is not allowed with this status (outputs and usage come with completed or failed; error only with failed)"
        )


def _property_names(validator: Validator, names: Any, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if not isinstance(instance, dict):
        return
    for key in instance:
        for fault in validator.descend(key, names):
            yield ValidationError(f"names {fault.message}")
            return  # one bad name is enough to say what names must be


BodyValidator = validators.extend(Draft202012Validator, {
    "maxLength": _max_length, "maxItems": _max_items, "maxProperties": _max_properties,
    "minLength": _min_length, "pattern": _pattern, "type": _type, "enum": _enum,
    "minimum": _minimum, "maximum": _maximum, "additionalProperties": _additional_properties,
    "anyOf": _any_of, "not": _not, "propertyNames": _property_names,
})


def field_name(path: list[Any]) -> str:
    """A JSON path as people write it: steps[2].stepOrder."""
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def fault_field(error: ValidationError) -> str:
    """The field at fault; a missing required property is named itself, not its parent."""
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing:
            path.append(next((name for name in missing if repr(name) in error.message), missing[0]))
    return field_name(path)


def fault_message(error: ValidationError) -> str:
    return "is required" if error.validator == "required" else error.message


class BodyChecker:
    """Checks bodies against one OpenAPI document's component schemas."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        # OpenAPI 3.1 schemas are JSON Schema 2020-12, so the document itself is the registry.
        self.registry: Registry[Any] = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(document))

    def faults(self, schema: str, body: Any) -> list[dict[str, str]]:
        """The body's faults, as {field, message}, in field order; [] when it is valid."""
        validator = BodyValidator({"$ref": f"{SPEC_URI}#/components/schemas/{schema}"}, registry=self.registry)
        errors = list(itertools.islice(validator.iter_errors(body), MAX_REPORTED_FAULTS))
        errors.sort(key=lambda e: [str(part) for part in e.absolute_path])
        return [{"field": fault_field(error), "message": fault_message(error)} for error in errors]
