"""Full-text search over runs (PostgreSQL tsvector, SQLite FTS5).

BEING WRITTEN (issue 12): the interface the writer, the reader and the list use is fixed here;
the bodies are not yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from .models import ArtifactStep, PipelineRun, User


@dataclass(frozen=True)
class Snippet:
    """Where a search matched one run: the part ("Step 2 · Reviewer", "Input", "Final output",
    "Name") and a short excerpt, escaped, with the matched words in <mark>."""

    part: str
    html: Markup


def index_run(run: PipelineRun) -> None:
    """(Re)index the whole run: its name, input, final output and every step's output."""


def index_step(run: PipelineRun, step: ArtifactStep) -> None:
    """Index one step just added to a running run."""


def matches(user: User, query: str) -> Any:
    """A condition on pipeline_runs: the run matches the search `query` (websearch syntax)."""
    raise NotImplementedError


def relevance(query: str) -> Any:
    """A sort key over pipeline_runs: how well the run matches (larger first), an exact Decimal."""
    raise NotImplementedError


def snippets(user: User, query: str, run_ids: list[str]) -> dict[str, Snippet]:
    """For each of these runs (a page of results), where the search matched it."""
    return {}
