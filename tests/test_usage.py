"""The usage page (/usage) and its CSV: sums per UTC day or ISO week by model or pipeline, the list's
filters and totals, unpriced runs apart, the range bounded, one grouped query, other users unseen."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from html import unescape
from typing import Any
from urllib.parse import parse_qsl

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from artifacts_app import queries
from artifacts_app.artifacts.exports import FORMULA_STARTS
from artifacts_app.extensions import db
from artifacts_app.models import User
from artifacts_app.paging import parse_filters
from artifacts_app.usage import chart, query, views
from artifacts_app.usage.query import Usage, usage_groups
from artifacts_app.usage.report import MAX_SERIES, Report, build, usage_request
from tests.factories import make_run, make_user, record_many, start_run
from tests.test_csv_injection import HOSTILE_NAMES
from tests.test_list import captured_sql

HX = {"HX-Request": "true"}
NOV = "from=2025-11-01&to=2025-11-30"


def at(day: str, clock: str = "12:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}:00+00:00")


def priced(user: User, day: str, cost: str, clock: str = "12:00", **fields: Any) -> None:
    """A completed run at that UTC time with a provider-reported cost (exact, to the 12th place)."""
    tokens = fields.pop("tokens", (100, 10))
    make_run(user, completed_at=at(day, clock),
             usage={"inputTokens": tokens[0], "outputTokens": tokens[1], "cost": cost}, **fields)


def unpriced(user: User, day: str, tokens: tuple[int, int] = (700, 70), **fields: Any) -> None:
    """A completed run of a model without a price: stored unpriced, never $0."""
    make_run(user, completed_at=at(day), model=fields.pop("model", "llama-local"),
             usage={"inputTokens": tokens[0], "outputTokens": tokens[1]}, **fields)


def report(user: User, query_string: str, today: date = date(2025, 11, 30)) -> Report:
    """What the page computes for that query string."""
    args = MultiDict(parse_qsl(query_string, keep_blank_values=True))
    asked = usage_request(args, parse_filters(args), today)
    return build(asked, usage_groups(user, asked.filters, asked.period, asked.by))


def page(client: FlaskClient, query_string: str = "", status: int = 200) -> str:
    response = client.get(f"/usage?{query_string}")
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def csv_rows(client: FlaskClient, query_string: str) -> list[dict[str, str]]:
    response = client.get(f"/usage/export.csv?{query_string}")
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True), newline="")))


def cells(html: str, row_id: str) -> list[str]:
    """The text of each cell of one table row, tags and spacing dropped."""
    row = re.search(rf'<tr (?:id|data-period)="{re.escape(row_id)}">(.*?)</tr>', html, re.S)
    assert row, row_id
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split())
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(1), re.S)]


# ---------------------------------------------------------------- grouping


def test_days_are_utc_days_and_each_model_is_summed_apart(app: Flask, user: User) -> None:
    priced(user, "2025-11-01", "0.100000000001", clock="23:59", model="gpt-4o")
    priced(user, "2025-11-02", "0.200000000002", clock="00:00", model="gpt-4o")
    priced(user, "2025-11-02", "0.000000000003", clock="13:00", model="gpt-4o-mini")
    priced(user, "2025-11-02", "1.5", clock="23:00", model="gpt-4o-mini")
    groups = {(g.period, g.key): g.usage for g in usage_groups(user, parse_filters(MultiDict()), "day", "model")}
    assert set(groups) == {(date(2025, 11, 1), "gpt-4o"), (date(2025, 11, 2), "gpt-4o"), (date(2025, 11, 2), "gpt-4o-mini")}
    assert groups[(date(2025, 11, 1), "gpt-4o")].cost == Decimal("0.100000000001")
    assert groups[(date(2025, 11, 2), "gpt-4o-mini")] == Usage(
        runs=2, priced_runs=2, input_tokens=200, output_tokens=20, cost=Decimal("1.500000000003"))
    assert all(isinstance(usage.cost, Decimal) for usage in groups.values())


@pytest.mark.postgres_only
def test_days_stay_utc_whatever_the_sessions_time_zone(app: Flask, user: User) -> None:
    priced(user, "2025-11-01", "1", clock="23:30")
    db.session.execute(sa.text("SET TIME ZONE 'Pacific/Kiritimati'"))  # UTC+14: the next day there
    groups = usage_groups(user, parse_filters(MultiDict()), "day", "model")
    assert [g.period for g in groups] == [date(2025, 11, 1)]
    assert [g.period for g in usage_groups(user, parse_filters(MultiDict()), "week", "model")] == [date(2025, 10, 27)]


def test_weeks_are_iso_weeks_starting_on_monday(app: Flask, user: User) -> None:
    priced(user, "2025-11-02", "1", clock="23:59")  # a Sunday: the week of Monday 27 October
    priced(user, "2025-11-03", "2", clock="00:00")  # Monday
    priced(user, "2025-11-09", "4", clock="23:59")  # the Sunday after
    priced(user, "2025-12-29", "8")  # Monday of ISO week 2026-W01
    priced(user, "2026-01-04", "16")  # its Sunday
    made = report(user, "period=week&from=2025-10-29&to=2026-01-04")
    assert [(p.name, p.first, p.last, p.partial) for p in made.periods][:2] == [
        ("2025-W44", date(2025, 10, 29), date(2025, 11, 2), True),
        ("2025-W45", date(2025, 11, 3), date(2025, 11, 9), False),
    ]
    assert made.periods[-1].name == "2026-W01" and made.periods[-1].start == date(2025, 12, 29)
    costs = {p.name: made.period_total(p).cost for p in made.periods if made.period_total(p).runs}
    assert costs == {"2025-W44": Decimal(1), "2025-W45": Decimal(6), "2026-W01": Decimal(24)}
    assert len(made.periods) == 10 and made.total.cost == Decimal(31)


def test_by_pipeline_sums_each_pipeline_and_no_model_has_a_name(app: Flask, user: User) -> None:
    priced(user, "2025-11-03", "1", pipeline="Triage", model="gpt-4o")
    priced(user, "2025-11-03", "2", pipeline="Triage", model="claude-haiku-4-5")
    priced(user, "2025-11-04", "4", pipeline="Briefs", model=None)
    by_pipeline = report(user, f"by=pipeline&{NOV}")
    assert [(item.key, item.usage.cost, item.usage.runs) for item in by_pipeline.by_key] == [
        ("Briefs", Decimal(4), 1), ("Triage", Decimal(3), 2)]
    by_model = report(user, NOV)
    assert [item.label for item in by_model.by_key] == ["No model", "claude-haiku-4-5", "gpt-4o"]


def test_past_seven_series_the_smallest_are_added_up_as_other(app: Flask, user: User) -> None:
    for number in range(10):
        priced(user, "2025-11-05", f"{number + 1}", model=f"model-{number}")
    made = report(user, NOV)
    assert [s.label for s in made.series] == [*(f"model-{n}" for n in range(9, 2, -1)), "Other (3 models)"]
    assert made.series[-1].other and made.series[-1].usage.cost == Decimal(1 + 2 + 3)
    assert made.series[-1].colour == "series-other" and made.series[0].colour == "series-0"
    assert len(made.by_key) == 10  # the second table and the CSV keep every model
    exactly_eight = report(user, f"{NOV}&model=model-{'&model=model-'.join(str(n) for n in range(8))}")
    assert not any(s.other for s in exactly_eight.series) and len(exactly_eight.series) == MAX_SERIES + 1


# ---------------------------------------------------------------- the list's filters and totals


def varied_runs(user: User) -> None:
    """Runs of every kind across pipelines, models, statuses, tags, metadata, days and users."""
    priced(user, "2025-11-01", "0.123456789012", pipeline="Briefs", model="gpt-4o-2024-08-06", tags=["nightly"],
           metadata={"env": "prod"}, input="solid-state batteries")
    priced(user, "2025-11-02", "0.000000000001", pipeline="Briefs", model="gpt-4o", tags=["nightly", "eval"])
    priced(user, "2025-11-02", "2.5", pipeline="Triage", model="gpt-4o-mini", metadata={"env": "dev"})
    priced(user, "2025-11-15", "0.333333333333", pipeline="Triage", model="claude-haiku-4-5", status="failed",
           error="Timeout", tags=["eval"])
    priced(user, "2025-11-30", "7.000000000009", pipeline="Reviews", model="claude-haiku-4-5",
           input="batteries and more")
    priced(user, "2025-10-31", "100", pipeline="Briefs", model="gpt-4o")  # the day before the range
    unpriced(user, "2025-11-03", pipeline="Briefs", tags=["nightly"])
    unpriced(user, "2025-11-20", pipeline="Triage", status="failed", error="boom")
    start_run(user, pipeline="Briefs", input="still going", model="gpt-4o")
    db.session.commit()


FILTER_COMBINATIONS = [
    "",
    "pipeline=Briefs",
    "model=gpt-4o",  # a family: the dated snapshot too
    "status=failed",
    "status=running",
    "pipeline=Briefs&pipeline=Triage&model=claude-haiku-4-5",
    "tag=nightly",  # the list adds these up over the runs, not the rollups
    "tag=nightly&tag=eval",
    "meta.env=prod",
    "q=batteries",
    "from=2025-11-02&to=2025-11-02",
    "pipeline=Triage&status=completed&from=2025-11-01&to=2025-11-15",
]


@pytest.mark.parametrize("filters", FILTER_COMBINATIONS)
def test_totals_agree_with_the_lists_for_the_same_filters(signed_in: FlaskClient, user: User, filters: str) -> None:
    varied_runs(user)
    today = datetime.now(timezone.utc).date().isoformat()
    # November per day; per week on to today, where the open run is.
    for period, by, dates in (("day", "model", NOV), ("week", "pipeline", f"from=2025-11-01&to={today}")):
        query_string = filters if "from=" in filters else "&".join(part for part in (filters, dates) if part)
        made = report(user, f"{query_string}&period={period}&by={by}", today=date.fromisoformat(today))
        expected = queries.run_totals(user, made.request.filters)
        assert made.total.as_totals() == expected  # to the 10^-12 dollar, runs, tokens, unpriced and open
        html = page(signed_in, f"{query_string}&period={period}&by={by}")
        # The page's own link to the list, and the list's totals for it, say the same amount exactly.
        list_link = unescape(re.search(r'<a href="([^"]+)">See these runs</a>', html).group(1))
        totals = signed_in.get(list_link.replace("/artifacts?", "/artifacts/totals?", 1), headers=HX)
        list_cost = re.search(r'<strong title="(\$[^"]+)">', totals.get_data(as_text=True)).group(1)
        page_cost = re.search(r'<strong title="(\$[^"]+)" id="usage-total-cost">', html).group(1)
        assert Decimal(page_cost[1:]) == Decimal(list_cost[1:]) == expected.cost
        if made.total.runs:
            assert cells(html, "usage-total-row")[-2].startswith(("$", "unpriced", "running"))


def test_filters_narrow_what_is_summed(signed_in: FlaskClient, user: User) -> None:
    varied_runs(user)
    made = report(user, f"{NOV}&pipeline=Triage")
    assert {item.key for item in made.by_key} == {"gpt-4o-mini", "claude-haiku-4-5", "llama-local"}
    html = page(signed_in, f"{NOV}&pipeline=Triage")
    assert "gpt-4o-2024-08-06" not in html.split('id="usage-totals"')[1]
    assert 'name="pipeline" value="Triage" checked' in html  # the form shows the filter in force
    tagged = report(user, f"{NOV}&tag=eval&by=pipeline")
    assert {item.key: item.usage.runs for item in tagged.by_key} == {"Briefs": 1, "Triage": 1}


def test_unpriced_runs_are_counted_apart_with_their_tokens_never_as_zero(signed_in: FlaskClient, user: User) -> None:
    priced(user, "2025-11-03", "1.25", model="gpt-4o", tokens=(1000, 100))
    unpriced(user, "2025-11-03", tokens=(700, 70))
    unpriced(user, "2025-11-04", tokens=(5, 0))
    made = report(user, NOV)
    assert (made.total.unpriced_runs, made.total.unpriced_input_tokens, made.total.unpriced_output_tokens) == (2, 705, 70)
    assert made.total.cost == Decimal("1.25") and made.total.tokens == 1875
    html = page(signed_in, NOV)
    assert "2 unpriced runs" in html and "775</span> tokens), not in the cost" in html
    # The local model's cells say "unpriced", never $0.00; the day it ran alone too.
    assert cells(html, "2025-11-04")[1:] == ["—", "unpriced", "1", "5 / 0", "unpriced", "1 5 tokens"]
    by_model = re.search(r'id="usage-by-key-table".*?</table>', html, re.S).group(0)
    assert re.search(r"llama-local</th>\s*<td class=\"num\">2</td>.*?unpriced", by_model, re.S)
    rows = {row["model"]: row for row in csv_rows(signed_in, NOV) if row["period"] == "2025-11-04"}
    assert rows["llama-local"]["cost"] == "" and rows["llama-local"]["unpriced_input_tokens"] == "5"


def test_open_runs_are_counted_but_not_priced(signed_in: FlaskClient, user: User) -> None:
    start_run(user, pipeline="Live", input="going", model="gpt-4o")
    db.session.commit()
    html = page(signed_in)
    assert "1 running, not priced yet" in html and "unpriced run" not in html


def test_another_users_runs_never_appear(signed_in: FlaskClient, user: User) -> None:
    stranger = make_user("stranger@example.com")
    priced(stranger, "2025-11-03", "999", pipeline="Secret pipeline", model="secret-model")
    unpriced(stranger, "2025-11-03", model="secret-local")
    priced(user, "2025-11-03", "1", pipeline="Mine", model="gpt-4o")
    for by in ("model", "pipeline"):
        html = page(signed_in, f"{NOV}&by={by}")
        assert "Secret" not in html and "secret" not in html and "$999" not in html
        assert "$1.00" in html
        text = signed_in.get(f"/usage/export.csv?{NOV}&by={by}").get_data(as_text=True)
        assert "ecret" not in text and "999" not in text
    # Asking for the stranger's pipeline by name finds nothing of theirs.
    assert report(user, f"{NOV}&pipeline=Secret pipeline").total.runs == 0
    assert "No runs in this range" in page(signed_in, f"{NOV}&pipeline=Secret+pipeline")


# ---------------------------------------------------------------- the page


def test_the_page_has_a_chart_with_a_bar_per_period_a_summary_and_its_table(signed_in: FlaskClient, user: User) -> None:
    priced(user, "2025-11-03", "1.5", model="gpt-4o")
    priced(user, "2025-11-03", "0.25", model="claude-haiku-4-5")
    priced(user, "2025-11-10", "2", model="claude-haiku-4-5")
    html = page(signed_in, NOV)
    assert html.count('<g class="period"') == 30 and html.count("<tr data-period=") == 30
    assert re.search(r'<svg class="chart" viewBox="0 0 800 360" role="img"\s+aria-labelledby="usage-chart-title '
                     r'usage-chart-desc"', html)
    assert '<title id="usage-chart-title">Cost per day by model, 2025-11-01 to 2025-11-30</title>' in html
    desc = re.search(r'<desc id="usage-chart-desc">(.*?)</desc>', html).group(1)
    assert "Total $3.75 over 3 runs" in desc and "Highest: 2025-11-10, $2.00" in desc
    assert "Largest model: claude-haiku-4-5, $2.25 (60.0%)" in desc
    assert 'style=' not in html  # the CSP allows no inline style
    assert cells(html, "usage-total-row") == ["Total", "$2.25", "$1.50", "3", "300 / 30", "$3.75", "—"]
    assert cells(html, "2025-11-03")[:3] == ["2025-11-03 Mon", "$0.25", "$1.50"]
    assert '<a href="/usage">Usage</a>' in html  # in the site's navigation
    tokens = page(signed_in, f"{NOV}&measure=tokens")
    assert "Tokens per day by model" in tokens and cells(tokens, "usage-total-row")[1:3] == ["220", "110"]


def test_without_dates_it_shows_the_last_30_days_or_12_weeks(
    signed_in: FlaskClient, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "utcnow", lambda: datetime(2025, 11, 30, 15, tzinfo=timezone.utc))
    priced(user, "2025-11-01", "1")
    priced(user, "2025-10-31", "2")  # the 31st day back: outside
    html = page(signed_in)
    assert 'name="from" value="2025-11-01"' in html and 'name="to" value="2025-11-30"' in html
    assert html.count('<g class="period"') == 30 and 'id="usage-total-cost">$1.00<' in html
    weeks = page(signed_in, "period=week")
    assert weeks.count('<g class="period"') == 12 and 'name="from" value="2025-09-08"' in weeks  # a Monday
    assert 'id="usage-total-cost">$3.00<' in weeks
    only_from = page(signed_in, "from=2025-11-20")
    assert 'name="to" value="2025-11-30"' in only_from


def test_no_runs_in_range_says_so_without_a_chart(signed_in: FlaskClient, user: User) -> None:
    priced(user, "2025-11-03", "1")
    html = page(signed_in, "from=2024-01-01&to=2024-01-31")
    assert "No runs in this range" in html and "<svg" not in html and 'id="usage-total-cost">$0.00<' in html


# ---------------------------------------------------------------- bounds and bad input


@pytest.mark.parametrize(("query_string", "field", "message"), [
    ("from=2025-13-01", "from", "from must be a date like 2025-11-30"),
    ("to=yesterday", "to", "to must be a date like 2025-11-30"),
    ("from=2025-11-05&to=2025-11-01", "to", "from must not be after to"),
    ("period=month", "period", "period must be one of day, week"),
    ("by=agent", "by", "by must be one of model, pipeline"),
    ("measure=dollars", "measure", "measure must be one of cost, tokens"),
    ("from=2024-01-01&to=2025-01-01", "from", "the range spans 367 days; per day shows at most 366"),
    ("period=week&from=2023-01-02&to=2024-12-31", "from", "the range spans 105 weeks; per week shows at most 104"),
    ("status=lost", "status", "status must be one of"),
    ("meta.b%20d=x", "meta.b d", "meta.b d: a metadata key uses only"),
])
def test_bad_input_is_a_clear_400_page_never_a_500(
    signed_in: FlaskClient, user: User, query_string: str, field: str, message: str
) -> None:
    make_run(user)
    html = page(signed_in, query_string, status=400)
    assert "Usage could not be shown: " + message in html and "<form" in html and "<svg" not in html
    if not field.startswith("meta."):  # every other parameter has a field the message sits beside
        assert re.search(rf'<span id="error-{re.escape(field)}" class="field-error" role="alert">{re.escape(message)}', html)
    response = signed_in.get(f"/usage/export.csv?{query_string}")
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert response.mimetype == "text/html"


def test_the_longest_ranges_are_allowed(signed_in: FlaskClient, user: User) -> None:
    make_run(user, completed_at=at("2024-06-01"))
    days = page(signed_in, "from=2024-01-01&to=2024-12-31")  # 2024 had 366 days
    assert days.count('<g class="period"') == 366
    weeks = page(signed_in, "period=week&from=2023-01-02&to=2024-12-29")
    assert weeks.count('<g class="period"') == 104


def test_too_many_period_and_model_pairs_is_a_400_that_says_why(
    signed_in: FlaskClient, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(query, "MAX_GROUPS", 2)
    for model in ("a-model", "b-model", "c-model"):
        priced(user, "2025-11-03", "1", model=model)
    html = page(signed_in, NOV, status=400)
    assert "more than 2 model and day pairs match" in html
    assert page(signed_in, f"{NOV}&model=a-model&model=b-model").count('<g class="period"') == 30


def test_signed_out_the_page_and_its_csv_go_to_the_login(client: FlaskClient) -> None:
    for path in ("/usage", "/usage/export.csv"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


# ---------------------------------------------------------------- one query, no artifact


def test_the_sums_are_one_grouped_query_that_reads_no_artifact(signed_in: FlaskClient, user: User) -> None:
    def run_statements() -> list[str]:
        with captured_sql() as statements:
            assert signed_in.get(f"/usage?{NOV}&by=pipeline&tag=eval").status_code == 200
            assert signed_in.get(f"/usage/export.csv?{NOV}").status_code == 200
        return [sql for sql in statements if "pipeline_runs" in sql]

    priced(user, "2025-11-03", "1", tags=["eval"])
    with_one = run_statements()
    record_many(user, 40, start=at("2025-11-04"), tags=["eval"], models=("gpt-4o", "claude-haiku-4-5", "x-local"))
    with_many = run_statements()
    assert len(with_one) == len(with_many) == 2, with_many  # one per request, whatever the number of runs
    assert all("GROUP BY" in sql for sql in with_many)
    assert not [sql for sql in with_many if "artifact_data" in sql or "final_output" in sql
                or re.search(r"pipeline_runs\.input\b", sql)]


# ---------------------------------------------------------------- CSV


def test_csv_has_a_line_per_period_and_model_with_exact_numbers(signed_in: FlaskClient, user: User) -> None:
    priced(user, "2025-11-03", "0.000000000007", model="gpt-4o", tokens=(3, 4))
    priced(user, "2025-11-03", "1.1", model="gpt-4o", tokens=(10, 20))
    unpriced(user, "2025-11-10", tokens=(5, 6))
    response = signed_in.get(f"/usage/export.csv?{NOV}&period=week")
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="usage-per-week-by-model-20251101-20251130.csv"'
    text = response.get_data(as_text=True)
    assert text.splitlines()[0] == ("period,first_day,last_day,model,runs,priced_runs,input_tokens,output_tokens,cost,"
                                    "unpriced_runs,unpriced_input_tokens,unpriced_output_tokens,open_runs")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert rows == [
        {"period": "2025-W45", "first_day": "2025-11-03", "last_day": "2025-11-09", "model": "gpt-4o", "runs": "2",
         "priced_runs": "2", "input_tokens": "13", "output_tokens": "24", "cost": "1.100000000007",
         "unpriced_runs": "0", "unpriced_input_tokens": "0", "unpriced_output_tokens": "0", "open_runs": "0"},
        {"period": "2025-W46", "first_day": "2025-11-10", "last_day": "2025-11-16", "model": "llama-local", "runs": "1",
         "priced_runs": "0", "input_tokens": "5", "output_tokens": "6", "cost": "",
         "unpriced_runs": "1", "unpriced_input_tokens": "5", "unpriced_output_tokens": "6", "open_runs": "0"},
    ]
    by_pipeline = csv_rows(signed_in, f"{NOV}&by=pipeline")
    assert {row["pipeline"] for row in by_pipeline} == {"Research brief"}
    assert sum(Decimal(row["cost"] or 0) for row in by_pipeline) == report(user, NOV).total.cost


def test_csv_cells_are_inert_for_hostile_model_and_pipeline_names(signed_in: FlaskClient, user: User) -> None:
    for name in HOSTILE_NAMES:
        priced(user, "2025-11-03", "1", pipeline=name, model=name)
    for by in ("model", "pipeline"):
        rows = csv_rows(signed_in, f"{NOV}&by={by}")
        assert len(rows) == len(HOSTILE_NAMES)
        for row in rows:
            for value in row.values():
                assert not value.startswith(FORMULA_STARTS), value
        if by == "model":  # pipeline names are stored stripped, so only some of those need the quote
            assert all(row[by].startswith("'") for row in rows)


# ---------------------------------------------------------------- the chart's arithmetic


def test_the_value_axis_is_round_and_covers_the_largest_bar() -> None:
    assert chart.axis(Decimal("3.75"), "cost") == (Decimal(4), [Decimal(n) for n in range(5)])
    assert chart.axis(Decimal("0.0004"), "cost") == (Decimal("0.01"), [Decimal(0), Decimal("0.01")])
    top, ticks = chart.axis(Decimal("12.3"), "cost")
    assert top == Decimal(15) and ticks == [Decimal(0), Decimal(5), Decimal(10), Decimal(15)]
    assert chart.axis(3, "tokens") == (Decimal(3), [Decimal(0), Decimal(1), Decimal(2), Decimal(3)])
    assert chart.axis(0, "tokens") == (Decimal(1), [Decimal(0), Decimal(1)])
    assert [chart.axis_label(v, "cost") for v in (Decimal(0), Decimal("0.5"), Decimal(2), Decimal(2000))] == [
        "$0", "$0.50", "$2", "$2K"]
    assert chart.units(Decimal("12.345")) == "12.35" and chart.units(Decimal("7.00")) == "7"


def test_stacked_segments_meet_and_the_tallest_bar_fits(app: Flask, user: User) -> None:
    priced(user, "2025-11-03", "1", model="a-model")
    priced(user, "2025-11-03", "2", model="b-model")
    priced(user, "2025-11-04", "0.5", model="a-model")
    drawn = chart.draw(report(user, "from=2025-11-03&to=2025-11-04"))
    first = drawn.bars[0].segments
    assert [s.colour for s in first] == ["series-0", "series-1"]  # the largest at the bottom
    # The lower segment's top is the upper one's bottom, exactly; together 3 of the axis' 3.
    assert Decimal(first[1].y) + Decimal(first[1].height) == Decimal(first[0].y)
    assert Decimal(first[0].y) + Decimal(first[0].height) == chart.BASELINE
    assert Decimal(first[1].y) == chart.TOP
    assert "2025-11-03 · b-model: $2.00" in first[0].title
