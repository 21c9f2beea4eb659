"""Comparing two runs in a real browser: from the list's ticks or a run's page to both sides and a
marked diff; pairs loaded in place with their own address; hostile output inert; a phone's width."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from artifacts_app.models import PipelineRun, User
from tests.browser.conftest import PageWatch, sign_in
from tests.factories import HOSTILE_OUTPUTS, make_run, steps

DONE = datetime(2025, 11, 1, 12, 0, tzinfo=timezone.utc)


def two_runs(user: User) -> tuple[PipelineRun, PipelineRun]:
    """An older run and a newer one of the same pipeline whose outputs differ by a line and a word."""
    old = make_run(user, name="Brief v1", steps=steps("Notes on cells\nThe cell holds 4 volts.", "same table"),
                   final_output="# Summary\nSolid-state cells are safer.\nThey cost more.", completed_at=DONE)
    new = make_run(user, name="Brief v2", steps=steps("Notes on cells\nThe cell holds 5 volts.", "same table"),
                   final_output="# Summary\nSolid-state cells are much safer.\nThey last longer.\nThey cost more.",
                   completed_at=DONE + timedelta(hours=1))
    return old, new


def marked(page: Any, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def test_two_ticked_runs_open_side_by_side_with_a_marked_diff(watched_page: tuple[Any, PageWatch], user: User) -> None:
    page, _ = watched_page
    old, new = two_runs(user)
    sign_in(page, user.email)
    compare = page.locator("#selection .compare-selected")
    assert compare.is_disabled()
    page.check(f"#pick-{new.id}")
    assert compare.is_disabled()  # Compare needs exactly two
    page.check(f"#pick-{old.id}")
    assert compare.is_enabled()

    compare.click()

    page.wait_for_url(re.compile(rf"/artifacts/compare\?a={old.id}&b={new.id}$"))  # older first
    assert page.locator("h1").inner_text() == "Compare two runs"
    heads = page.locator(".compare-facts thead th").all_inner_texts()
    assert "Brief v1" in heads[0] and "Brief v2" in heads[1]
    panel = page.locator("#panel-final")
    assert marked(page, "#panel-final .line-del .text") == ["Solid-state cells are safer."]
    assert marked(page, "#panel-final .line-ins .text") == ["Solid-state cells are much safer.", "They last longer."]
    assert marked(page, "#panel-final .diff ins") == ["much"]  # the word that changed, within its line
    assert "−1 line only in A, +2 only in B" in panel.locator(".diff-summary").inner_text()
    # The marks are visible: lines tinted apart from unchanged ones, words struck through or underlined.
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        styles = page.evaluate("""() => {
            const bg = s => getComputedStyle(document.querySelector(s)).backgroundColor;
            const deco = s => getComputedStyle(document.querySelector(s)).textDecorationLine;
            return {same: bg('#panel-final .line-same'), del: bg('#panel-final .line-del'),
                    ins: bg('#panel-final .line-ins'), word: bg('#panel-final .diff ins'),
                    under: deco('#panel-final .diff ins')};
        }""")
        assert len({styles["same"], styles["del"], styles["ins"], styles["word"]}) == 4, (scheme, styles)
        assert styles["under"] == "underline", styles


def test_switching_pairs_loads_the_panel_in_place_and_gives_it_an_address(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, watch = watched_page
    old, new = two_runs(user)
    sign_in(page, user.email)
    page.goto(f"/artifacts/compare?a={old.id}&b={new.id}")
    page.evaluate("window.__marker = 'same page'")

    page.click("#tab-step-1-1")

    page.locator("#panel-step-1-1 .diff").wait_for()
    assert page.url.endswith(f"/artifacts/compare?a={old.id}&b={new.id}&tab=step-1-1")
    assert page.evaluate("window.__marker") == "same page"  # no page load
    assert page.locator("#panel-final").is_hidden()
    assert marked(page, "#panel-step-1-1 .diff del") == ["4"] and marked(page, "#panel-step-1-1 .diff ins") == ["5"]
    fetched = [headers for method, url, headers in watch.requests if url.endswith("tab=step-1-1")]
    assert fetched and fetched[-1].get("hx-request") == "true"  # only the panel was asked for
    # The keyboard moves between pairs as between a run's tabs, and loads what it lands on.
    assert page.evaluate("document.activeElement.id") == "tab-step-1-1"
    page.keyboard.press("ArrowDown")
    page.locator("#panel-step-2-2 .diff-summary").wait_for()
    assert "Identical" in page.locator("#panel-step-2-2 .diff-summary").inner_text()
    assert page.url.endswith("tab=step-2-2") and page.evaluate("document.activeElement.id") == "tab-step-2-2"
    # Back returns to the pair before, still on the same page and without asking for it again; the
    # address loads on its own too.
    asked = len(watch.requests)
    page.go_back()
    page.wait_for_function("() => location.search.endsWith('tab=step-1-1')")
    assert page.locator("#tab-step-1-1").get_attribute("aria-selected") == "true"
    assert page.evaluate("window.__marker") == "same page"
    page.wait_for_load_state("networkidle")
    assert [url for _, url, _ in watch.requests[asked:] if "/artifacts/compare" in url] == []
    page.reload()
    assert page.locator("#tab-step-1-1").get_attribute("aria-selected") == "true"
    assert marked(page, "#panel-step-1-1 .diff ins") == ["5"]


def test_compare_with_from_a_runs_page_leads_to_a_comparison(watched_page: tuple[Any, PageWatch], user: User) -> None:
    page, _ = watched_page
    old, new = two_runs(user)
    make_run(user, pipeline="Code review", name="Another pipeline's run")
    sign_in(page, user.email, next_path=f"/artifacts/{new.id}")

    page.click("text=Compare with…")

    page.wait_for_url(re.compile(rf"/artifacts/compare\?a={new.id}$"))
    choices = page.locator("table.compare-choices tbody th a").all_inner_texts()
    assert choices == ["Brief v1"]  # the same pipeline's other runs only
    page.click("text=Brief v1")
    page.wait_for_url(re.compile(rf"/artifacts/compare\?a={new.id}&b={old.id}$"))
    assert marked(page, "#panel-final .line-del .text") == ["Solid-state cells are much safer.", "They last longer."]
    # Swapping reads the change the other way round.
    page.click("text=Swap A and B")
    page.wait_for_url(re.compile(rf"/artifacts/compare\?a={old.id}&b={new.id}&tab=final$"))
    assert marked(page, "#panel-final .line-ins .text") == ["Solid-state cells are much safer.", "They last longer."]


def test_hostile_output_stays_text_and_a_phone_needs_no_sideways_scroll(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, _ = watched_page
    hostile = "\n".join(HOSTILE_OUTPUTS)
    old = make_run(user, final_output="harmless", steps=steps("first"), name="Plain")
    new = make_run(user, final_output=hostile, steps=steps(hostile), name="<img src=x onerror=\"window.__pwned=1\">",
                   model="claude-sonnet-4-5-20250929-with-a-very-long-model-name")
    sign_in(page, user.email)
    page.goto(f"/artifacts/compare?a={old.id}&b={new.id}")
    page.click("#tab-step-1-1")
    page.locator("#panel-step-1-1 .diff").wait_for()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#panel-final .line-ins .text").first.inner_text() == HOSTILE_OUTPUTS[0]
    assert page.locator("main script, main img, main iframe, main form, main svg").count() == 0
    page.set_viewport_size({"width": 375, "height": 800})
    for tab in ("final", "step-1-1"):
        page.goto(f"/artifacts/compare?a={old.id}&b={new.id}&tab={tab}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, tab


def test_a_late_pair_opened_by_its_address_is_shown_in_the_navigator(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, _ = watched_page
    many = [{"agentId": f"agent-{n}", "agentName": f"Agent {n}", "output": f"output {n}", "stepOrder": n}
            for n in range(40)]
    old = make_run(user, steps=many)
    new = make_run(user, steps=[{**step, "output": step["output"] + " changed"} for step in many])
    sign_in(page, user.email)
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 800})
        page.goto(f"/artifacts/compare?a={old.id}&b={new.id}&tab=step-35-35")
        visible = page.evaluate("""() => {
            const tab = document.getElementById('tab-step-35-35'), list = tab.closest('[role=tablist]');
            const a = tab.getBoundingClientRect(), b = list.getBoundingClientRect();
            return a.top >= b.top && a.bottom <= b.bottom && a.left >= b.left && a.right <= b.right;
        }""")
        assert visible, width
        assert page.evaluate("window.scrollY") == 0, width  # the navigator scrolled, not the page
