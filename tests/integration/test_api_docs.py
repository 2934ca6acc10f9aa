"""/docs of both apps renders in a real browser that may reach 127.0.0.1 only, as on a machine
with no internet: Debian's chromium (Playwright's own browser download cannot work here), driven
by Playwright, against each app served by uvicorn in a thread."""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi import FastAPI

from tests.apps import BARE_APPS
from tests.harness import wait_until
from usage_stream.up import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
CHROMIUM = "/usr/bin/chromium"  # deploy/setup.sh installs it
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    missing = [
        *([] if importlib.util.find_spec("playwright") else ["playwright (pip install '.[dev]')"]),
        *([] if shutil.which(CHROMIUM) else [f"{CHROMIUM} (apt-get install chromium)"]),
    ]
    if missing and os.environ.get("CI"):
        pytest.fail(f"CI must run the browser test; missing: {', '.join(missing)}")
    if missing:
        pytest.skip(f"no browser to render the docs page; missing: {', '.join(missing)}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """The app on a free loopback port for the block; its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), timeout=20)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.mark.parametrize("build", BARE_APPS.values(), ids=BARE_APPS.keys())
def test_swagger_ui_renders_the_api_with_no_internet(
    browser: Browser, build: Callable[[], FastAPI]
) -> None:
    from playwright.sync_api import expect

    app = build()
    blocked: list[str] = []
    failed: list[str] = []
    errors: list[str] = []

    def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    context = browser.new_context()
    try:
        context.route("**/*", loopback_only)
        page = context.new_page()
        page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        with serving(app) as url:
            answer = page.goto(f"{url}/docs")
            assert answer is not None and answer.ok
            # rendered from the app's OpenAPI document: its title, and its operations
            expect(page.locator(".swagger-ui .info .title")).to_contain_text(
                app.title, timeout=30_000
            )
            expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
            page.wait_for_load_state("networkidle")
    finally:
        context.close()
    assert blocked == [], "the page asked for another host"
    assert failed == []
    assert errors == []
