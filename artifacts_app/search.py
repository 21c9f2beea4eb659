"""Full-text search over runs (PostgreSQL tsvector, SQLite FTS5).

A search (`q=`, websearch syntax: words, "quoted phrases", -word, `or`) looks at a run's name,
input, final output and every step's output, the first PART_CHARS characters of each. The writer
keeps the index in the transaction that changes the run:

- PostgreSQL: pipeline_runs.search_vector (GIN), computed in SQL by run_search_append (migration
  0006), matched with websearch_to_tsquery('english', q); the relevance is ts_rank. A step posted
  to an open run gets a vector of its own in run_search_pending (migration 0008), so posting the
  100th step costs what the first did; an open run is searched as its vector followed by those,
  and its vector is computed whole when it closes.
- SQLite: one run_search_parts row per part, indexed by the FTS5 table run_search (porter
  unicode61); the query is parsed here into terms, each matched as one quoted FTS5 string, and
  combined per run with INTERSECT / EXCEPT / UNION, as PostgreSQL matches one vector per run;
  the relevance is bm25. A deleted run's rows go with it (foreign key cascade, a trigger).

No text leaves the database for indexing; snippets bring back only their excerpts.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import (
    Numeric,
    Select,
    String,
    any_,
    bindparam,
    case,
    except_,
    false,
    func,
    intersect,
    literal,
    literal_column,
    select,
    table,
    text,
    union,
    union_all,
)
from sqlalchemy import column as sql_column
from sqlalchemy.dialects.postgresql import ARRAY

from .extensions import db
from .models import PipelineRun, User
from .statuses import OPEN_STATUSES

PART_CHARS = 100_000  # of each part indexed and searched for a snippet; an output may hold 32 MB
INPUT_POSITION = 1_000_000_000  # parts in snippet order: 0 name, 1 final output, 2 + i step i, input
SNIPPET_WORDS = 16
FEW_MATCHES = 2000  # a PostgreSQL search with at most this many matches lists them by id
MAX_TERMS = 100  # of a query's terms, on SQLite (each is a subquery); q= is at most 500 characters
RELEVANCE = Numeric(20, 6)  # rounded, so the keyset cursor binds back exactly the value sorted by

# The objects migration 0006 makes, which are not models: autogenerate must leave them alone.
SEARCH_TABLES = frozenset({"run_search", "run_search_parts", "run_search_pending"})
SEARCH_COLUMN = "search_vector"
SEARCH_INDEX = "ix_pipeline_runs_search_vector"


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic hook: skip the search objects when comparing the database with the models."""
    if type_ == "table":
        return name not in SEARCH_TABLES and not (name or "").startswith("run_search_")
    if type_ == "column":
        return not (name == SEARCH_COLUMN and parent_names.get("table_name") == "pipeline_runs")
    if type_ == "index":
        return name != SEARCH_INDEX
    return True


@dataclass(frozen=True)
class Snippet:
    """Where a search matched one run: the part ("Step 2 · Reviewer", "Input", "Final output",
    "Name") and a short excerpt, escaped, with the matched words in <mark>."""

    part: str
    html: Markup


def postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


# --- the query ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """A word or a quoted phrase of the query, as typed; `negated` when it had a leading -."""

    words: str
    negated: bool

    def fts(self) -> str:
        """The term as one FTS5 string: quoted, so nothing typed is FTS5 syntax (AND, NEAR(, *, col:)."""
        return '"' + self.words.replace('"', '""') + '"'


# An optional -, then a "quoted phrase" (its closing quote optional) or a word.
TOKEN = re.compile(r'(-?)(?:"([^"]*)"?|([^\s"]+))')


def parse(query: str) -> list[list[Term]]:
    """The query as OR-groups of AND-ed terms, by websearch_to_tsquery's grammar.

    Parsed here because no maintained Python library translates websearch syntax to FTS5. A term
    with no letter or digit (punctuation) is dropped, like PostgreSQL's parser drops it; a group
    left empty is dropped; no groups at all matches nothing.
    """
    groups: list[list[Term]] = [[]]
    for match in TOKEN.finditer(query):
        dash, phrase, word = match.groups()
        if phrase is None and not dash and word.lower() == "or":
            groups.append([])
            continue
        words = phrase if phrase is not None else word
        term = Term(words, bool(dash))
        if any(char.isalnum() for char in words) and term not in groups[-1]:
            groups[-1].append(term)
    groups = [group for group in groups if group]
    # Bounded work: the terms past MAX_TERMS are ignored.
    kept, budget = [], MAX_TERMS
    for group in groups:
        if budget <= 0:
            break
        kept.append(group[:budget])
        budget -= len(group)
    return kept


def positive_terms(groups: list[list[Term]]) -> list[Term]:
    """The terms a matching run contains (what a snippet highlights and relevance ranks)."""
    return list(dict.fromkeys(term for group in groups for term in group if not term.negated))


def any_of(terms: list[Term]) -> str:
    """The terms as one websearch query that matches a text holding any of them."""
    return " or ".join('"' + term.words.replace('"', " ") + '"' for term in terms)


# --- SQLite: run_search_parts and its FTS5 index run_search ----------------------------------

PARTS = table(
    "run_search_parts", *(sql_column(name) for name in ("id", "run_id", "user_id", "position", "agent", "body"))
)
FTS = table("run_search", sql_column("rowid"), sql_column("body"), sql_column("rank"))  # rank: bm25()


def matching_parts(fts_query: str) -> Select[Any]:
    """run_search_parts rows whose body matches an FTS5 query (built here, never typed by a user)."""
    return (
        select(PARTS.c.run_id)
        .select_from(FTS.join(PARTS, PARTS.c.id == FTS.c.rowid))
        .where(FTS.c.body.match(fts_query))
    )


def sqlite_matches(user: User, groups: list[list[Term]]) -> Any:
    """Run ids matching the groups: within a group every positive term (anywhere in the run) and
    no negated one; any group."""
    def runs_with(term: Term) -> Select[Any]:
        return matching_parts(term.fts()).where(PARTS.c.user_id == user.id)

    selects = []
    for group in groups:
        positives = [runs_with(term) for term in group if not term.negated]
        negatives = [runs_with(term) for term in group if term.negated]
        if not positives:
            # Only negated terms: every run of the user's without them.
            own = PipelineRun.__table__.alias("own_runs")
            runs: Any = select(own.c.id.label("run_id")).where(own.c.user_id == user.id)
        else:
            runs = intersect(*positives) if len(positives) > 1 else positives[0]
        if negatives:
            # SQLite cannot nest compound selects in parentheses; a subquery can.
            runs = except_(select(runs.subquery().c.run_id), *negatives)
        selects.append(select(runs.subquery().c.run_id))
    return union(*selects) if len(selects) > 1 else selects[0]


SQLITE_PART_ROWS = f"""
    SELECT id AS run_id, user_id, 0 AS position, NULL AS agent, substr(name, 1, {PART_CHARS}) AS body
    FROM pipeline_runs WHERE id = :id
    UNION ALL
    SELECT id, user_id, 1, NULL,
           substr(coalesce(nullif(json_extract(artifact_data, '$.finalOutput'), ''), final_output), 1, {PART_CHARS})
    FROM pipeline_runs WHERE id = :id
    UNION ALL
    SELECT r.id, r.user_id, 2 + s.step_order, s.agent_name, substr(s.output, 1, {PART_CHARS})
    FROM pipeline_runs AS r JOIN pipeline_run_steps AS s ON s.run_id = r.id WHERE r.id = :id
    UNION ALL
    SELECT id, user_id, {INPUT_POSITION}, NULL, substr(input, 1, {PART_CHARS}) FROM pipeline_runs WHERE id = :id
"""
# Empty parts are not stored; the trigger on run_search_parts indexes each row in run_search.
SQLITE_INSERT = (
    "INSERT INTO run_search_parts (run_id, user_id, position, agent, body) SELECT * FROM ({}) WHERE body <> ''"
)
SQLITE_STEP_ROW = f"""
    SELECT r.id AS run_id, r.user_id, 2 + s.step_order AS position, s.agent_name AS agent,
           substr(s.output, 1, {PART_CHARS}) AS body
    FROM pipeline_runs AS r JOIN pipeline_run_steps AS s ON s.run_id = r.id
    WHERE r.id = :id AND s.step_order = :index
"""

# --- PostgreSQL: pipeline_runs.search_vector ----------------------------------------------------

VECTOR: Any = literal_column(f"pipeline_runs.{SEARCH_COLUMN}")
OPEN: Any = PipelineRun.status.in_([status.value for status in OPEN_STATUSES])
# What a search matches a run against: its vector, then (while it is open) each posted step's, in
# order, as the vector it closes with would hold them.
RUN_VECTOR: Any = case(
    (OPEN, literal_column(f"""(
        SELECT run_search_agg(part ORDER BY position) FROM (
            SELECT -1 AS position, pipeline_runs.{SEARCH_COLUMN} AS part
            UNION ALL
            SELECT step_order, vector FROM run_search_pending WHERE run_id = pipeline_runs.id
        ) AS parts
    )""")),
    else_=VECTOR,
)
ENGLISH: Any = literal_column("'english'::regconfig")
POSTGRES_INDEX_RUN = f"""
    UPDATE pipeline_runs SET search_vector = run_search_append(''::tsvector, ARRAY[
        name, input, coalesce(nullif(artifact_data->>'finalOutput', ''), final_output)
    ] || ARRAY(
        SELECT left(output, {PART_CHARS}) FROM pipeline_run_steps WHERE run_id = :id ORDER BY step_order
    ))
    WHERE id = :id
"""
POSTGRES_CLEAR_PENDING = "DELETE FROM run_search_pending WHERE run_id = :id"
POSTGRES_INDEX_STEP = """
    INSERT INTO run_search_pending (run_id, step_order, vector)
    SELECT run_id, step_order, run_search_append(''::tsvector, ARRAY[output])
    FROM pipeline_run_steps WHERE run_id = :id AND step_order = :index
"""
# Each run's parts in snippet order, the first that matches: at most PART_CHARS of each part are
# parsed, and only the chosen one is headlined.
POSTGRES_SNIPPETS = f"""
    SELECT r.id, part.position, part.agent, ts_headline('english', part.body, q.query, :options)
    FROM pipeline_runs AS r
    CROSS JOIN (SELECT websearch_to_tsquery('english', :terms) AS query) AS q
    CROSS JOIN LATERAL (
        SELECT position, agent, body FROM (
            SELECT 0 AS position, NULL AS agent, left(r.name, {PART_CHARS}) AS body
            UNION ALL
            SELECT 1, NULL, left(coalesce(nullif(r.artifact_data->>'finalOutput', ''), r.final_output), {PART_CHARS})
            UNION ALL
            SELECT 2 + s.step_order, s.agent_name, left(s.output, {PART_CHARS})
            FROM pipeline_run_steps AS s WHERE s.run_id = r.id
            UNION ALL
            SELECT {INPUT_POSITION}, NULL, left(r.input, {PART_CHARS})
        ) AS parts
        WHERE body <> '' AND to_tsvector('english', body) @@ q.query
        ORDER BY position LIMIT 1
    ) AS part
    WHERE r.id IN :ids AND r.user_id = :user_id
"""
SQLITE_SNIPPETS = f"""
    SELECT p.run_id, p.position, p.agent, snippet(run_search, 0, :start, :stop, '…', {SNIPPET_WORDS})
    FROM run_search JOIN run_search_parts AS p ON p.id = run_search.rowid
    WHERE run_search MATCH :terms AND p.run_id IN :ids AND p.user_id = :user_id
    ORDER BY p.run_id, p.position
"""


# --- the interface ---------------------------------------------------------------------------


def index_run(run: PipelineRun) -> None:
    """(Re)index the whole run: its name, input, final output and every step's output."""
    if postgres():
        db.session.execute(text(POSTGRES_INDEX_RUN), {"id": run.id})
        db.session.execute(text(POSTGRES_CLEAR_PENDING), {"id": run.id})
        return
    db.session.execute(text("DELETE FROM run_search_parts WHERE run_id = :id"), {"id": run.id})
    db.session.execute(
        text(SQLITE_INSERT.format(SQLITE_PART_ROWS)), {"id": run.id}
    )


# A new run's vector, computed inside the INSERT that writes it (PostgreSQL, recording's new-runs
# statement), from its parts sent along with the run: no second version of the row.
def vector_sql(parts: str) -> str:
    """The SQL for a vector of these parts (a text[] expression), as POSTGRES_INDEX_RUN computes it."""
    return f"run_search_append(''::tsvector, {parts})"


def index_new_runs(run_ids: list[str]) -> None:
    """Index runs just written with their steps (SQLite: their parts rows; on PostgreSQL the INSERT
    computed the vector)."""
    ids: Any = bindparam("ids", run_ids, expanding=True)
    db.session.execute(
        text(SQLITE_INSERT.format(SQLITE_PART_ROWS.replace("= :id", "IN :ids"))).bindparams(ids)
    )


def index_step(run: PipelineRun, step_order: int) -> None:
    """Index one step just added to a running run (on PostgreSQL on its own, not rewriting the run's vector)."""
    values = {"id": run.id, "index": step_order}
    if postgres():
        db.session.execute(text(POSTGRES_INDEX_STEP), values)
        return
    db.session.execute(text(SQLITE_INSERT.format(SQLITE_STEP_ROW)), values)


def matches(user: User, query: str) -> Any:
    """A condition on pipeline_runs: the run matches the search `query` (websearch syntax)."""
    groups = parse(query)
    if not groups:
        return false()
    if postgres():
        return postgres_matches(user, query)
    return PipelineRun.id.in_(sqlite_matches(user, groups))


def postgres_matches(user: User, query: str) -> Any:
    """The search as a condition the planner cannot get badly wrong.

    PostgreSQL keeps frequencies only for the commonest words of a tsvector column and guesses that
    any other word is in about 0.5% of runs. For a rare word it then walks the list's index testing
    every run (1 s at 100,000 runs, bench/find_runs.py) instead of asking the GIN index. So the
    matches are fetched first, at most FEW_MATCHES + 1 of them (this query the planner does get
    right: the GIN index for a rare word, a scan stopping early for a common one): when they are
    few, the list is those ids; when many, walking the list's index finds a page at once.
    """
    found = list(db.session.execute(first_matches(user, query)).scalars())
    if len(found) > FEW_MATCHES:
        return postgres_condition(user, query)
    return PipelineRun.id == any_(literal(found, ARRAY(String())))


def tsquery(query: str) -> Any:
    return func.websearch_to_tsquery(ENGLISH, query)


def postgres_condition(user: User, query: str) -> Any:
    return (PipelineRun.user_id == user.id) & RUN_VECTOR.op("@@")(tsquery(query))


def first_matches(user: User, query: str) -> Any:
    """The ids of up to FEW_MATCHES + 1 of the user's runs that match, in no order (PostgreSQL):
    closed runs through the GIN index on their vector, open ones (few) with their pending steps."""
    mine = PipelineRun.user_id == user.id
    closed = select(PipelineRun.id).where(mine, ~OPEN, VECTOR.op("@@")(tsquery(query)))
    still_open = select(PipelineRun.id).where(mine, OPEN, RUN_VECTOR.op("@@")(tsquery(query)))
    return union_all(closed, still_open).limit(FEW_MATCHES + 1)


def relevance(query: str) -> Any:
    """A sort key over pipeline_runs: how well the run matches (larger first), an exact Decimal.

    ts_rank depends on the run alone; SQLite's bm25 also on how common the words are among all
    indexed parts, so there a run's score can move a little as other runs are written.
    """
    terms = positive_terms(parse(query))
    if not terms:
        return literal(0, RELEVANCE)
    if postgres():
        rank = func.ts_rank(RUN_VECTOR, tsquery(query))
        return func.round(rank.cast(Numeric), 6, type_=RELEVANCE)
    # bm25 (FTS5's rank; smaller is better) summed over the run's matching parts. Scored once per
    # statement (the subquery does not depend on the row), then looked up per run.
    scores = (
        matching_parts(" OR ".join(term.fts() for term in terms))
        .add_columns(func.round(-func.sum(FTS.c.rank), 6).label("score"))
        .group_by(PARTS.c.run_id)
        .subquery("scores")
    )
    score = select(scores.c.score).where(scores.c.run_id == PipelineRun.id).scalar_subquery()
    return func.coalesce(score, 0, type_=RELEVANCE)


def snippets(user: User, query: str, run_ids: list[str]) -> dict[str, Snippet]:
    """For each of these runs (a page of results), where the search matched it.

    The part shown is the first that holds a searched word, in the order name, final output, steps
    in order, input: the most telling first, the input (often long and shared by many runs) last.
    A run found only by what it lacks (-word) has none.
    """
    terms = positive_terms(parse(query))
    if not terms or not run_ids:
        return {}
    # Markers no output can guess, placed by the database and made <mark> only after escaping, so
    # nothing from a run's text is ever taken as HTML.
    token = secrets.token_hex(8)
    start, stop = f"searchmarkstart{token}", f"searchmarkstop{token}"
    values = {"ids": list(dict.fromkeys(run_ids)), "user_id": user.id}
    if postgres():
        options = f"StartSel={start}, StopSel={stop}, MaxWords={SNIPPET_WORDS}, MinWords=8, MaxFragments=1"
        statement = text(POSTGRES_SNIPPETS).bindparams(bindparam("ids", expanding=True))
        values |= {"terms": any_of(terms), "options": options}
    else:
        statement = text(SQLITE_SNIPPETS).bindparams(bindparam("ids", expanding=True))
        values |= {"terms": " OR ".join(term.fts() for term in terms), "start": start, "stop": stop}
    found: dict[str, Snippet] = {}
    for run_id, position, agent, excerpt in db.session.execute(statement, values):
        if run_id not in found:  # rows come in snippet order
            html = str(escape(excerpt)).replace(start, "<mark>").replace(stop, "</mark>")
            found[run_id] = Snippet(part=part_label(position, agent), html=Markup(html))
    return found


def part_label(position: int, agent: str | None) -> str:
    if position == 0:
        return "Name"
    if position == 1:
        return "Final output"
    if position == INPUT_POSITION:
        return "Input"
    return f"Step {position - 1} · {agent}" if agent else f"Step {position - 1}"

