"""Concurrent API writers over real HTTP: none is refused with a 500, nothing is lost.

The security scan found this on SQLite: a few writers at once and some requests failed with
"database is locked". Each engine must queue writers rather than fail them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests
import sqlalchemy as sa
from flask import Flask

from artifacts_app import tokens
from artifacts_app.extensions import db
from artifacts_app.models import PipelineRun
from tests.factories import make_user, three_steps
from tests.servers import serving

CLIENTS = 8
RUNS_PER_CLIENT = 12


def test_concurrent_one_shot_and_step_by_step_writers_all_succeed(app: Flask) -> None:
    user = make_user("writer@example.com")
    _, clear = tokens.create_token(user, "executor")
    db.session.commit()
    headers = {"Authorization": f"Bearer {clear}"}

    def client(number: int) -> list[int]:
        statuses = []
        with requests.Session() as session:
            for index in range(RUNS_PER_CLIENT):
                name = f"client {number} run {index}"
                if index % 2:
                    body = {"pipeline": "P", "input": name, "status": "completed", "model": "gpt-4o",
                            "steps": three_steps(), "finalOutput": name, "usage": {"inputTokens": 10, "outputTokens": 5}}
                    statuses.append(session.post(f"{base}/runs", json=body, headers=headers, timeout=60).status_code)
                    continue
                started = session.post(f"{base}/runs", json={"pipeline": "P", "input": name, "model": "gpt-4o"},
                                       headers=headers, timeout=60)
                statuses.append(started.status_code)
                for step in three_steps():
                    statuses.append(session.post(f"{base}/runs/{started.json()['id']}/steps", json=step,
                                                 headers=headers, timeout=60).status_code)
                done = session.post(f"{base}/runs/{started.json()['id']}/complete",
                                    json={"finalOutput": name, "usage": {"inputTokens": 10, "outputTokens": 5}},
                                    headers=headers, timeout=60)
                statuses.append(done.status_code)
                statuses.append(session.get(f"{base}/runs", headers=headers, timeout=60).status_code)
        return statuses

    with serving(app) as url, ThreadPoolExecutor(CLIENTS) as pool:
        base = f"{url}/api/v1"
        results = [status for statuses in pool.map(client, range(CLIENTS)) for status in statuses]

    assert sorted(set(results)) == [200, 201], {status: results.count(status) for status in set(results)}
    db.session.rollback()
    runs = db.session.execute(sa.select(PipelineRun).where(PipelineRun.user_id == user.id)).scalars().all()
    assert len(runs) == CLIENTS * RUNS_PER_CLIENT
    assert {run.status for run in runs} == {"completed"}
    assert all([step.step_order for step in run.steps] == [0, 1, 2] for run in runs)
    assert sorted(run.input for run in runs) == sorted(f"client {c} run {i}" for c in range(CLIENTS)
                                                      for i in range(RUNS_PER_CLIENT))
