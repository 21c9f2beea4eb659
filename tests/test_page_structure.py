"""What every page shares, read from the HTML: a skip link first, landmarks, one h1, the favicon, the
shortcuts dialog; the 404 that offers a way back; times written as <time> in UTC for local_times.js."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest
from flask.testing import FlaskClient
from markupsafe import Markup

from artifacts_app import tokens
from artifacts_app.extensions import db
from artifacts_app.formatting import relative_time_tag, time_tag
from artifacts_app.models import User
from tests.factories import make_run

HX = {"HX-Request": "true"}
MISSING_RUN = "/artifacts/00000000-0000-4000-8000-000000000000"
FOCUSABLE = {"a", "button", "input", "select", "textarea", "summary"}


class Outline(HTMLParser):
    """The tags that matter here, in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.first_focusable: tuple[str, dict[str, str | None]] | None = None
        self.in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "body":
            self.in_body = True
        hidden_input = tag == "input" and attributes.get("type") == "hidden"
        if self.in_body and self.first_focusable is None and tag in FOCUSABLE and not hidden_input:
            self.first_focusable = (tag, attributes)

    def count(self, tag: str) -> int:
        return sum(1 for name, _ in self.tags if name == tag)


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    return parser


def assert_page_structure(html: str, *, signed_in: bool) -> Outline:
    page = outline(html)
    assert page.count("h1") == 1, re.findall(r"<h1.*?</h1>", html, re.S)
    tag, attributes = page.first_focusable or ("", {})
    assert (tag, attributes.get("href"), attributes.get("class")) == ("a", "#main", "skip-link")
    assert ("main", {"id": "main", "tabindex": "-1", "class": attributes_of(page, "main").get("class")}) in page.tags
    assert page.count("header") >= 1 and page.count("footer") == 1 and page.count("main") == 1
    icons = [a for name, a in page.tags if name == "link" and a.get("rel") == "icon"]
    assert [a.get("href") for a in icons] == ["/static/favicon.svg"]
    scripts = [a.get("src") for name, a in page.tags if name == "script"]
    assert "/static/shortcuts.js" in scripts and "/static/local_times.js" in scripts
    assert (page.count("dialog") == 1) is signed_in  # the shortcuts only where they do something
    return page


def attributes_of(page: Outline, tag: str) -> dict[str, str | None]:
    return next(attributes for name, attributes in page.tags if name == tag)


def test_signed_out_pages_have_the_skip_link_landmarks_one_h1_and_the_icon(client: FlaskClient) -> None:
    for path in ("/login",):
        response = client.get(path)
        assert response.status_code == 200
        assert_page_structure(response.get_data(as_text=True), signed_in=False)


def test_signed_in_pages_have_the_skip_link_landmarks_one_h1_and_the_icon(signed_in: FlaskClient, user: User) -> None:
    run = make_run(user, final_output="# A heading from the model\n\nText.")
    other = make_run(user, final_output="# Another heading\n\nText.")
    for path in ("/artifacts", f"/artifacts/{run.id}", "/settings/tokens", "/settings/password", "/settings/account",
                 "/settings/account/delete",
                 "/usage?from=2025-11-01&to=2025-11-30", "/usage?from=2024-01-01&to=2024-01-31",
                 f"/artifacts/compare?a={run.id}", f"/artifacts/compare?a={run.id}&b={other.id}"):
        response = signed_in.get(path)
        assert response.status_code == 200, path
        assert_page_structure(response.get_data(as_text=True), signed_in=True)


def test_a_404_signed_out_offers_the_sign_in_and_the_runs(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    page = assert_page_structure(html, signed_in=False)
    assert "<title>Page not found · Artifacts</title>" in html
    assert re.search(r"<h1>Page not found</h1>", html)
    links = [a.get("href") for name, a in page.tags if name == "a"]
    assert "/login" in links and "/artifacts" in links
    assert "Error 404" in html


def test_a_404_signed_in_leads_back_to_the_runs(signed_in: FlaskClient) -> None:
    response = signed_in.get(MISSING_RUN)
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert_page_structure(html, signed_in=True)
    assert '<a href="/artifacts">Back to your runs</a>' in html
    assert 'href="/login"' not in html


def test_a_404_fragment_for_htmx_stays_a_fragment_without_an_h1(signed_in: FlaskClient) -> None:
    response = signed_in.get(f"{MISSING_RUN}?tab=final", headers=HX)
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "<html" not in html and "<h1" not in html
    assert 'role="alert"' in html and "<h2>Page not found</h2>" in html
    assert "HX-Request" in response.headers.get("Vary", "")


def test_a_404_from_the_api_is_still_json(signed_in: FlaskClient) -> None:
    response = signed_in.get("/api/v1/runs/00000000-0000-4000-8000-000000000000")
    assert response.status_code in (401, 404)
    assert response.is_json and "error" in response.get_json()


def test_times_are_written_in_utc_for_the_browser_to_localize(signed_in: FlaskClient, user: User) -> None:
    make_run(user, completed_at=datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc))
    token = tokens.create_token(user, "nightly")[0]
    token.created_at = datetime(2025, 1, 15, 9, 30, 5, tzinfo=timezone.utc)
    db.session.commit()
    row = signed_in.get("/artifacts").get_data(as_text=True)
    assert re.search(r'<time datetime="2025-06-01T12:00:00\+00:00" title="2025-06-01 12:00:00 UTC">[^<]+ ago</time>', row)
    page = signed_in.get("/settings/tokens").get_data(as_text=True)
    assert '<time datetime="2025-01-15T09:30:05+00:00" title="2025-01-15 09:30:05 UTC">2025-01-15 09:30 UTC</time>' in page


def test_time_tag_is_utc_escaped_markup_and_a_dash_when_unknown() -> None:
    moment = datetime(2025, 11, 30, 13, 0, 7, tzinfo=timezone(timedelta(hours=1)))  # 12:00:07 UTC
    tag = time_tag(moment)
    assert isinstance(tag, Markup)
    assert tag == '<time datetime="2025-11-30T12:00:07+00:00" title="2025-11-30 12:00:07 UTC">2025-11-30 12:00 UTC</time>'
    assert time_tag(moment, "second").endswith(">2025-11-30 12:00:07 UTC</time>")
    assert time_tag(datetime(2025, 11, 30, 12, 0)).startswith('<time datetime="2025-11-30T12:00:00+00:00"')  # naive is UTC
    assert time_tag(None) == relative_time_tag(None) == "\u2014"
    later = datetime(2025, 11, 30, 15, 0, 7, tzinfo=timezone.utc)
    assert relative_time_tag(moment, later) == (
        '<time datetime="2025-11-30T12:00:07+00:00" title="2025-11-30 12:00:07 UTC">3 hours ago</time>'
    )


@pytest.mark.parametrize("path", ["/static/shortcuts.js", "/static/local_times.js", "/static/favicon.svg"])
def test_the_new_static_files_are_served(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    response.close()
