"""Accessibility in a real browser: axe-core on every kind of page, light and dark, wide and narrow;
one h1, a skip link and the favicon on each; the keyboard shortcuts; times in the browser's own zone.

axe-core is vendored for the tests only (tests/browser/vendor/, pinned, from the npm registry); the app
never serves it.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from artifacts_app import tokens
from artifacts_app.extensions import db
from artifacts_app.models import User
from tests.browser.conftest import PageWatch, row_ids, scroll_to_end, sign_in
from tests.factories import T0, make_run, record_many, start_run

AXE_VERSION = "4.14.1"
AXE_SOURCE = (Path(__file__).parent / "vendor" / f"axe-core-{AXE_VERSION}.min.js").read_text(encoding="utf-8")

SCHEMES = ("light", "dark")
WIDTHS = (1280, 375)
FAILING_IMPACTS = ("serious", "critical")

# Rendered markdown with everything that could fail a check: headings from h1 down, a code block far
# wider than the panel (it scrolls), every kind of highlighted token, a table, a quote and a link.
RICH_MARKDOWN = """# Report

Some **bold** text, `inline code` and a [link](https://example.com/).

## Findings

| Metric | Value |
|:-------|------:|
| tokens | 1,234 |

> A quoted remark.

```python
import os  # a comment that goes on and on and on and on and on and on and on and on and on and on and on and on
@decorator
def f(x: int = 0x1F, *args, **kwargs) -> str:
    \"\"\"Doc string.\"\"\"
    if x is not None and x in [1, 2.5, -3e4] or not args:
        return f"{x!r} {'single'} {b'bytes'}" + r'\\d+' % 3
    raise ValueError from None
class C(Base): pass
print(len(os.environ), True, None, __name__)
```

```diff
- removed
+ added
```

```sql
SELECT count(*) FROM runs WHERE status = 'failed' -- why
```

```javascript
const re = /ab+c/g; let n = null ?? undefined; console.log(`t ${n}`);
```
"""

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), html: n.html.slice(0, 200), summary: n.failureSummary})),
  }));
}"""


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now (axe is injected once per document)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # page.add_script_tag would add an inline <script>, which the app's CSP (script-src 'self')
        # blocks, as it should. Evaluating the source through the DevTools protocol is not subject to
        # the page's CSP, so the policy under test stays exactly the one the app sends (no bypass_csp).
        page.evaluate(AXE_SOURCE)
    violations: list[dict[str, Any]] = page.evaluate(AXE_RUN)
    return violations


def readable(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"[{violation['impact']}] {violation['id']}: {violation['help']}")
        for node in violation["nodes"][:5]:
            lines.append(f"    {node['target']}\n      {node['html']}\n      " + node["summary"].replace("\n", "\n      "))
    return "\n".join(lines)


def check_page(page: Any, name: str, problems: list[str]) -> None:
    """axe at both widths in both schemes, one h1, the favicon: anything wrong is added to problems."""
    h1s = page.locator("h1").count()
    if h1s != 1:
        problems.append(f"{name}: {h1s} h1 elements")
    if page.locator("link[rel=icon][href$='/favicon.svg']").count() != 1:
        problems.append(f"{name}: no favicon link")
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            failing = [v for v in axe_violations(page) if v["impact"] in FAILING_IMPACTS]
            if failing:
                problems.append(f"{name} ({scheme}, {width} px):\n{readable(failing)}")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_axe_finds_nothing_serious_on_any_page(watched_page: tuple[Any, PageWatch], user: User) -> None:
    page, watch = watched_page
    record_many(user, 30, models=("gpt-4o", "claude-haiku-4-5"), tags=["nightly"])
    run = make_run(user, name="Rich report", final_output=RICH_MARKDOWN,
                   steps=[{"agentId": "a", "agentName": "Alpha", "output": RICH_MARKDOWN, "stepOrder": 0},
                          {"agentId": "b", "agentName": "Beta", "output": "Plain *text*.", "stepOrder": 1}],
                   tags=["eval"], metadata={"env": "prod"})
    failed = make_run(user, name="Broken", status="failed", error="Timeout: step exceeded 120 s",
                      steps=[{"agentId": "a", "agentName": "Alpha", "output": "partial", "stepOrder": 0}])
    running = start_run(user, pipeline="Code review", input="Review PR #503")
    db.session.commit()
    problems: list[str] = []

    page.goto("/login")
    check_page(page, "login", problems)
    page.goto("/nowhere")
    watch.expect_error("404")
    check_page(page, "404 signed out", problems)

    sign_in(page, user.email)
    page.wait_for_selector("#totals strong")
    check_page(page, "list", problems)
    page.keyboard.press("?")
    page.wait_for_selector("#shortcuts[open]")
    check_page(page, "the shortcuts dialog", problems)
    page.keyboard.press("Escape")
    page.locator("td.pick input").first.check()
    page.click("#selection .delete-selected")
    page.wait_for_selector("#confirm-area .confirm-delete")
    check_page(page, "the list, asking before deleting", problems)
    # The running run's row polls itself; leaving the list may cut a poll short, as a person would.
    watch.expect_error(f"/artifacts/{running.id}/row net::ERR_ABORTED")
    page.goto(f"/artifacts/delete?id={failed.id}")
    check_page(page, "the page asking before deleting a run", problems)

    # Usage: the chart and its tables (runs on 1 June and 1 November 2025), per week by pipeline in
    # tokens, and a refused range, which shows the form with its message.
    page.goto("/usage?from=2025-05-25&to=2025-11-05")
    check_page(page, "usage", problems)
    page.goto("/usage?period=week&by=pipeline&measure=tokens&from=2025-05-01&to=2025-11-30")
    check_page(page, "usage per week by pipeline", problems)
    page.goto("/usage?from=2020-01-01&to=2025-11-30")
    watch.expect_error("400")
    check_page(page, "usage, a refused range", problems)

    page.goto(f"/artifacts/{run.id}?tab=step-1")
    page.wait_for_selector("[role=tabpanel]:not([hidden]) pre")
    check_page(page, "run, a step's tab", problems)
    page.click("[role=tabpanel]:not([hidden]) .view-switch a:has-text('Raw')")
    page.wait_for_selector("[role=tabpanel]:not([hidden]) pre.raw")
    check_page(page, "run, raw view", problems)
    page.goto(f"/artifacts/{failed.id}")
    check_page(page, "failed run", problems)
    page.goto(f"/artifacts/{running.id}")
    check_page(page, "running run", problems)

    # Comparing: the final outputs' diff, a pair of steps with their facts (loaded in place), a step
    # only one run has, and the choice of a second run.
    page.goto(f"/artifacts/compare?a={failed.id}&b={run.id}")
    check_page(page, "comparison", problems)
    page.click("#tab-step-1-1")
    page.wait_for_selector("#panel-step-1-1 .diff")
    check_page(page, "comparison, a pair of steps", problems)
    page.goto(f"/artifacts/compare?a={failed.id}&b={run.id}&tab=step-0-2")
    check_page(page, "comparison, a step only B has", problems)
    page.goto(f"/artifacts/compare?a={run.id}")
    check_page(page, "comparison, choosing the second run", problems)

    page.goto("/settings/tokens")
    page.fill("main input[name=name]", "nightly")
    page.click("main button:has-text('Create token')")
    page.wait_for_selector("#new-token")
    check_page(page, "API tokens", problems)
    page.click("main a.danger:has-text('Revoke')")
    page.wait_for_url(re.compile(r"/settings/tokens/[0-9a-f-]+/revoke$"))
    assert page.locator("main button:has-text('Revoke')").count() == 1  # the confirmation, not yet revoked
    check_page(page, "revoke a token", problems)
    page.goto("/settings/password")
    assert page.locator("h1").inner_text() == "Change password"  # not sent to sign in again
    check_page(page, "change password", problems)
    page.goto("/settings/account")
    check_page(page, "account: retention", problems)
    page.check("input[name=keep][value=days]")
    page.fill("input[name=days]", "0")
    page.click("main button:has-text('Save')")
    watch.expect_error("400")
    page.wait_for_selector("#days-error")
    check_page(page, "account: retention refused", problems)
    page.goto("/settings/account/delete")
    check_page(page, "delete account", problems)
    page.fill("input[name=password]", "not my password")
    page.click("main button:has-text('Delete my account')")
    watch.expect_error("422")
    page.wait_for_selector(".field-error")
    check_page(page, "delete account, a wrong password", problems)

    page.goto("/artifacts/00000000-0000-4000-8000-000000000000")
    check_page(page, "404 signed in", problems)

    assert not problems, "\n\n".join(problems)


# ---------------------------------------------------------------- the keyboard

def focused(page: Any, script: str = "element => element") -> Any:
    """Something about document.activeElement, e.g. focused(page, "e => e.id")."""
    return page.evaluate(f"() => ({script})(document.activeElement)")


FOCUSED_ROW = "e => (e.closest('tr.run-row') || {}).id || null"


def test_the_skip_link_is_the_first_stop_and_lands_on_the_page(watched_page: tuple[Any, PageWatch], user: User) -> None:
    page, _ = watched_page
    record_many(user, 3)
    for path in ("/login", "/artifacts"):
        if path == "/artifacts":
            sign_in(page, user.email)
        else:
            page.goto(path)
        page.keyboard.press("Tab")
        assert focused(page, "e => e.textContent") == "Skip to content"
        box = page.locator(".skip-link").bounding_box()
        assert box is not None and box["y"] >= 0 and box["width"] > 50  # shown while it has focus
        page.keyboard.press("Enter")
        assert focused(page, "e => e.id") == "main"
        page.keyboard.press("Tab")
        assert focused(page, "e => !!e.closest('main')")  # on from the page's start, past the header
        assert page.locator(".skip-link").bounding_box()["y"] < 0  # out of sight again


def test_j_and_k_move_between_runs_and_enter_opens_one(watched_page: tuple[Any, PageWatch], user: User) -> None:
    page, _ = watched_page
    record_many(user, 4)
    sign_in(page, user.email)
    ids = row_ids(page)
    page.keyboard.press("j")
    assert focused(page, FOCUSED_ROW) == f"run-{ids[0]}"
    assert focused(page, "e => e.matches('a.row-link')")
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert focused(page, FOCUSED_ROW) == f"run-{ids[2]}"
    page.keyboard.press("k")
    assert focused(page, FOCUSED_ROW) == f"run-{ids[1]}"
    for _ in range(3):
        page.keyboard.press("k")
    assert focused(page, FOCUSED_ROW) == f"run-{ids[0]}"  # stays on the first
    for _ in range(6):
        page.keyboard.press("j")
    assert focused(page, FOCUSED_ROW) == f"run-{ids[-1]}"  # and on the last
    page.keyboard.press("k")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(re.escape(f"/artifacts/{ids[-2]}") + "$"))


def test_slash_goes_to_the_search_and_no_shortcut_fires_while_typing_or_with_a_modifier(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, _ = watched_page
    record_many(user, 3)
    sign_in(page, user.email)
    page.keyboard.press("/")
    assert focused(page, "e => e.id") == "filter-q"
    assert page.input_value("#filter-q") == ""  # the slash itself is not typed
    page.keyboard.type("j")
    assert page.input_value("#filter-q") == "j" and focused(page, "e => e.id") == "filter-q"
    page.wait_for_url(re.compile(r"q=j"))  # the search ran, as typing does
    page.wait_for_selector("#totals strong")  # and its totals came (leaving sooner would cut them short)
    page.goto("/artifacts")

    # A textarea and an editable region, as a later page may have: every shortcut key is text there.
    page.evaluate("""() => {
      const area = document.createElement("textarea"); area.id = "scratch-area";
      const editable = document.createElement("div"); editable.id = "scratch-editable"; editable.contentEditable = "true";
      document.querySelector("main").prepend(area, editable);
    }""")
    for selector in ("#scratch-area", "#scratch-editable"):
        page.focus(selector)
        page.keyboard.type("jk[]/?")
        assert page.locator(selector).evaluate("e => e.value ?? e.textContent") == "jk[]/?"
        assert focused(page, "e => '#' + e.id") == selector
        assert page.locator("#shortcuts[open]").count() == 0

    page.evaluate("() => document.activeElement.blur()")
    for chord in ("Alt+j", "Control+j", "Alt+/", "Control+/", "Alt+Shift+Slash"):
        page.keyboard.press(chord)
        assert focused(page, "e => e === document.body"), chord
    assert page.locator("#shortcuts[open]").count() == 0


def test_question_mark_lists_the_shortcuts_escape_closes_and_focus_comes_back(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, _ = watched_page
    record_many(user, 3)
    sign_in(page, user.email)
    ids = row_ids(page)
    page.keyboard.press("j")
    page.keyboard.press("?")
    dialog = page.locator("dialog#shortcuts")
    assert dialog.evaluate("d => d.open && d.matches(':modal')")
    assert "Keyboard shortcuts" in dialog.inner_text() and "Next or previous run" in dialog.inner_text()
    assert focused(page, "e => !!e.closest('dialog')")
    page.keyboard.press("j")  # the page behind a modal dialog does not move
    page.keyboard.press("Escape")
    assert not dialog.evaluate("d => d.open")
    assert focused(page, FOCUSED_ROW) == f"run-{ids[0]}"  # back where it was

    # The footer's button does the same for a pointer, and its Close button closes it.
    button = page.locator("#shortcuts-button")
    assert button.is_visible()
    button.click()
    assert dialog.evaluate("d => d.open")
    dialog.locator("button:has-text('Close')").click()
    assert not dialog.evaluate("d => d.open")
    assert focused(page, "e => e.id") == "shortcuts-button"


def selected_tab(page: Any) -> str:
    return page.locator("[role=tablist] [role=tab][aria-selected=true]").inner_text()


def test_brackets_select_the_previous_and_next_step(watched_page: tuple[Any, PageWatch], user: User) -> None:
    page, _ = watched_page
    run = make_run(user)  # the final output and three steps: Researcher, Analyst, Writer
    sign_in(page, user.email)
    page.goto(f"/artifacts/{run.id}")
    assert selected_tab(page) == "Final output"
    page.keyboard.press("[")
    assert selected_tab(page) == "Final output"  # nothing before the first
    for number, agent, text in ((1, "Researcher", "Notes"), (2, "Analyst", "a"), (3, "Writer", "draft")):
        page.keyboard.press("]")
        page.wait_for_url(re.compile(rf"tab=step-{number}$"))
        assert agent in selected_tab(page)
        page.wait_for_function("text => [...document.querySelectorAll('[role=tabpanel]')]"
                               ".some(p => !p.hidden && p.textContent.includes(text))", arg=text)
        assert focused(page, "e => e.getAttribute('role')") == "tab"
    page.keyboard.press("]")
    assert "Writer" in selected_tab(page)  # nothing after the last
    page.keyboard.press("[")
    page.wait_for_url(re.compile(r"tab=step-2$"))
    assert "Analyst" in selected_tab(page)
    # In a field a bracket is left to the field (the run's page has none of its own: one is added).
    page.evaluate("""() => {
      const field = document.createElement("input"); field.id = "scratch-field";
      document.querySelector("main").prepend(field);
    }""")
    page.focus("#scratch-field")
    page.keyboard.press("]")
    assert "Analyst" in selected_tab(page) and page.input_value("#scratch-field") == "]"


# ---------------------------------------------------------------- times

LOCAL_AND_UTC = re.compile(r"^2025-06-01 0[78]:\d\d:\d\d EDT \(2025-06-01 1[12]:\d\d:\d\d UTC\)$")


@pytest.mark.browser_context(timezone_id="America/New_York")
def test_times_are_shown_in_the_browsers_zone_with_utc_on_hover(watched_page: tuple[Any, PageWatch], user: User) -> None:
    page, _ = watched_page
    record_many(user, 30, start=T0)  # 2025-06-01 12:00 UTC onwards: 08:00 in New York (summer time)
    token = tokens.create_token(user, "nightly")[0]
    token.created_at = datetime(2025, 1, 15, 9, 30, 5, tzinfo=timezone.utc)  # winter: 04:30 EST
    db.session.commit()
    sign_in(page, user.email)
    titles = page.eval_on_selector_all("td.when time", "times => times.map(t => t.title)")
    assert len(titles) == 25 and all(LOCAL_AND_UTC.match(title) for title in titles), titles[:3]
    assert page.locator("td.when time").first.inner_text().endswith(" ago")  # a relative time keeps its words

    scroll_to_end(page)  # the rest arrive as htmx fragments, in UTC, and are localized too
    # local_times.js rewrites a fragment's times as it settles: wait for that, not a fixed time.
    page.wait_for_function(
        "() => [...document.querySelectorAll('td.when time')].every(t => !t.title.endsWith(' UTC'))")
    titles = page.eval_on_selector_all("td.when time", "times => times.map(t => t.title)")
    assert len(titles) == 30 and all(LOCAL_AND_UTC.match(title) for title in titles), titles[-3:]

    page.goto("/settings/tokens")
    created = page.locator("td[data-label=Created] time")
    assert created.inner_text() == "2025-01-15 04:30 EST"
    assert created.get_attribute("title") == "2025-01-15 09:30:05 UTC"

    # The run's page: whatever times it shows are local, with UTC on hover.
    page.goto("/artifacts")
    page.click("a.row-link >> nth=0")
    page.wait_for_url(re.compile(r"/artifacts/[0-9a-f-]{36}$"))
    shown = page.eval_on_selector_all("time[datetime]", "times => times.map(t => [t.textContent, t.title])")
    assert shown, "the run's page shows no <time>"
    for text, title in shown:
        assert not text.endswith(" UTC") and title.endswith("UTC"), (text, title)
