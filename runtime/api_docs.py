"""An HTTP API's documentation page, with assets from an installed package: no internet needed.

FastAPI's own /docs and /redoc load Swagger UI and ReDoc from a CDN, so on a machine offline they
are blank. Both the collector and the worker's read API serve Swagger UI this way instead, and no
ReDoc: its bundle loads its logo from its CDN whatever it is told.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
# fastapi-offline ships Swagger UI's dist files and FastAPI's favicon in its static/
# (tests/unit/runtime/test_api_docs.py checks that each one the page names is served)
ASSETS_URL = "/docs/assets"
_ASSETS = ("fastapi_offline", "static")


def serve_docs(app: FastAPI) -> None:
    """Swagger UI at /docs (with its OAuth2 redirect page), configured from the app as FastAPI's
    own page is. The app is made with `docs_url=None, redoc_url=None`: otherwise FastAPI's pages
    would answer /docs first, and /redoc from the CDN."""
    openapi_url, oauth2_redirect_url = app.openapi_url, app.swagger_ui_oauth2_redirect_url
    if app.docs_url is not None or app.redoc_url is not None or openapi_url is None:
        raise ValueError("make the app with docs_url=None and redoc_url=None, and an openapi_url")
    app.mount(ASSETS_URL, StaticFiles(packages=[_ASSETS]), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")).rstrip("/")  # a proxy's prefix, if any
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=root + oauth2_redirect_url if oauth2_redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    if oauth2_redirect_url:

        @app.get(oauth2_redirect_url, include_in_schema=False)
        async def swagger_ui_oauth2_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()
