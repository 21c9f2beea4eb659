"""The usage page and its CSV: the list's filters over a bounded range of UTC days or ISO weeks."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from flask import Response, make_response, render_template, request, url_for
from flask_login import current_user

from ..artifacts.exports import inert_row
from ..artifacts.list_views import filter_menus
from ..errors import error_response
from ..paging import BadListRequest, parse_filters
from ..types import utcnow
from . import bp, query
from .chart import draw
from .query import GROUPS, PERIODS, TooManyGroups, usage_groups
from .report import DEFAULT_DAYS, MEASURES, Report, UsageRequest, build, monday, usage_request

TEMPLATE = "usage/index.html"
CHOICES = ("period", "by", "measure")
LABELS = {"day": "Day", "week": "Week", "model": "Model", "pipeline": "Pipeline", "cost": "Cost", "tokens": "Tokens"}
TOO_MANY = "more than {most:,} {by} and {period} pairs match; choose a shorter range, per week, or fewer {by}s"


def report_for(args: Any) -> Report:
    """Parse the request (the list's filters, then the range, period, grouping and measure) and sum it
    up; a bad or too large request is a BadListRequest."""
    parsed = usage_request(args, parse_filters(args), utcnow().date())
    try:
        groups = usage_groups(current_user, parsed.filters, parsed.period, parsed.by)
    except TooManyGroups:
        message = TOO_MANY.format(most=query.MAX_GROUPS, by=parsed.by, period=parsed.period)
        raise BadListRequest(message, "from") from None
    return build(parsed, groups)


def presets(chosen: UsageRequest | None) -> list[dict[str, Any]]:
    """Ranges to one click: the last 7, 30 and 90 days, or 12, 26 and 52 weeks, to today (UTC)."""
    today = utcnow().date()
    period = chosen.period if chosen else PERIODS[0]
    spans = ((7, 30, 90) if period == "day" else (12, 26, 52))
    links = []
    for span in spans:
        start = today - timedelta(days=span - 1) if period == "day" else monday(today) - timedelta(weeks=span - 1)
        params: dict[str, Any] = chosen.as_params() if chosen else {}
        params.update({"from": start.isoformat(), "to": today.isoformat()})
        links.append({
            "label": f"{span} {period}s", "url": url_for("usage.index", **params),
            "current": chosen is not None and (chosen.start, chosen.end) == (start, today),
        })
    return links


def form_context(values: dict[str, list[str]], chosen: UsageRequest | None) -> dict[str, Any]:
    """The filter form: the list's menus (from the facets), the usage choices, the values shown."""
    return {
        "values": values,
        "menus": filter_menus(values),
        "choices": {"period": PERIODS, "by": GROUPS, "measure": MEASURES},
        "labels": LABELS,
        "presets": presets(chosen),
        "default_days": DEFAULT_DAYS,
        # meta.KEY filters have no field of their own: kept as hidden inputs, shown as chips.
        "metadata": [(name.removeprefix("meta."), given[0]) for name, given in values.items()
                     if name.startswith("meta.") and given],
    }


def given_values() -> dict[str, list[str]]:
    return {name: [value for value in request.args.getlist(name) if value] for name in request.args}


@bp.errorhandler(BadListRequest)
def bad_usage_request(error: BadListRequest) -> Response:
    """A bad filter, date, choice or range is the person's 400: the page shows the form, with the
    message beside the field at fault; the CSV gets the error page."""
    if request.endpoint != "usage.index":
        return error_response(400, str(error))
    html = render_template(TEMPLATE, report=None, chart=None, error=str(error), error_field=error.field,
                           **form_context(given_values(), None))
    return make_response(html, 400)


@bp.get("/usage")
def index() -> str:
    """Cost and tokens per day or week, by model or pipeline: a chart, its table and the totals."""
    report = report_for(request.args)
    chosen = report.request
    values = {**given_values(), "from": [chosen.start.isoformat()], "to": [chosen.end.isoformat()]}
    unfiltered = {name: value for name, value in chosen.as_params().items() if name in CHOICES}
    return render_template(
        TEMPLATE, report=report, chart=draw(report) if report.total.runs else None, error=None, error_field="",
        list_url=url_for("artifacts.index", **dict[str, Any](chosen.filters.as_params())),
        csv_url=url_for("usage.export_csv", **dict[str, Any](chosen.as_params())),
        clear_url=url_for("usage.index", **dict[str, Any](unfiltered)),
        **form_context(values, chosen),
    )


CSV_HEADER = ("period", "first_day", "last_day", "{by}", "runs", "priced_runs", "input_tokens", "output_tokens",
              "cost", "unpriced_runs", "unpriced_input_tokens", "unpriced_output_tokens", "open_runs")


def csv_text(report: Report) -> str:
    """One line per period and model (or pipeline) that has runs, every one (no "Other"), oldest
    first; cost is exact and empty where none of the runs is priced (never a $0 for unpriced ones)."""
    chosen = report.request
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([name.format(by=chosen.by) for name in CSV_HEADER])
    for period in report.periods:
        for item in report.by_key:
            usage = report.key_cells.get((period.start, item.key))
            if usage is None:
                continue
            writer.writerow(inert_row((
                period.name, period.first.isoformat(), period.last.isoformat(), item.key, usage.runs,
                usage.priced_runs, usage.input_tokens, usage.output_tokens,
                format(usage.cost, "f") if usage.priced_runs else "", usage.unpriced_runs,
                usage.unpriced_input_tokens, usage.unpriced_output_tokens, usage.open_runs,
            )))
    return buffer.getvalue()


@bp.get("/usage/export.csv")
def export_csv() -> Response:
    """The usage page's numbers as CSV, each cell inert (no spreadsheet formulas)."""
    report = report_for(request.args)
    chosen = report.request
    response = Response(csv_text(report), mimetype="text/csv")
    filename = f"usage-per-{chosen.period}-by-{chosen.by}-{chosen.start:%Y%m%d}-{chosen.end:%Y%m%d}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
