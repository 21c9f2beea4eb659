"""The summaries the list reads instead of scanning every run: facets (the pipelines, models and tags
in use, for the filter menus) and rollups (runs, tokens and cost per pipeline, model, status and day,
for the totals).

The writer calls `count` in the same transaction as every change to a run (created, closed,
imported, deleted), so a summary is never stale; on PostgreSQL a new run is counted by the very
statement that writes it, in SQL (`rollup_rows_sql`, `facet_rows_sql`: the SQL `rebuild` recounts
with). Each change is an upsert of a delta, which is atomic under concurrent writers; the rows are
touched in key order so two writers cannot deadlock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, or_, text
from sqlalchemy.dialects import postgresql, sqlite

from .extensions import db
from .filters import FINISHED
from .models import PipelineRun, RunFacet, RunRollup


@dataclass(frozen=True)
class Share:
    """What one run adds to the summaries in its current state."""

    user_id: str
    pipeline_id: str
    model: str
    status: str
    day: date
    input_tokens: int
    output_tokens: int
    cost: Decimal | None
    facets: tuple[tuple[str, str], ...]  # (kind, value) the run counts towards

    @property
    def unpriced(self) -> bool:
        return self.cost is None and self.status in FINISHED


# What share_of reads: a writer that loads only these (load_only) leaves the run's input and outputs
# in the database.
SHARE_COLUMNS = (
    PipelineRun.user_id, PipelineRun.pipeline_id, PipelineRun.model, PipelineRun.status, PipelineRun.listed_at,
    PipelineRun.input_tokens, PipelineRun.output_tokens, PipelineRun.cost, PipelineRun.tags,
)


def share_of(run: PipelineRun, pipeline_name: str | None = None) -> Share:
    """The run's share as it stands; `pipeline_name` counts it towards that pipeline's facet too
    (given when a run is created or deleted, not when it only changes state)."""
    return share_from({column.key: getattr(run, column.key) for column in SHARE_COLUMNS}, pipeline_name)


def share_from(row: Mapping[str, Any], pipeline_name: str | None = None) -> Share:
    """share_of for a run's row as plain values by attribute name (a run not loaded as an object)."""
    facets = [("model", row["model"])] if row["model"] else []
    facets += [("tag", tag) for tag in row["tags"] or ()]
    if pipeline_name is not None:
        facets.append(("pipeline", pipeline_name))
    return Share(
        user_id=row["user_id"], pipeline_id=row["pipeline_id"], model=row["model"] or "", status=row["status"],
        day=row["listed_at"].date(), input_tokens=row["input_tokens"] or 0, output_tokens=row["output_tokens"] or 0,
        cost=row["cost"], facets=tuple(facets),
    )


def upsert(model: type[Any], key_names: list[str], rows: list[dict[str, Any]]) -> None:
    """Add each row's other values to the row with its keys, creating it when it does not exist: one
    statement for all of them (rows with distinct keys, in key order, so writers cannot deadlock)."""
    if not rows:
        return
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(model).values(rows)
    table = model.__table__
    db.session.execute(statement.on_conflict_do_update(
        index_elements=key_names,
        set_={name: table.c[name] + statement.excluded[name] for name in rows[0] if name not in key_names},
    ))


ROLLUP_KEYS = ["user_id", "pipeline_id", "model", "status", "day"]
FACET_KEYS = ["user_id", "kind", "value"]


def upsert_sql(table: str, columns: list[str], keys: list[str], rows: str) -> str:
    """An upsert of the rows a SELECT gives (in its order): each adds its sums to the row with its keys."""
    sums = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in columns if name not in keys)
    return (f"INSERT INTO {table} ({', '.join(columns)}) {rows} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sums}")


def unnest_rows(table: str, columns: list[tuple[str, str]]) -> str:
    """SELECT of rows sent as one array per column, :<table>_<column> (unnest keeps their order)."""
    return "SELECT * FROM unnest({})".format(
        ", ".join(f"CAST(:{table}_{name} AS {kind}[])" for name, kind in columns))


ROLLUP_COLUMNS = [("user_id", "varchar"), ("pipeline_id", "varchar"), ("model", "varchar"), ("status", "varchar"),
                  ("day", "date"), ("runs", "bigint"), ("input_tokens", "bigint"), ("output_tokens", "bigint"),
                  ("cost", "numeric"), ("unpriced_runs", "bigint")]
FACET_COLUMNS = [("user_id", "varchar"), ("kind", "varchar"), ("value", "varchar"), ("runs", "bigint")]
# Facets first need rollups done: the scalar subquery runs the rollups' upsert (a data-modifying
# WITH part named "rollups", RETURNING a row each) to its end before the first facet row is written,
# so every writer takes the rollup rows' locks, then the facet rows', each in key order.
AFTER_ROLLUPS = "WHERE (SELECT count(*) FROM rollups) >= 0"


def rollups_part(rollup_rows: str) -> str:
    """The WITH part "rollups" adding rollup rows (a SELECT in key order) to the summaries."""
    rollups = upsert_sql("run_rollups", [name for name, _ in ROLLUP_COLUMNS], ROLLUP_KEYS, rollup_rows)
    return f"rollups AS ({rollups} RETURNING 1)"


def facets_upsert(facet_rows: str, order: bool = False) -> str:
    """The upsert adding facet rows, once the rollups part has run to its end: the rows of a SELECT
    already in key order, or (`order`) sorted into it here."""
    ordered = 'ORDER BY user_id COLLATE "C", kind COLLATE "C", value COLLATE "C"' if order else ""
    return upsert_sql("run_facets", [name for name, _ in FACET_COLUMNS], FACET_KEYS,
                      f"SELECT * FROM ({facet_rows}) AS facet_rows {AFTER_ROLLUPS} {ordered}")


# PostgreSQL: both upserts in one statement of one text whatever the number of rows (SQLAlchemy does
# not cache a multi-row VALUES, so that costs a compile a call), one round trip. Every writer sends
# this statement or recording's for new runs (the same two parts), so all take the rows' locks in
# the same order and cannot deadlock.
POSTGRES_COUNT = text("WITH {} {}".format(
    rollups_part(unnest_rows("run_rollups", ROLLUP_COLUMNS)), facets_upsert(unnest_rows("run_facets", FACET_COLUMNS))))

FINISHED_LIST = ", ".join(f"'{status}'" for status in sorted(FINISHED))
# A run's rollup day (the UTC day of its list time) and its tags as rows, in SQL, per engine.
DAY_SQL = {"postgresql": "CAST(r.listed_at AT TIME ZONE 'UTC' AS DATE)", "sqlite": "date(r.listed_at)"}
TAGS_SQL = {"postgresql": "unnest(r.tags) AS t(value)", "sqlite": "json_each(r.tags) AS t"}


def rollup_rows_sql(runs: str, day: str, order: bool = False) -> str:
    """SELECT of the rollup rows of the runs `runs` (a FROM item aliased r), `day` its day's SQL;
    `order`: in key order, as the writer sorts them (byte order, not the database's collation)."""
    keys = f"r.user_id, r.pipeline_id, COALESCE(r.model, ''), r.status, {day}"
    ordered = ("ORDER BY r.user_id COLLATE \"C\", r.pipeline_id COLLATE \"C\", COALESCE(r.model, '') COLLATE \"C\", "
               f"r.status COLLATE \"C\", {day}") if order else ""
    return (f"SELECT {keys}, count(*), COALESCE(sum(r.input_tokens), 0), COALESCE(sum(r.output_tokens), 0), "
            f"COALESCE(sum(r.cost), 0), count(*) FILTER (WHERE r.cost IS NULL AND r.status IN ({FINISHED_LIST})) "
            f"FROM {runs} GROUP BY {keys} {ordered}")


def facet_rows_sql(runs: str, tags: str) -> str:
    """SELECT of the facet rows of the runs `runs` (a FROM item aliased r): their pipelines, models and
    tags (`tags`: the FROM item of one run's tags, aliased t with a column value)."""
    return ("SELECT user_id, kind, value, count(*) FROM ("
            "SELECT r.user_id, 'pipeline' AS kind, p.name AS value FROM "
            f"{runs} JOIN pipelines p ON p.id = r.pipeline_id "
            f"UNION ALL SELECT r.user_id, 'model', r.model FROM {runs} WHERE COALESCE(r.model, '') <> '' "
            f"UNION ALL SELECT r.user_id, 'tag', t.value FROM {runs}, {tags}"
            ") AS shares GROUP BY user_id, kind, value")


def upsert_all(rollup_rows: list[dict[str, Any]], facet_rows: list[dict[str, Any]]) -> None:
    """Add the deltas to the rollups, then to the facets (each list in key order)."""
    if db.session.get_bind().dialect.name != "postgresql":
        upsert(RunRollup, ROLLUP_KEYS, rollup_rows)
        upsert(RunFacet, FACET_KEYS, facet_rows)
        return
    if not rollup_rows and not facet_rows:
        return
    columns = {f"run_rollups_{name}": [row[name] for row in rollup_rows] for name, _ in ROLLUP_COLUMNS}
    columns |= {f"run_facets_{name}": [row[name] for row in facet_rows] for name, _ in FACET_COLUMNS}
    db.session.execute(POSTGRES_COUNT, columns)


BATCH_KEY = "rollup_changes"


@contextmanager
def counted_together() -> Iterator[None]:
    """Count every change made inside as one: a one-shot run (started, then closed) touches each
    summary row once, and in key order, like every other write, so two writers cannot deadlock."""
    if BATCH_KEY in db.session.info:
        yield
        return
    changes: list[tuple[Share, int]] = []
    db.session.info[BATCH_KEY] = changes
    try:
        yield
    finally:
        del db.session.info[BATCH_KEY]
    count(changes)


def count(changes: Iterable[tuple[Share, int]]) -> None:
    """Apply runs' shares to the summaries: +1 for a state a run enters, -1 for one it leaves."""
    batch = db.session.info.get(BATCH_KEY)
    if batch is not None:
        batch.extend(changes)
        return
    rollups: dict[tuple[str, str, str, str, date], list[Any]] = {}
    facets: Counter[tuple[str, str, str]] = Counter()
    for share, sign in changes:
        key = (share.user_id, share.pipeline_id, share.model, share.status, share.day)
        sums = rollups.setdefault(key, [0, 0, 0, Decimal(0), 0])
        sums[0] += sign
        sums[1] += sign * share.input_tokens
        sums[2] += sign * share.output_tokens
        sums[3] += sign * (share.cost or Decimal(0))
        sums[4] += sign * share.unpriced
        for kind, value in share.facets:
            facets[(share.user_id, kind, value)] += sign
    emptied_rollups, rollup_rows = [], []
    for key, (runs, tokens_in, tokens_out, cost, unpriced) in sorted(rollups.items()):
        if runs == tokens_in == tokens_out == unpriced == 0 and cost == 0:
            continue  # a change that leaves the bucket as it was
        user_id, pipeline_id, model, status, day = key
        rollup_rows.append({"user_id": user_id, "pipeline_id": pipeline_id, "model": model, "status": status,
                            "day": day, "runs": runs, "input_tokens": tokens_in, "output_tokens": tokens_out,
                            "cost": cost, "unpriced_runs": unpriced})
        if runs < 0:
            emptied_rollups.append(key)

    emptied_facets, facet_rows = [], []
    for (user_id, kind, value), delta in sorted(facets.items()):
        if delta:
            facet_rows.append({"user_id": user_id, "kind": kind, "value": value, "runs": delta})
        if delta < 0:
            emptied_facets.append((user_id, kind, value))
    upsert_all(rollup_rows, facet_rows)
    # A bucket or facet whose last run left is removed, so menus offer only what is there.
    if emptied_rollups:
        db.session.execute(delete(RunRollup).where(RunRollup.runs <= 0, or_(*(
            and_(RunRollup.user_id == u, RunRollup.pipeline_id == p, RunRollup.model == m,
                 RunRollup.status == s, RunRollup.day == d)
            for u, p, m, s, d in emptied_rollups
        ))))
    if emptied_facets:
        db.session.execute(delete(RunFacet).where(RunFacet.runs <= 0, or_(*(
            and_(RunFacet.user_id == u, RunFacet.kind == k, RunFacet.value == v) for u, k, v in emptied_facets
        ))))



def rebuild(user_id: str | None = None) -> None:
    """Recount the summaries from the runs themselves (one user's, or everyone's): for runs written
    around the writer (a bulk load), and the check that the writer's counts are right."""
    engine = db.session.get_bind().dialect.name
    day, tags = DAY_SQL[engine], TAGS_SQL[engine]
    runs = "(SELECT * FROM pipeline_runs WHERE user_id = :user_id) AS r" if user_id else "pipeline_runs AS r"
    params = {"user_id": user_id} if user_id else {}
    scope = "WHERE user_id = :user_id" if user_id else ""
    for table in ("run_rollups", "run_facets"):
        db.session.execute(text(f"DELETE FROM {table} {scope}"), params)
    db.session.execute(text(
        f"INSERT INTO run_facets (user_id, kind, value, runs) {facet_rows_sql(runs, tags)}"), params)
    db.session.execute(text(
        f"INSERT INTO run_rollups ({', '.join(name for name, _ in ROLLUP_COLUMNS)}) {rollup_rows_sql(runs, day)}"
    ), params)
