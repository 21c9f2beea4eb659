"""Migration 0008 (PostgreSQL): steps posted to an open run are indexed in run_search_pending; the
downgrade folds them back into the run's vector, so a search finds the same runs at 0007."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from artifacts_app import recording, schemas
from artifacts_app.extensions import db
from artifacts_app.models import User
from tests.test_migrations import (  # noqa: F401 (fixtures)
    RUNNING_RUN_ID,
    USER_ID,
    empty_database_url,
    insert_legacy_rows,
    migrate_down_to,
    migrate_to,
    migration_app,
)

pytestmark = pytest.mark.postgres_only


def matching(word: str) -> list[str]:
    """The run ids whose stored vector holds `word` (the column as 0007 reads it)."""
    return list(db.session.execute(sa.text(
        "SELECT id FROM pipeline_runs WHERE search_vector @@ to_tsquery('english', :word) ORDER BY id"
    ), {"word": word}).scalars())


def test_pending_steps_go_back_into_the_vector_on_downgrade(migration_app: Flask) -> None:
    migrate_to("0001")
    insert_legacy_rows()
    migrate_to("head")
    user = db.session.get(User, USER_ID)
    assert user is not None
    for order, word in enumerate(["jerboa", "quokka"]):
        recording.add_step(user, RUNNING_RUN_ID, schemas.parse(schemas.StepIn, {
            "agentId": "a", "agentName": "A", "output": f"a {word} here", "stepOrder": order,
        }))
    db.session.commit()
    assert matching("jerboa") == []  # at head, only in run_search_pending

    migrate_down_to("0007")

    assert matching("jerboa") == matching("quokka") == [RUNNING_RUN_ID]
    assert "run_search_pending" not in sa.inspect(db.engine).get_table_names()
    functions = db.session.execute(sa.text(
        "SELECT proname FROM pg_proc WHERE proname IN ('run_search_agg', 'run_search_concat')")).scalars().all()
    assert functions == []
    migrate_to("head")  # and up again
    assert matching("jerboa") == [RUNNING_RUN_ID]
