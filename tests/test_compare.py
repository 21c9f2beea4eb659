"""Comparing two runs: facts and deltas, steps paired by agent, a lazily loaded diff per pair (page and
fragment of one URL), the choice of a second run, bounds, hostile output, and another user's runs."""

from __future__ import annotations

import html as html_lib
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from artifacts_app import comparing, diffing, recording
from artifacts_app.extensions import db
from artifacts_app.models import PipelineRun, User
from tests.factories import HOSTILE_OUTPUTS, make_run, make_user, start_run, steps
from tests.fetched import fetched_from

HX = {"HX-Request": "true"}
DONE = datetime(2025, 11, 1, 12, 0, tzinfo=timezone.utc)
TAB = re.compile(
    r'<a role="tab" id="tab-(?P<key>[a-z0-9-]+)"[^>]*aria-selected="(?P<selected>true|false)"[^>]*>\s*'
    r'<span class="step-title">(?P<label>[^<]*)</span>\s*(?:<span class="step-facts">(?P<facts>[^<]*)</span>)?'
)


def text_of(fragment: str) -> str:
    """What a reader sees of some HTML: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def fact_row(page: str, name: str) -> list[str]:
    """The A, B and Change cells of the facts table's row `name`, as read."""
    match = re.search(rf'<tr[^>]*><th scope="row">{re.escape(name)}</th>(.*?)</tr>', page, re.S)
    assert match, name
    return [text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), re.S)]


def tabs(page: str) -> list[tuple[str, str, str]]:
    """Each pair's tab: its key, its label and what it says under the label."""
    return [(m["key"], html_lib.unescape(m["label"]), html_lib.unescape(m["facts"] or "")) for m in TAB.finditer(page)]


def selected(page: str) -> list[str]:
    return [m["key"] for m in TAB.finditer(page) if m["selected"] == "true"]


def diff_of(body: str) -> str:
    """The diff's element (the marked lines) of a page or fragment."""
    match = re.search(r'<div class="diff">(.*?)\n    </div>', body, re.S)
    assert match, "no diff shown"
    return match.group(1)


def marked_lines(body: str, kind: str) -> list[str]:
    """The text of the lines of one kind ("del", "ins", "same") in the diff shown."""
    return [text_of(line) for line in re.findall(
        rf'<div class="diff-line line-{kind}">.*?<span class="text">(.*?)</span></div>', diff_of(body), re.S
    )]


class Elements(HTMLParser):
    """Every element and attribute a browser would build from some HTML (text stays text)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.extend(attrs)


def compare(client: FlaskClient, a: str, b: str | None = None, *, headers: dict[str, str] | None = None,
            **query: str) -> Any:
    """GET the comparison of a with b (or the choice of a second run), with ?tab= and the like."""
    params = {"a": a, **({"b": b} if b else {}), **query}
    return client.get("/artifacts/compare", query_string=params, headers=headers)


@pytest.fixture
def pair(user: User) -> tuple[PipelineRun, PipelineRun]:
    """Two runs of one pipeline: A on gpt-4o, B on gpt-4o-mini, longer, with other tokens and outputs."""
    old = make_run(
        user, model="gpt-4o", usage={"inputTokens": 1000, "outputTokens": 100}, variables={"tone": "concise"},
        steps=steps("The cell holds 4 volts.\nShared line", "analysis A"), final_output="alpha\nbeta\ngamma",
        completed_at=DONE,
    )
    new = make_run(
        user, model="gpt-4o-mini", usage={"inputTokens": 20000, "outputTokens": 1000},
        variables={"tone": "detailed", "audience": "engineers"},
        steps=steps("The cell holds 5 volts.\nShared line", "analysis A"), final_output="alpha\nBETA\ngamma\ndelta",
        completed_at=DONE + timedelta(hours=1), created_at=DONE + timedelta(hours=1) - timedelta(seconds=90),
    )
    return old, new


def test_the_two_runs_facts_stand_side_by_side_with_their_changes(
    signed_in: FlaskClient, pair: tuple[PipelineRun, PipelineRun]
) -> None:
    old, new = pair
    page = compare(signed_in, old.id, new.id).get_data(as_text=True)

    assert fact_row(page, "Status") == ["completed", "completed", "same"]
    assert fact_row(page, "Model") == ["gpt-4o", "gpt-4o-mini", "different"]
    assert fact_row(page, "Tokens in") == ["1K", "20K", "+19K (+1900%)"]
    assert fact_row(page, "Tokens out") == ["100", "1K", "+900 (+900%)"]
    assert fact_row(page, "Tokens") == ["1.1K", "21K", "+19.9K (+1809%)"]
    # gpt-4o: 1,000 × $2.50/M + 100 × $10/M; gpt-4o-mini: 20,000 × $0.15/M + 1,000 × $0.60/M.
    assert (old.cost, new.cost) == (Decimal("0.0035"), Decimal("0.0036"))
    assert fact_row(page, "Cost") == ["$0.0035", "$0.0036", "+$0.0001 (+3%)"]
    assert fact_row(page, "Duration") == ["42 s", "1 min 30 s", "+48 s (+114%)"]
    assert fact_row(page, "Steps") == ["2", "2", "same"]
    assert fact_row(page, "Variable <code>tone</code>") == ["concise", "detailed", "different"]
    assert fact_row(page, "Variable <code>audience</code>") == ["not set", "engineers", "different"]
    assert f'href="/artifacts/{old.id}"' in page and f'href="/artifacts/{new.id}"' in page


def test_money_deltas_are_exact_decimals_and_close_costs_show_in_full(signed_in: FlaskClient, user: User) -> None:
    delta = comparing.delta(Decimal("0.000000500000"), Decimal("0.000000700000"))
    assert delta is not None and delta.size == Decimal("0.0000002") and isinstance(delta.size, Decimal)
    assert (delta.sign, delta.percent) == ("+", Decimal(40))
    assert comparing.delta(timedelta(seconds=3), timedelta(seconds=1)) == comparing.Delta("−", timedelta(seconds=2), Decimal(-67))
    assert comparing.delta(None, Decimal(1)) is None
    # 10,000 × $2.50/M + 100 or 150 × $10/M: $0.026 and $0.0265, both "$0.03" rounded to the cent.
    old = make_run(user, usage={"inputTokens": 10000, "outputTokens": 100})
    new = make_run(user, usage={"inputTokens": 10000, "outputTokens": 150})
    assert fact_row(compare(signed_in, old.id, new.id).get_data(as_text=True), "Cost") == [
        "$0.03 ($0.026)", "$0.03 ($0.0265)", "+$0.0005 (+2%)",
    ]


def test_an_unpriced_run_has_no_cost_change_rather_than_a_change_from_zero(signed_in: FlaskClient, user: User) -> None:
    priced = make_run(user)
    unpriced = make_run(user, model="llama-local")
    assert unpriced.cost is None
    assert fact_row(compare(signed_in, priced.id, unpriced.id).get_data(as_text=True), "Cost") == [
        "$0.0088", "unpriced", "—",
    ]


def test_steps_pair_by_agent_in_order_when_the_runs_have_different_steps(signed_in: FlaskClient, user: User) -> None:
    def step(agent: str, output: str, order: int) -> dict[str, Any]:
        return {"agentId": agent.lower(), "agentName": agent, "output": output, "stepOrder": order}

    old = make_run(user, steps=[step("Researcher", "notes", 0), step("Analyst", "table", 1),
                                step("Writer", "draft one", 2), step("Critic", "fine", 3)])
    new = make_run(user, steps=[step("Researcher", "notes", 0), step("Writer", "draft two", 1), step("Editor", "edits", 2)])
    page = compare(signed_in, old.id, new.id).get_data(as_text=True)

    assert [(key, label) for key, label, _ in tabs(page)] == [
        ("input", "Input"),
        ("final", "Final output"),
        ("step-1-1", "1 · Researcher"),
        ("step-2-0", "2 · Analyst"),  # removed: the steps after it still meet their own agent
        ("step-3-2", "3 · Writer → 2 · Writer"),
        ("step-4-3", "4 · Critic → 3 · Editor"),  # as many replaced as put in their place: by position
    ]
    facts = {key: note for key, _, note in tabs(page)}
    assert facts["step-2-0"] == "only in A"
    assert facts["step-3-2"] == "9 Bytes → 9 Bytes"
    writer = compare(signed_in, old.id, new.id, tab="step-3-2", headers=HX).get_data(as_text=True)
    assert marked_lines(writer, "del") == ["draft one"] and marked_lines(writer, "ins") == ["draft two"]
    assert '<del>one</del>' in writer and '<ins>two</ins>' in writer  # the word that changed, marked
    only_a = compare(signed_in, old.id, new.id, tab="step-2-0", headers=HX).get_data(as_text=True)
    assert "Only A has this step" in text_of(only_a) and marked_lines(only_a, "del") == ["table"]
    swapped = compare(signed_in, new.id, old.id).get_data(as_text=True)
    assert ("step-0-2", "2 · Analyst", "only in B") in tabs(swapped)
    # A pair of steps these runs do not have is a 404, a malformed one a 400.
    assert compare(signed_in, old.id, new.id, tab="step-2-2").status_code == 404
    assert compare(signed_in, old.id, new.id, tab="step-1").status_code == 400


def test_a_pair_is_a_fragment_for_htmx_and_the_whole_page_at_the_same_url(
    signed_in: FlaskClient, pair: tuple[PipelineRun, PipelineRun]
) -> None:
    old, new = pair
    fragment_response = compare(signed_in, old.id, new.id, tab="step-1-1", headers=HX)
    fragment = fragment_response.get_data(as_text=True)
    assert fragment_response.status_code == 200 and "<html" not in fragment and "<h1" not in fragment
    assert "HX-Request" in fragment_response.headers["Vary"]
    assert marked_lines(fragment, "del") == ["The cell holds 4 volts."]
    assert marked_lines(fragment, "ins") == ["The cell holds 5 volts."]
    assert marked_lines(fragment, "same") == ["Shared line"]
    assert "<del>4 </del>" in fragment and "<ins>5 </ins>" in fragment
    assert "alpha" not in fragment  # only this pair's texts: not the final output's

    page_response = compare(signed_in, old.id, new.id, tab="step-1-1")
    page = page_response.get_data(as_text=True)
    assert "<html" in page and "HX-Request" in page_response.headers["Vary"]
    assert selected(page) == ["step-1-1"]
    assert marked_lines(page, "del") == ["The cell holds 4 volts."]
    assert "alpha" not in page and "analysis A" not in page  # the other pairs wait to be asked for
    tab = re.search(r'<a role="tab" id="tab-step-2-2"[^>]*>', page)
    assert tab
    url = f"/artifacts/compare?a={old.id}&amp;b={new.id}&amp;tab=step-2-2"
    assert f'href="{url}"' in tab.group(0) and f'hx-get="{url}"' in tab.group(0)  # a real link too
    assert 'hx-push-url="true"' in tab.group(0) and 'hx-target="#panel-step-2-2"' in tab.group(0)
    assert re.search(r'<div role="tabpanel" id="panel-step-2-2"[^>]*hidden>', page)


@pytest.mark.parametrize(("tab", "removed", "added"), [
    (None, ["beta"], ["BETA", "delta"]),
    ("final", ["beta"], ["BETA", "delta"]),
    ("input", [], []),
    ("step-2-2", [], []),
])
def test_each_pushed_url_loads_directly_with_its_pair_open(
    signed_in: FlaskClient, pair: tuple[PipelineRun, PipelineRun], tab: str | None, removed: list[str], added: list[str]
) -> None:
    old, new = pair
    query = {"tab": tab} if tab else {}
    page = compare(signed_in, old.id, new.id, **query).get_data(as_text=True)
    assert "<html" in page and selected(page) == [tab or "final"]
    if removed or added:
        assert (marked_lines(page, "del"), marked_lines(page, "ins")) == (removed, added)
    else:
        assert "Identical" in page and '<div class="diff">' not in page


def test_the_swap_link_keeps_the_open_pair(signed_in: FlaskClient, user: User) -> None:
    old = make_run(user, steps=steps("a", "b"))
    new = make_run(user, steps=[{"agentId": "analyst", "agentName": "Analyst", "output": "b", "stepOrder": 0}])
    page = compare(signed_in, old.id, new.id, tab="step-2-1").get_data(as_text=True)
    assert f'href="/artifacts/compare?a={new.id}&amp;b={old.id}&amp;tab=step-1-2">Swap A and B' in page
    swapped = compare(signed_in, new.id, old.id, tab="step-1-2").get_data(as_text=True)
    assert selected(swapped) == ["step-1-2"] and fact_row(swapped, "Steps") == ["1", "2", "+1 (+100%)"]


def test_another_users_run_is_a_404_in_either_place_and_when_ticked(signed_in: FlaskClient, user: User) -> None:
    mine = make_run(user)
    other = make_run(user)
    theirs = make_run(make_user(), final_output="their secret")
    for a, b in ((mine.id, theirs.id), (theirs.id, mine.id)):
        for headers in (None, HX):
            response = compare(signed_in, a, b, headers=headers)
            assert response.status_code == 404
            assert "their secret" not in response.get_data(as_text=True)
    assert compare(signed_in, theirs.id).status_code == 404  # the choice of a second run too
    # A missing run answers exactly like theirs.
    missing = compare(signed_in, mine.id, "no-such-run")
    assert missing.status_code == 404
    assert missing.get_data(as_text=True) == compare(signed_in, mine.id, theirs.id).get_data(as_text=True)
    for ids in ([mine.id, theirs.id], [theirs.id, mine.id]):
        assert signed_in.get("/artifacts/compare", query_string={"id": ids}).status_code == 404
        assert signed_in.get("/artifacts/compare", query_string={"id": ids}, headers=HX).status_code == 404
    assert signed_in.get("/artifacts/compare", query_string={"id": [mine.id, other.id]}).status_code == 303


def test_ticked_runs_are_compared_older_first(signed_in: FlaskClient, user: User) -> None:
    older = make_run(user, completed_at=DONE)
    newer = make_run(user, completed_at=DONE + timedelta(days=1))
    for ids in ([older.id, newer.id], [newer.id, older.id]):
        response = signed_in.get("/artifacts/compare", query_string={"id": ids})
        assert response.status_code == 303 and "HX-Request" in response.headers["Vary"]
        path = urlsplit(response.headers["Location"])
        assert path.path == "/artifacts/compare" and parse_qs(path.query) == {"a": [older.id], "b": [newer.id]}
        # The list's selection form asks with htmx: the browser is sent to the comparison's page.
        hx = signed_in.get("/artifacts/compare", query_string={"id": ids}, headers=HX)
        assert hx.status_code == 204 and hx.headers["HX-Redirect"] == response.headers["Location"]


@pytest.mark.parametrize("query", [
    {},
    {"b": "__ID__"},
    {"a": "not a run id!"},
    {"a": "__ID__", "b": "x" * 65},
    {"a": "__ID__", "b": "__ID__"},
    {"a": "__ID__", "b": "__OTHER__", "tab": "step-1"},
    {"a": "__ID__", "b": "__OTHER__", "tab": "<script>"},
    {"a": "__ID__", "b": "__OTHER__", "tab": "step-1-1234567"},
    {"id": "__ID__"},
    {"id": ["__ID__", "__OTHER__", "__THIRD__"]},
    {"id": ["__ID__", "bad id"]},
])
def test_malformed_or_incomplete_requests_are_a_400_page_or_fragment(
    signed_in: FlaskClient, user: User, query: dict[str, Any]
) -> None:
    ids = {"__ID__": make_run(user).id, "__OTHER__": make_run(user).id, "__THIRD__": make_run(user).id}

    def filled(value: Any) -> Any:
        return [ids.get(item, item) for item in value] if isinstance(value, list) else ids.get(value, value)

    params = {name: filled(value) for name, value in query.items()}
    page = signed_in.get("/artifacts/compare", query_string=params)
    assert page.status_code == 400 and "<html" in page.get_data(as_text=True)
    assert "<script>" not in page.get_data(as_text=True).split("</head>")[1].replace('<script src=', '')
    fragment = signed_in.get("/artifacts/compare", query_string=params, headers=HX)
    body = fragment.get_data(as_text=True)
    # htmx swaps 4xx answers (base.html's responseHandling): this is the fragment it shows.
    assert fragment.status_code == 400 and "<html" not in body and 'class="error-box"' in body
    assert "HX-Request" in fragment.headers["Vary"]


def test_without_a_second_run_the_page_offers_recent_runs_of_the_same_pipeline(
    signed_in: FlaskClient, user: User
) -> None:
    base = make_run(user, pipeline="Research brief", name="Base", completed_at=DONE)
    same = [make_run(user, pipeline="Research brief", name=f"Same {n}", completed_at=DONE + timedelta(hours=n))
            for n in range(1, 4)]
    make_run(user, pipeline="Code review", name="Other pipeline")
    make_run(make_user(), pipeline="Research brief", name="Someone else's")

    response = compare(signed_in, base.id)
    page = response.get_data(as_text=True)

    assert response.status_code == 200 and "<h1>Compare Base with…</h1>" in page
    offered = re.findall(r'<a href="/artifacts/compare\?a=([^&]+)&amp;b=([^"]+)">([^<]+)</a>', page)
    assert offered == [(base.id, run.id, run.name) for run in reversed(same)]  # newest first, not itself
    assert "Other pipeline" not in page and "Someone else" not in page
    alone = make_run(user, pipeline="Lonely")
    assert "has no other run to compare with yet" in compare(signed_in, alone.id).get_data(as_text=True)


def test_the_list_and_a_runs_page_lead_to_the_comparison(signed_in: FlaskClient, user: User) -> None:
    run = make_run(user)
    listing = signed_in.get("/artifacts").get_data(as_text=True)
    assert re.search(r'<button type="submit" class="compare-selected" formaction="/artifacts/compare">Compare</button>',
                     listing)
    page = signed_in.get(f"/artifacts/{run.id}").get_data(as_text=True)
    assert f'<a href="/artifacts/compare?a={run.id}">Compare with…</a>' in page


def test_a_legacy_run_compares_by_its_text_final_output(signed_in: FlaskClient, user: User) -> None:
    legacy = recording.record_legacy_run(user, pipeline="Research brief", input="in", final_output="old line\nsame",
                                         created_at=DONE, completed_at=DONE + timedelta(seconds=2))
    db.session.commit()
    modern = make_run(user, steps=steps("notes"), final_output="new line\nsame")
    page = compare(signed_in, legacy.id, modern.id).get_data(as_text=True)
    assert marked_lines(page, "del") == ["old line"] and marked_lines(page, "ins") == ["new line"]
    assert [(key, note) for key, _, note in tabs(page)][2:] == [("step-0-1", "only in B")]
    assert fact_row(page, "Steps") == ["0", "1", "+1"]  # no percent of nothing


def test_a_failed_run_and_a_running_one_compare_with_what_they_have(signed_in: FlaskClient, user: User) -> None:
    failed = make_run(user, status="failed", error="RateLimitError", steps=steps("partial one"), final_output="")
    running = start_run(user, pipeline="Research brief", input="Summarise solid-state batteries")
    db.session.commit()
    page = compare(signed_in, failed.id, running.id).get_data(as_text=True)
    assert fact_row(page, "Status") == ["failed", "running", "different"]
    assert fact_row(page, "Cost")[1:] == ["running", "—"]
    assert fact_row(page, "Duration")[1:] == ["—", "—"]  # a running run has no duration yet
    assert "Identical" in page  # neither has a final output
    step = compare(signed_in, failed.id, running.id, tab="step-1-0", headers=HX).get_data(as_text=True)
    assert marked_lines(step, "del") == ["partial one"]


def test_outputs_past_the_limit_are_compared_by_their_start_and_the_panel_says_so(
    app: Flask, signed_in: FlaskClient, user: User
) -> None:
    app.config["COMPARE_LIMIT_CHARS"] = 100
    start = "x" * 95 + "\n"
    old = make_run(user, final_output=start + "same\n" + "tail A " * 50)
    new = make_run(user, final_output=start + "same\n" + "tail B " * 50)
    page = compare(signed_in, old.id, new.id).get_data(as_text=True)
    assert "Identical in the part compared" in text_of(page)  # the difference is past character 100
    notice = re.search(r'<p class="truncated" role="note">(.*?)</p>', page, re.S)
    assert notice and "Only the start of each side is compared (100 characters" in text_of(notice.group(1))
    assert f"/artifacts/{old.id}/download?part=final&amp;format=txt" in notice.group(1)
    assert f"/artifacts/{new.id}/download?part=final&amp;format=txt" in notice.group(1)
    # Within the limit a difference shows, and no notice does.
    app.config["COMPARE_LIMIT_CHARS"] = 10_000
    page = compare(signed_in, old.id, new.id).get_data(as_text=True)
    assert 'class="truncated"' not in page and len(marked_lines(page, "del")) == 1


# 3,250,000 characters, 3,750,000 bytes in UTF-8 ("Ü" and "ï" take two bytes each).
BIG_INPUT = "Ünïcode line\n" * 250_000
SMALL_FETCH = 64 * 1024  # what a panel may fetch besides the compared starts: facts, headers, session


def test_only_the_input_pair_reads_the_inputs_and_only_their_compared_start(
    app: Flask, signed_in: FlaskClient, user: User
) -> None:
    app.config["COMPARE_LIMIT_CHARS"] = 1000
    old = make_run(user, input="first A\n" + BIG_INPUT, steps=steps("step A"), final_output="final A")
    new = make_run(user, input="first B\n" + BIG_INPUT, steps=steps("step B"), final_output="final B")
    ids = old.id, new.id  # read before measuring: reading an expired attribute reloads the whole row
    for tab, headers in (("step-1-1", HX), ("final", HX), ("final", {})):
        with fetched_from(db.engine) as fetched:
            response = compare(signed_in, *ids, tab=tab, headers=headers)
        assert response.status_code == 200
        assert fetched.total_bytes < SMALL_FETCH, (tab, headers, fetched.total_bytes)  # no input at all

    with fetched_from(db.engine) as fetched:
        panel = compare(signed_in, *ids, tab="input", headers=HX).get_data(as_text=True)
    # Each input's first 1,001 characters (at most 2 bytes each here) and nothing more of either.
    assert fetched.largest_value <= 1001 * 2 and fetched.total_bytes < SMALL_FETCH + 2 * 1001 * 2, fetched
    assert marked_lines(panel, "del") == ["first A"] and marked_lines(panel, "ins") == ["first B"]
    assert "Only the start of each side is compared (1,000 characters" in text_of(panel)
    # Their whole sizes, counted in UTF-8 bytes by the database: 3,750,008 bytes, not 3,250,008 characters.
    assert "(3.8 MB → 3.8 MB)" in text_of(panel)


@pytest.mark.parametrize("hostile", HOSTILE_OUTPUTS)
def test_hostile_output_shows_as_inert_escaped_text(signed_in: FlaskClient, user: User, hostile: str) -> None:
    old = make_run(user, final_output="harmless", steps=steps("first"))
    new = make_run(user, final_output=hostile, steps=[{"agentId": "researcher", "agentName": hostile,
                                                       "output": hostile, "stepOrder": 0}],
                   name=hostile, variables={"x": hostile})
    page = compare(signed_in, old.id, new.id).get_data(as_text=True)
    fragment = compare(signed_in, old.id, new.id, tab="step-1-1", headers=HX).get_data(as_text=True)
    for body in (page, fragment):
        diff = diff_of(body)
        # The diff holds only our own elements; the output is text in them, as written.
        assert set(re.findall(r"<(\w+)", diff)) <= {"div", "span", "del", "ins", "details", "summary"}
        assert set(re.findall(r'\s([\w-]+)="', diff)) <= {"class", "aria-hidden"}
        assert hostile in text_of(diff) or all(line in text_of(diff) for line in hostile.split())
    assert str(html_lib.escape(hostile.split()[0], quote=False)) in page
    main = page.split('<main id="main"', 1)[1].split("</main>", 1)[0]  # the title, facts, tabs and diff
    elements = Elements()
    elements.feed(main)
    assert not elements.tags & {"script", "img", "svg", "iframe", "form", "style", "textarea"}
    assert not [name for name, _ in elements.attributes if name.startswith("on") or name == "hx-trigger"]
    assert not [value for name, value in elements.attributes
                if name in ("href", "src") and re.match(r"\s*(javascript|data):", value or "", re.I)]


def test_a_pair_of_steps_shows_each_steps_facts_and_what_changed(signed_in: FlaskClient, user: User) -> None:
    old = make_run(user, steps=steps("a", "b", model="gpt-4o", inputTokens=1000, outputTokens=100), usage=None)
    new = make_run(user, steps=steps("a", model="gpt-4o-mini", inputTokens=1000, outputTokens=300), usage=None)
    panel = compare(signed_in, old.id, new.id, tab="step-1-1", headers=HX).get_data(as_text=True)
    assert fact_row(panel, "Status") == ["completed", "completed", "same"]
    assert fact_row(panel, "Model") == ["gpt-4o", "gpt-4o-mini", "different"]
    assert fact_row(panel, "Tokens in / out") == ["1K / 100", "1K / 300", "same / +200 (+200%)"]
    # 1,000 × $2.50/M + 100 × $10/M against 1,000 × $0.15/M + 300 × $0.60/M.
    assert fact_row(panel, "Cost") == ["$0.0035", "$0.00033", "−$0.0032 (−91%)"]
    alone = compare(signed_in, old.id, new.id, tab="step-2-0", headers=HX).get_data(as_text=True)
    assert fact_row(alone, "Status") == ["completed", "no such step", "—"]
    assert fact_row(alone, "Model") == ["gpt-4o", "", "—"]


def test_texts_too_different_to_match_in_budget_are_shown_coarsely_and_the_panel_says_so(
    signed_in: FlaskClient, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(diffing, "LINE_BUDGET", 10)
    lines = [f"line {n}" for n in range(30)]
    old = make_run(user, final_output="\n".join(lines))
    new = make_run(user, final_output="\n".join(x for line in lines for x in (line, "new " + line)))
    page = compare(signed_in, old.id, new.id).get_data(as_text=True)
    assert "differ too much to match line by line" in text_of(page)
    assert len(marked_lines(page, "ins")) == 59  # all but the first line, which both start with


@pytest.mark.engine_agnostic
def test_no_generated_comparison_request_is_a_server_error(signed_in: FlaskClient, user: User) -> None:
    runs = [make_run(user, steps=steps("a", "b")).id, make_run(user, steps=steps("c")).id]
    theirs = make_run(make_user()).id
    ids = st.one_of(st.sampled_from([*runs, theirs]), st.text(max_size=70))
    tab = st.one_of(st.sampled_from(["input", "final", "step-1-1", "step-2-0", "step-0-1", "step-0-0"]), st.text(max_size=20))

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(a=st.none() | ids, b=st.none() | ids, tab=st.none() | tab, ticked=st.lists(ids, max_size=3), htmx=st.booleans())
    def one_request(a: str | None, b: str | None, tab: str | None, ticked: list[str], htmx: bool) -> None:
        query: dict[str, Any] = {name: value.encode("utf-8", "replace").decode()
                                 for name, value in (("a", a), ("b", b), ("tab", tab)) if value is not None}
        if ticked:
            query["id"] = [value.encode("utf-8", "replace").decode() for value in ticked]
        response = signed_in.get("/artifacts/compare", query_string=query, headers=HX if htmx else None)
        assert response.status_code in (200, 204, 303, 400, 404), (query, response.status_code)

    one_request()
