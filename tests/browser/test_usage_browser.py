"""The usage page in a real browser: the chart drawn with a bar per period and coloured by the
stylesheet in both schemes, its table's totals the list's, the CSV downloaded, and a phone's width."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from artifacts_app.models import User
from tests.browser.conftest import PageWatch, sign_in
from tests.factories import make_run

RANGE = "from=2025-11-01&to=2025-11-14"

SEGMENT_FILLS = """() => Array.from(document.querySelectorAll('svg.chart rect.segment'))
    .map(rect => getComputedStyle(rect).fill)"""


def seed(user: User) -> None:
    """Runs on four of the fourteen days, three models, one of them unpriced."""
    for day, model, cost in ((1, "gpt-4o", "1.25"), (1, "claude-haiku-4-5", "0.5"), (3, "gpt-4o", "2"),
                             (9, "claude-haiku-4-5", "0.000000000001"), (14, "gpt-4o-mini", "0.75")):
        make_run(user, model=model, completed_at=datetime(2025, 11, day, 12, tzinfo=timezone.utc),
                 usage={"inputTokens": 1000, "outputTokens": 100, "cost": cost})
    make_run(user, model="llama-local", completed_at=datetime(2025, 11, 9, 12, tzinfo=timezone.utc),
             usage={"inputTokens": 5000, "outputTokens": 500})


def test_the_chart_has_a_bar_per_day_and_its_totals_are_the_lists(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, _ = watched_page
    seed(user)
    sign_in(page, user.email, next_path=f"/usage?{RANGE}")  # not via the list: leaving it cuts its totals' load
    assert page.locator("svg.chart g.period").count() == 14
    assert page.locator("#usage-table tbody tr").count() == 14
    assert page.locator("svg.chart g.period[data-period='2025-11-01'] rect.segment").count() == 2
    assert page.locator("svg.chart g.period[data-period='2025-11-02'] rect.segment").count() == 0
    # The chart has a name and a description, and the totals row says what the summary says.
    assert page.locator("svg.chart").get_attribute("aria-labelledby") == "usage-chart-title usage-chart-desc"
    total_cost = page.locator("#usage-total-cost").inner_text()
    assert total_cost == "$4.50"
    assert page.locator("#usage-total-row td.total-cost").inner_text() == total_cost
    assert "1 unpriced run" in page.locator("#usage-totals").inner_text()
    # Each segment takes its series' colour from the stylesheet (the CSP allows no inline style),
    # a different one in the dark scheme.
    light = page.evaluate(SEGMENT_FILLS)
    assert len(light) == 5 and len(set(light)) == 3 and "rgb(0, 0, 0)" not in light
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate(SEGMENT_FILLS)
    assert len(set(dark)) == 3 and set(dark).isdisjoint(light)
    page.emulate_media(color_scheme="light")
    # The list, for the same filters, adds up to the same amount.
    page.click("text=See these runs")
    page.wait_for_selector("#totals strong[title]")
    assert page.locator("#totals strong[title]").inner_text() == total_cost
    assert "from=2025-11-01" in page.url and "to=2025-11-14" in page.url


def test_per_week_by_pipeline_and_the_csv_download(watched_page: tuple[Any, PageWatch], user: User) -> None:
    page, _ = watched_page
    seed(user)
    sign_in(page, user.email, next_path=f"/usage?{RANGE}")  # not via the list: leaving it cuts its totals' load
    page.select_option("select[name=period]", "week")
    page.select_option("select[name=by]", "pipeline")
    page.click("button:has-text('Show')")
    page.wait_for_function("() => document.querySelectorAll('svg.chart g.period').length === 3")
    assert page.locator("#usage-table tbody tr th time").all_inner_texts() == ["2025-W44", "2025-W45", "2025-W46"]
    assert page.locator("#usage-total-cost").inner_text() == "$4.50"
    with page.expect_download() as download:
        page.click("text=Download CSV")
    assert download.value.suggested_filename == "usage-per-week-by-pipeline-20251101-20251114.csv"
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("period,first_day,last_day,pipeline,runs") and len(lines) == 4


def test_at_375_px_the_chart_fits_and_the_table_scrolls_in_its_own_box(
    watched_page: tuple[Any, PageWatch], user: User
) -> None:
    page, _ = watched_page
    seed(user)
    page.set_viewport_size({"width": 375, "height": 800})
    sign_in(page, user.email, next_path=f"/usage?{RANGE}")  # not via the list: leaving it cuts its totals' load
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375  # the page itself never scrolls sideways
    chart = page.locator("svg.chart").bounding_box()
    assert chart is not None and chart["width"] <= 375 and chart["height"] > 100
    scroller = page.locator(".table-scroll").first
    assert scroller.evaluate("box => box.scrollWidth > box.clientWidth")
    assert scroller.get_attribute("tabindex") == "0"  # the keyboard can scroll it too
    # Every other day label steps aside on a phone, so the ones left stay legible.
    shown = page.evaluate("""() => Array.from(document.querySelectorAll('svg.chart .period-labels text'))
        .filter(label => getComputedStyle(label).display !== 'none').length""")
    assert 0 < shown < page.locator("svg.chart .period-labels text").count()
