"""The API documentation pages (``/`` and ``/docs``), with Swagger UI shipped in the package.

FastAPI's own ``/docs`` loads Swagger UI from a public CDN: a blank page offline, and a request
to a third party from wherever the page is opened. Here every file comes from this server, and
the pages' Content-Security-Policy lets the browser load nothing from anywhere else. Every URL
in a page is relative, so the pages work behind a proxy that serves the API under a prefix.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI_VERSION = "5.35.0"  # of the npm package swagger-ui-dist (static/swagger-ui/README.md)
ASSETS = "static/swagger-ui"

# No third-party origin at all; Swagger UI sets inline styles, and its icons are data: URIs.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body data-openapi="{openapi}">
<noscript>This page needs JavaScript; the API is described in <a href="{openapi}">{openapi}</a>.
</noscript>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/init.js"></script>
</body>
</html>
"""


def page(title: str) -> HTMLResponse:
    """The documentation page, for a path in the root folder (``/``, ``/docs``): its URLs
    are relative to that folder."""
    body = _PAGE.format(title=escape(title), assets=ASSETS, openapi="openapi.json")
    return HTMLResponse(body, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


def install(app: FastAPI) -> None:
    """Serve the pages at ``/`` and ``/docs`` and their files under ``/static``."""
    title = f"{app.title} {app.version}: HTTP API"
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    @router.get("/docs", response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        return page(title)

    app.include_router(router)
    static = files("opcatflow.adapters.http") / "static"
    # follow_symlink: a development install links these files to the source tree; the folder
    # is the package's own, so no link in it leads anywhere a request could choose
    assets = StaticFiles(directory=str(static), follow_symlink=True)
    app.mount("/static", assets, name="static")
