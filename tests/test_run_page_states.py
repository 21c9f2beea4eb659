"""A run's page in the states that are not "completed": a failed run opens on the step that failed,
an open run says it is running and is watched through its live fragment until it finishes."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from flask.testing import FlaskClient

from artifacts_app import recording, schemas
from artifacts_app.artifacts import detail_views
from artifacts_app.extensions import db
from artifacts_app.models import User
from tests.factories import make_run, start_run, steps
from tests.fetched import fetched_from

HX = {"HX-Request": "true"}
SELECTED = re.compile(r'<a role="tab" id="tab-([a-z0-9-]+)"[^>]*aria-selected="true"')


def panel_of(html: str, key: str) -> str:
    match = re.search(rf'<div role="tabpanel" id="panel-{key}"[^>]*>(.*?)\n  </div>', html, re.S)
    assert match, key
    return match.group(1)


def test_a_failed_run_opens_on_its_failing_step_with_the_error_beside_it(signed_in: FlaskClient, user: User) -> None:
    failing = steps("alpha", "beta", "gamma")
    failing[1]["status"] = "failed"
    run = make_run(user, status="failed", error="Timeout: the reviewer took 120 s", steps=failing, final_output="")

    html = signed_in.get(f"/artifacts/{run.id}").get_data(as_text=True)

    assert SELECTED.findall(html) == ["step-2"]
    assert "This run failed at step 2 · Analyst" in html
    panel = panel_of(html, "step-2")
    assert "The run failed at this step" in panel and "Timeout: the reviewer took 120 s" in panel and "beta" in panel
    tab = re.search(r'<a role="tab" id="tab-step-2"[^>]*>', html)
    assert tab and "step-failed" in tab.group(0)
    assert html.count('class="step-mark"') == 1
    # The final output says why it is empty; ?tab= still opens any tab.
    final = signed_in.get(f"/artifacts/{run.id}?tab=final").get_data(as_text=True)
    assert SELECTED.findall(final) == ["final"]
    assert "This run failed before producing a final output." in panel_of(final, "final")


def test_a_failed_run_without_a_failed_step_opens_on_the_error(signed_in: FlaskClient, user: User) -> None:
    run = make_run(user, status="failed", error="RateLimitError: 429", steps=steps("alpha"), final_output="")

    html = signed_in.get(f"/artifacts/{run.id}").get_data(as_text=True)

    assert SELECTED.findall(html) == ["final"]
    assert html.index("RateLimitError: 429") < html.index('id="panel-final"')
    assert "This run failed before producing a final output." in panel_of(html, "final")


def test_the_live_update_of_a_run_that_failed_with_a_5_mb_error_sends_its_first_part(
    signed_in: FlaskClient, user: User
) -> None:
    error = "Traceback <b>x</b>\n" + "  at step 2 of the reviewer\n" * 200_000  # 5.6 MB
    failing = steps("alpha", "beta")
    failing[1]["status"] = "failed"
    run_id = make_run(user, status="failed", error=error, steps=failing, final_output="").id

    with fetched_from(db.engine) as fetched:
        live = signed_in.get(f"/artifacts/{run_id}/live?steps=0", headers=HX)
        update = live.get_data(as_text=True)
        step = signed_in.get(f"/artifacts/{run_id}?tab=step-2", headers=HX).get_data(as_text=True)

    assert live.status_code == 200 and "hx-trigger" not in update  # finished: polling stops
    assert fetched.total_bytes < 3 * 64 * 1024, fetched.total_bytes  # the error's start, twice, no more
    assert len(update) < 80_000 and "Traceback &lt;b&gt;x&lt;/b&gt;" in update and "<b>x" not in update
    assert f'href="/artifacts/{run_id}/download?part=error&amp;format=txt">Download the full error</a>' in update
    assert 'starts <a href="#run-alerts">above</a>' in step and "Traceback" not in step
    whole = signed_in.get(f"/artifacts/{run_id}/download?part=error&format=txt").get_data(as_text=True)
    assert whole == error


def test_an_open_run_says_running_and_its_live_fragment_brings_new_steps_then_the_end(
    signed_in: FlaskClient, user: User
) -> None:
    run = start_run(user, pipeline="Code review", input="PR #482", model="gpt-4o")
    db.session.commit()
    html = signed_in.get(f"/artifacts/{run.id}").get_data(as_text=True)
    assert "unpriced" not in html
    assert '<span class="muted">running</span>' in html  # the cost, while it runs
    assert "This run is still running" in panel_of(html, "final")
    assert f'hx-get="/artifacts/{run.id}/live?steps=0"' in html and 'hx-trigger="every' in html

    recording.add_step(user, run.id, schemas.parse(schemas.StepIn, steps("alpha output")[0]))
    db.session.commit()
    live = signed_in.get(f"/artifacts/{run.id}/live?steps=0", headers={"HX-Request": "true"})

    assert live.status_code == 200
    update = live.get_data(as_text=True)
    assert f'hx-get="/artifacts/{run.id}/live?steps=1"' in update  # polls on, knowing one step
    assert 'hx-swap-oob="beforeend:#step-tabs"' in update and 'id="tab-step-1"' in update
    assert 'hx-swap-oob="beforeend:#panels"' in update and 'id="panel-step-1"' in update
    assert 'id="run-facts" hx-swap-oob="true"' in update
    assert "1 new step: 1 · Researcher." in update
    nothing_new = signed_in.get(f"/artifacts/{run.id}/live?steps=1").get_data(as_text=True)
    assert 'id="tab-step-1"' not in nothing_new and "hx-trigger" in nothing_new

    recording.complete_run(user, run.id, schemas.parse(schemas.RunComplete, {"finalOutput": "All **good**"}))
    db.session.commit()
    done = signed_in.get(f"/artifacts/{run.id}/live?steps=1").get_data(as_text=True)

    assert "hx-trigger" not in done  # polling stops
    assert '<div id="panel-final" hx-swap-oob="innerHTML">' in done and "<strong>good</strong>" in done
    assert "badge-completed" in done and "The run completed." in done


def test_the_live_fragment_refuses_a_step_count_it_cannot_use(signed_in: FlaskClient, user: User) -> None:
    run = start_run(user, pipeline="Code review", input="PR #482")
    db.session.commit()
    for bad in ("", "-1", "01", "1.5", "x", "9999999", "3"):
        response = signed_in.get(f"/artifacts/{run.id}/live?steps={bad}")
        assert response.status_code == 400, bad


START = datetime(2025, 11, 1, 12, 0, tzinfo=timezone.utc)


def bars(html: str) -> dict[str, tuple[str, str, bool]]:
    """Each step's timeline bar: (x, width) of its span in percent, and whether it came out of band."""
    found = re.findall(r'<span class="step-time" id="time-(step-\d+)"( hx-swap-oob="true")?><svg[^>]*>'
                       r'<rect class="track"[^>]*/><rect class="span" x="([^"]+)" y="0" width="([^"]+)"', html)
    return {key: (x, width, bool(oob)) for key, oob, x, width in found}


def timed_step(order: int, start: int, end: int) -> schemas.StepIn:
    """A step that ran from `start` to `end` seconds after START."""
    body = {**steps("a", "b", "c")[order],
            "startedAt": (START + timedelta(seconds=start)).isoformat(),
            "completedAt": (START + timedelta(seconds=end)).isoformat()}
    return schemas.parse(schemas.StepIn, body)


def test_each_live_update_rescales_every_timeline_bar_to_the_run_so_far(
    signed_in: FlaskClient, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = {"now": START + timedelta(seconds=10)}
    monkeypatch.setattr(detail_views, "utcnow", lambda: clock["now"])
    run = start_run(user, pipeline="Code review", input="PR #482", created_at=START.isoformat())
    recording.add_step(user, run.id, timed_step(0, 0, 5))
    db.session.commit()

    page = signed_in.get(f"/artifacts/{run.id}").get_data(as_text=True)
    assert bars(page) == {"step-1": ("0.0", "50.0", False)}  # 5 s of the 10 so far

    clock["now"] = START + timedelta(seconds=20)
    recording.add_step(user, run.id, timed_step(1, 10, 20))
    db.session.commit()
    update = signed_in.get(f"/artifacts/{run.id}/live?steps=1", headers=HX).get_data(as_text=True)
    # The bar already shown is sent again at the new scale; the new step's comes with its tab.
    assert bars(update) == {"step-1": ("0.0", "25.0", True), "step-2": ("50.0", "50.0", False)}

    clock["now"] = START + timedelta(seconds=40)  # nothing new but time: every bar still shrinks
    quiet = signed_in.get(f"/artifacts/{run.id}/live?steps=2", headers=HX).get_data(as_text=True)
    assert bars(quiet) == {"step-1": ("0.0", "12.5", True), "step-2": ("25.0", "25.0", True)}
    assert 'id="tab-step-1"' not in quiet

    # At the end the run's completion is the scale, and the last answer says so.
    recording.complete_run(user, run.id, schemas.parse(schemas.RunComplete, {
        "finalOutput": "done", "completedAt": (START + timedelta(seconds=25)).isoformat()}))
    db.session.commit()
    done = signed_in.get(f"/artifacts/{run.id}/live?steps=2", headers=HX).get_data(as_text=True)
    assert "hx-trigger" not in done
    assert bars(done) == {"step-1": ("0.0", "20.0", True), "step-2": ("40.0", "40.0", True)}
    assert bars(signed_in.get(f"/artifacts/{run.id}").get_data(as_text=True)) == {
        "step-1": ("0.0", "20.0", False), "step-2": ("40.0", "40.0", False)}


def test_a_step_without_times_has_an_empty_bar_slot_the_live_update_can_still_fill(
    signed_in: FlaskClient, user: User
) -> None:
    run = make_run(user, steps=steps("alpha"))  # steps recorded with the run: no times of their own
    page = signed_in.get(f"/artifacts/{run.id}").get_data(as_text=True)
    update = signed_in.get(f"/artifacts/{run.id}/live?steps=1", headers=HX).get_data(as_text=True)
    assert '<span class="step-time" id="time-step-1"></span>' in page
    assert '<span class="step-time" id="time-step-1" hx-swap-oob="true"></span>' in update
