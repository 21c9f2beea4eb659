"""Browser tests: Debian's Chromium driven by Playwright against the app on a real local server."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask

from tests.conftest import only_on_sqlite
from tests.databases import in_ci
from tests.factories import PASSWORD
from tests.servers import serving

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# Without these Chromium keeps calling Google's hosts, which this machine cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--disable-default-apps",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser_context(**options): more options for watched_page's context (e.g. timezone_id)"
    )


def chromium_available() -> bool:
    return os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A browser test checks pages, not databases: each runs once, on SQLite."""
    if "engine_name" in metafunc.fixturenames and not metafunc.definition.get_closest_marker("engine_agnostic"):
        only_on_sqlite(metafunc)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Outside CI, no Chromium means skipping with a reason; under CI=true it is a failure."""
    if chromium_available() or in_ci():
        return
    skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(skip)


@dataclass
class LiveServer:
    """The app served over HTTP on 127.0.0.1 by werkzeug in a thread."""

    app: Flask
    url: str


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The test's app (its database) on a free port, stopped after the test."""
    app.config.update(SESSION_COOKIE_SECURE=False, REMEMBER_COOKIE_SECURE=False)
    with serving(app, quiet=False) as url:
        yield LiveServer(app, url)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session."""
    if not chromium_available():
        pytest.fail(f"CI=true but no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class PageWatch:
    """What the page did that the test did not ask for: console errors, failed or foreign requests."""

    origin: str
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    expected_errors: list[str] = field(default_factory=list)

    def expect_error(self, fragment: str) -> None:
        """Allow console errors and failed responses containing `fragment` (e.g. an expected 401)."""
        self.expected_errors.append(fragment)

    def unexpected(self) -> list[str]:
        problems = self.console_errors + self.failed_requests + self.foreign_requests
        return [p for p in problems if not any(fragment in p for fragment in self.expected_errors)]


CSP_RECORDER = """
document.addEventListener('securitypolicyviolation', event => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || 'inline'} on ${location.pathname}`);
});
"""


@pytest.fixture
def watched_page(
    browser: Any, live_server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[tuple[Any, PageWatch]]:
    """A fresh browser context and page; any unexpected console error or failed request fails the test.

    A test marked @pytest.mark.browser_context(timezone_id=..., ...) gets those context options too.
    """
    marker = request.node.get_closest_marker("browser_context")
    options = {"viewport": {"width": 1280, "height": 900}, **(marker.kwargs if marker else {})}
    context = browser.new_context(base_url=live_server.url, **options)
    page = context.new_page()
    watch = PageWatch(origin=live_server.url)

    def on_console(message: Any) -> None:
        if message.type == "error":
            watch.console_errors.append(f"console: {message.text}")

    def on_request(request: Any) -> None:
        watch.requests.append((request.method, request.url, dict(request.headers)))
        if not request.url.startswith(live_server.url) and not request.url.startswith("data:"):
            watch.foreign_requests.append(f"foreign request: {request.url}")

    def on_response(response: Any) -> None:
        if response.status >= 400:
            watch.failed_requests.append(f"HTTP {response.status}: {response.url}")

    def on_failed(request: Any) -> None:
        if request.url.endswith("/favicon.svg") and request.failure == "net::ERR_ABORTED":
            return  # the browser's own icon fetch, cut short when the test navigates on at once
        watch.failed_requests.append(f"failed: {request.url} {request.failure}")

    # Every test is also a Content-Security-Policy test: a blocked script, style or request is reported
    # as a console error, so a page that relies on something the policy refuses fails whatever test opens it.
    context.add_init_script(CSP_RECORDER)
    page.on("console", on_console)
    page.on("pageerror", lambda error: watch.console_errors.append(f"page error: {error}"))
    page.on("request", on_request)
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    # Anything leaving 127.0.0.1 is answered locally with an error instead of going out.
    context.route(lambda url: not url.startswith(live_server.url), lambda route: route.abort())
    try:
        yield page, watch
        assert watch.unexpected() == [], watch.unexpected()
    finally:
        context.close()


# ---------------------------------------------------------------- what a person does on a page


def sign_in(page: Any, email: str, password: str = PASSWORD, next_path: str = "/artifacts") -> None:
    """Fill in the login form (reached with ?next=next_path) and wait until next_path is shown."""
    page.goto(f"/login?next={quote(next_path, safe='/')}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(next_path.split("?")[0])))


def row_ids(page: Any) -> list[str]:
    """The run ids the list shows, top to bottom."""
    return page.eval_on_selector_all(
        "a.row-link", "links => links.map(a => a.getAttribute('href').split('/').pop())"
    )


ROWS_GREW_OR_LIST_ENDED = """rows => document.querySelector('tr.list-end') !== null
    || document.querySelectorAll('tr.run-row').length > rows"""


def scroll_to_end(page: Any, most: int = 50) -> None:
    """Scroll down as a person would until the list says it has shown every run.

    After each scroll, wait until the fragment it revealed has been swapped in (more rows, or the
    list's end): never a fixed pause, so a slow machine only makes it slower.
    """
    for _ in range(most):
        if page.locator("tr.list-end").count():
            return
        rows = page.locator("tr.run-row").count()
        page.mouse.wheel(0, 20000)
        page.wait_for_function(ROWS_GREW_OR_LIST_ENDED, arg=rows)
    raise AssertionError(f"the list did not end after {most} fragments")


def choose(page: Any, menu: str, value: str) -> None:
    """Open a filter menu (pipeline, model, tag) and tick one of its values, as a person would."""
    if not page.locator(f"#menu-{menu}[open]").count():
        page.click(f"#menu-{menu} summary")
    page.check(f"#menu-{menu} input[value='{value}']")
