"""Plain factory functions for test data; everything goes through the app's own writers."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic.alias_generators import to_camel

from artifacts_app import accounts, recording, schemas
from artifacts_app.extensions import db
from artifacts_app.models import PipelineRun, User

PASSWORD = "correct horse battery"
_sequence = itertools.count(1)


def start_run(user: User, **fields: Any) -> PipelineRun:
    """A running run, started like an executor would (fields in the API's terms, snake_case)."""
    return recording.start_run(user, schemas.parse(schemas.RunStart, {to_camel(k): v for k, v in fields.items()}))


def make_user(email: str | None = None, password: str = PASSWORD) -> User:
    """A committed user."""
    user = accounts.create_user(email or f"user{next(_sequence)}@example.com", password)
    db.session.commit()
    return user


def three_steps() -> list[dict[str, Any]]:
    """The seed's artifact shape: three agents' outputs in order."""
    return [
        {"agentId": "researcher", "agentName": "Researcher", "output": "# Notes\n\n- one", "stepOrder": 0},
        {"agentId": "analyst", "agentName": "Analyst", "output": "| a | b |\n|---|---|\n| 1 | 2 |", "stepOrder": 1},
        {"agentId": "writer", "agentName": "Writer", "output": "Final **draft**", "stepOrder": 2},
    ]


def make_run(user: User, **fields: Any) -> PipelineRun:
    """A committed, completed run (fields override the defaults)."""
    completed_at = fields.pop("completed_at", datetime(2025, 11, 1, 12, 0, tzinfo=timezone.utc))
    values: dict[str, Any] = {
        "pipeline": "Research brief",
        "input": "Summarise solid-state batteries",
        "variables": {"audience": "engineers"},
        "model": "gpt-4o",
        "steps": three_steps(),
        "final_output": "Final **draft**",
        "usage": {"inputTokens": 1234, "outputTokens": 567},
        "created_at": completed_at - timedelta(seconds=42),
        "completed_at": completed_at,
    }
    values.update(fields)
    run = recording.record_from_values(user, **values)
    db.session.commit()
    return run
