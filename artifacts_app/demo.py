"""Demo data: a demo user and about 200 varied runs, the same every time (seeded randomness)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .statuses import RunStatus

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"
DEMO_RUN_COUNT = 200


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    agents: tuple[tuple[str, str], ...]  # (agentId, agentName)
    prompts: tuple[str, ...]


PIPELINES = (
    PipelineSpec(
        "Research brief",
        (("researcher", "Researcher"), ("analyst", "Analyst"), ("writer", "Writer")),
        ("Summarise the state of solid-state batteries",
         "What changed in PostgreSQL 17 for JSON?",
         "Compare vector databases for a 10M document corpus"),
    ),
    PipelineSpec(
        "Code review",
        (("reader", "Diff reader"), ("reviewer", "Reviewer"), ("security", "Security auditor"),
         ("summarizer", "Summarizer")),
        ("Review PR #482: add keyset pagination",
         "Review PR #491: migrate to psycopg 3",
         "Review PR #503: rate-limit the login form"),
    ),
    PipelineSpec(
        "Support triage",
        (("classifier", "Classifier"), ("responder", "Responder")),
        ("Customer cannot export CSV over 10k rows",
         "Login loop after password reset",
         "Invoice shows the wrong currency"),
    ),
    PipelineSpec(
        "Release notes",
        (("collector", "Changelog collector"), ("editor", "Editor")),
        ("Draft notes for v2.4.0", "Draft notes for v2.5.0"),
    ),
    PipelineSpec(
        "Data extraction",
        (("extractor", "Extractor"), ("validator", "Validator"), ("formatter", "Formatter")),
        ("Extract line items from the attached invoices",
         "Pull the dates and parties out of these contracts"),
    ),
)

# A mix of priced families under the names providers really return, and one local model
# that has no price, so the demo shows "unpriced" honestly.
MODELS = (
    "gpt-4o-2024-08-06",
    "gpt-4o-mini",
    "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5",
    "gemini-2.5-flash",
    "mistral-large-latest",
    "llama-3.1-70b-local",
)

CODE_SAMPLES = {
    "python": 'def paginate(rows, cursor=None, limit=25):\n    """Keyset pagination."""\n'
              '    start = 0 if cursor is None else cursor + 1\n    return rows[start:start + limit]\n',
    "sql": "SELECT id, completed_at\nFROM pipeline_runs\nWHERE user_id = $1 AND status = 'completed'\n"
           "ORDER BY completed_at DESC, id DESC\nLIMIT 25;\n",
    "typescript": "export function formatCost(cost: number | null): string {\n"
                  "  if (cost === null) return '—';\n  return `$${cost.toFixed(2)}`;\n}\n",
    "bash": "set -euo pipefail\npg_ctlcluster 15 main start\nmake test\n",
    "json": '{\n  "pipeline": "Research brief",\n  "status": "completed",\n'
            '  "usage": {"inputTokens": 1200, "outputTokens": 340}\n}\n',
}


def markdown_output(rng: random.Random, agent: str, topic: str, *, long: bool = False) -> str:
    """A markdown step output with headings, lists, a table and fenced code."""
    language = rng.choice(sorted(CODE_SAMPLES))
    parts = [
        f"# {agent}: {topic}\n",
        "## Findings\n",
        "\n".join(f"- Point {i + 1}: {rng.choice(['latency', 'cost', 'accuracy', 'coverage'])} "
                  f"improves by **{rng.randint(3, 40)}%**" for i in range(rng.randint(2, 5))),
        "\n\n## Comparison\n",
        "| Option | Cost | Notes |\n|---|---:|---|\n"
        + "\n".join(f"| Option {c} | ${rng.randint(1, 90)}.{rng.randint(0, 99):02d} | `{language}` ready |"
                    for c in "ABC"),
        f"\n\n## Example\n\n```{language}\n{CODE_SAMPLES[language]}```\n",
        "\n> Verify these numbers against the source before publishing.\n",
    ]
    text = "\n".join(parts)
    if long:
        # Long enough to pass the 64 KB render limit, as real research dumps do.
        paragraph = ("This section repeats the evidence gathered for the report, source by source, "
                     "with quotations and the reasoning that connects them. ") * 8
        text += "\n".join(f"\n### Source {i + 1}\n\n{paragraph}" for i in range(120))
    return text


@dataclass
class DemoRun:
    """One run's fields in the recording API's terms."""

    pipeline: str
    input: str
    status: str
    model: str
    variables: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    final_output: str = ""
    usage: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    legacy: bool = False
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)


TAGS = ("nightly", "eval", "prod", "regression", "customer")
# The newest few runs are still running (started minutes ago, some steps in), so the list shows
# live rows; they stay running, as a crashed executor's would.
RUNNING_RUNS = 3
LONG_RUN = 13  # the run with 40 steps


def timed(rng: random.Random, run: DemoRun, end: datetime) -> None:
    """Give the run's steps start and end times that share its duration unevenly, one after another."""
    assert run.created_at is not None
    weights = [rng.uniform(0.2, 3.0) for _ in run.steps]
    total = (end - run.created_at) * 0.95
    moment = run.created_at
    for step, weight in zip(run.steps, weights, strict=True):
        took = total * (weight / sum(weights))
        step["startedAt"], step["completedAt"] = moment.isoformat(), (moment + took).isoformat()
        moment += took


def demo_runs(now: datetime | None = None, count: int = DEMO_RUN_COUNT) -> Iterator[DemoRun]:
    """`count` runs over the last 90 days: completed, failed, mixed-model, long, legacy and running
    ones, with tags and metadata on most."""
    rng = random.Random(20260129)
    now = now or datetime.now(timezone.utc)
    for index in range(count):
        spec = rng.choice(PIPELINES)
        topic = rng.choice(spec.prompts)
        model = rng.choice(MODELS)
        completed_at = now - timedelta(minutes=rng.randint(1, 90 * 24 * 60), microseconds=rng.randint(0, 999_999))
        created_at = completed_at - timedelta(seconds=rng.randint(4, 600))
        variables = {"audience": rng.choice(["engineers", "executives", "customers"]),
                     "tone": rng.choice(["concise", "detailed"])}
        run = DemoRun(pipeline=spec.name, input=topic, status=RunStatus.COMPLETED.value, model=model,
                      variables=variables, created_at=created_at, completed_at=completed_at,
                      tags=sorted(rng.sample(TAGS, rng.choice((0, 1, 1, 2)))),
                      metadata={"env": rng.choice(["prod", "staging"]), "git.sha": f"{rng.getrandbits(28):07x}"})
        if index < RUNNING_RUNS:
            run.status = RunStatus.RUNNING.value
            run.created_at = now - timedelta(minutes=2 + 3 * index)
            run.completed_at = None
        if index % 40 == 7:
            run.legacy = True
            run.final_output = markdown_output(rng, "Legacy output", topic)
            yield run
            continue
        mixed_models = index % 5 == 3  # every step reports its own model and usage
        long_step = rng.randrange(len(spec.agents)) if index % 25 == 11 else None
        failed_at = rng.randrange(1, len(spec.agents)) if index % 12 == 5 else None
        # A running run has done its first steps; a failed one stopped at the failing step.
        stops_at = len(spec.agents) - 1 if index < RUNNING_RUNS else failed_at
        agents = spec.agents
        if index == LONG_RUN:
            run.pipeline, run.input = "Agent swarm", "Port the billing service to the new ledger API"
            agents = tuple((f"{role.lower()}-{n}", f"{role} {n}") for n in range(1, 11)
                           for role in ("Planner", "Coder", "Tester", "Reviewer"))
        for order, (agent_id, agent_name) in enumerate(agents):
            if stops_at is not None and order == stops_at:
                if failed_at is not None and index >= RUNNING_RUNS:
                    # The step that failed is recorded too, with what it managed before it broke.
                    run.steps.append({"agentId": agent_id, "agentName": agent_name, "stepOrder": order,
                                      "status": "failed", "output": ""})
                break
            step: dict[str, Any] = {
                "agentId": agent_id,
                "agentName": agent_name,
                "stepOrder": order,
                "output": markdown_output(rng, agent_name, topic, long=order == long_step),
            }
            if mixed_models:
                step["model"] = rng.choice(MODELS[:-1])
                step["inputTokens"] = rng.randint(200, 20_000)
                step["outputTokens"] = rng.randint(50, 4_000)
            run.steps.append(step)
        timed(rng, run, run.completed_at or now)
        if index < RUNNING_RUNS:
            yield run
            continue
        if failed_at is not None:
            run.status = RunStatus.FAILED.value
            run.error = rng.choice([
                "RateLimitError: 429 Too Many Requests from provider after 3 retries",
                "Timeout: step exceeded 120 s",
                "ContextLengthExceeded: prompt is 212,480 tokens; the model accepts 200,000",
            ])
        else:
            run.final_output = run.steps[-1]["output"] if run.steps else ""
        if not mixed_models:
            run.usage = {"inputTokens": rng.randint(300, 60_000), "outputTokens": rng.randint(80, 8_000)}
        yield run
