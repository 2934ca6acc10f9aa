"""/docs of both apps names only the app's own URLs, and each one is served."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from runtime.api_docs import serve_docs
from tests.apps import BARE_APPS

# the attributes that name a URL; the page's script names the OpenAPI document
URL_ATTRIBUTES = {"src", "href"}
SWAGGER_UI_DOCUMENT = re.compile(r"""\burl: '([^']*)'""")


class _Urls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in URL_ATTRIBUTES and value]


def urls_in(page: str) -> list[str]:
    parser = _Urls()
    parser.feed(page)
    return parser.urls + SWAGGER_UI_DOCUMENT.findall(page)


@pytest.mark.parametrize("build", BARE_APPS.values(), ids=BARE_APPS.keys())
def test_the_docs_page_names_only_the_apps_own_assets_and_each_is_served(
    build: Callable[[], FastAPI],
) -> None:
    app = build()
    client = TestClient(app)
    answer = client.get("/docs")
    assert answer.status_code == 200
    assert "://" not in answer.text, "the page names another host"
    urls = urls_in(answer.text)
    assert app.openapi_url in urls
    assert any(url.endswith(".js") for url in urls), urls  # the page's script is among them
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is on another host"
        assert url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, f"{url} is empty"


@pytest.mark.parametrize("build", BARE_APPS.values(), ids=BARE_APPS.keys())
def test_the_swagger_ui_oauth2_redirect_page_is_served(build: Callable[[], FastAPI]) -> None:
    answer = TestClient(build()).get("/docs/oauth2-redirect")
    assert answer.status_code == 200
    assert "://" not in answer.text


@pytest.mark.parametrize("build", BARE_APPS.values(), ids=BARE_APPS.keys())
def test_there_is_no_redoc_page(build: Callable[[], FastAPI]) -> None:
    # ReDoc's bundle loads its logo from its CDN, whatever it is told
    assert TestClient(build()).get("/redoc").status_code == 404


def test_an_app_with_fastapis_own_pages_is_refused() -> None:
    # FastAPI's /docs (from the CDN) would answer first
    with pytest.raises(ValueError, match="docs_url=None"):
        serve_docs(FastAPI())
