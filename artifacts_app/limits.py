"""Every size limit on what a run may hold: named, configurable, and stated the same way wherever
it is enforced (the API's schemas, the writer, the import)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask import current_app


@dataclass(frozen=True)
class LimitSpec:
    default: int
    unit: str
    applies_to: str


# The setting names are also the environment variables that change them (config.py).
LIMITS: dict[str, LimitSpec] = {
    "MAX_NAME_LENGTH": LimitSpec(200, "characters", "a pipeline, model, agent or variable name"),
    "MAX_OUTPUT_CHARS": LimitSpec(32 * 1024 * 1024, "characters", "the input, one output, or the error of a run"),
    "MAX_STEPS": LimitSpec(1000, "steps", "the steps of one run"),
    "MAX_VARIABLES": LimitSpec(100, "variables", "the variables of one run"),
    "MAX_VARIABLE_CHARS": LimitSpec(64 * 1024, "characters", "one variable's value"),
    "MAX_TAGS": LimitSpec(20, "tags", "the tags of one run"),
    "MAX_LABEL_LENGTH": LimitSpec(64, "characters", "a tag or a metadata key"),
    "MAX_METADATA": LimitSpec(50, "entries", "the metadata of one run"),
    "MAX_METADATA_CHARS": LimitSpec(1000, "characters", "one metadata value"),
}
DECIMAL_STRING_LENGTH = 64  # a cost as text; no limit setting, no real amount comes near it


def defaults() -> dict[str, int]:
    return {name: spec.default for name, spec in LIMITS.items()}


def value(name: str, config: Mapping[str, object] | None = None) -> int:
    """The limit in force: from the given config, else the current app's."""
    source = current_app.config if config is None else config
    configured = source.get(name)
    return configured if isinstance(configured, int) else LIMITS[name].default


def refusal(name: str, limit: int) -> str:
    """What a 413 or 422 says when a limit is passed: the limit, its value, its setting."""
    return f"must be at most {limit:,} {LIMITS[name].unit} ({name} = {limit})"
