"""The documentation pages: every HTML route of the API, over a real server, loads only from
the server itself (no URL to another host, a Content-Security-Policy that allows no other
origin), and every file it names is there."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from helpers import make_registry
from http_server import DEFINITIONS, LiveServer, live_server_fixture  # noqa: F401
from starlette.routing import BaseRoute, Route

from opcatflow.adapters.http import ApiConfig, ApiKeys, create_app
from opcatflow.engine import Engine, FrozenClock

HTML_ROUTES = {"/", "/docs"}
ABSOLUTE = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""", re.IGNORECASE)
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)""")


class Links(HTMLParser):
    """Every URL an HTML page makes the browser load or offers to follow."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in ("src", "href", "action", "data-openapi", "poster", "srcset"):
                self.urls.append(value)


@pytest.fixture
def site(live_server: LiveServer, tmp_path: Path, clock: FrozenClock) -> Iterator[httpx.Client]:
    """The API on the live server, reached as ``localhost`` (no store is read by the pages:
    one SQLite file is enough)."""
    db = str(tmp_path / "docs.db")
    with Engine.open(db, [DEFINITIONS], make_registry(), clock=clock) as engine:
        _, token = ApiKeys(engine.store, clock).create("reader", ["admin"])
        app = create_app(engine, ApiConfig(public_url="https://npm.example.org/api"))
        live_server.slot.app = app
        base = live_server.url.replace("127.0.0.1", "localhost")
        headers = {"Authorization": f"Bearer {token}"}
        try:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                client.app = app  # type: ignore[attr-defined]
                yield client
        finally:
            live_server.slot.app = None


def get_paths(routes: Iterable[BaseRoute]) -> Iterator[str]:
    """The paths of the GET routes without parameters, through included routers (which
    FastAPI may wrap: ``original_router``)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from get_paths(inner.routes)
        elif isinstance(route, Route) and "GET" in (route.methods or ()) and "{" not in route.path:
            yield route.path


def html_routes(client: httpx.Client) -> set[str]:
    """Every GET route without parameters that answers HTML."""
    app = client.app  # type: ignore[attr-defined]
    paths = set(get_paths(app.routes))
    assert {"/workflows", "/health", "/openapi.json", "/docs"} <= paths  # the walk finds them
    return {
        path
        for path in paths
        if client.get(path).headers.get("content-type", "").startswith("text/html")
    }


def external(url: str, server: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "") and not parts.netloc:
        return False
    return parts.scheme not in ("http", "https", "") or parts.netloc != server


def test_every_html_route_loads_only_from_the_server(site: httpx.Client) -> None:
    server = urlsplit(str(site.base_url)).netloc
    assert html_routes(site) == HTML_ROUTES  # a new page must be added here, and is scanned
    for path in sorted(HTML_ROUTES):
        page = site.get(path)
        assert page.status_code == 200
        text = page.text
        assert ABSOLUTE.findall(text) == []  # every URL in a page is relative
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert ABSOLUTE.findall(policy) == []
        assert "*" not in policy
        links = Links()
        links.feed(text)
        assert len(links.urls) >= 4  # the icon, the stylesheet, two scripts, the OpenAPI URL
        for link in links.urls:
            url = urljoin(str(page.url), link)
            assert not external(url, server), url
            assert site.get(url).status_code == 200, url


def test_the_stylesheet_loads_nothing_from_elsewhere(site: httpx.Client) -> None:
    css = site.get("/static/swagger-ui/swagger-ui.css")
    assert css.status_code == 200
    assert "@import" not in css.text
    assert "sourceMappingURL" not in css.text
    assert {u.split(":")[0] for u in CSS_URL.findall(css.text)} <= {"data"}


def test_the_start_script_turns_off_the_validator_badge(site: httpx.Client) -> None:
    script = site.get("/static/swagger-ui/init.js").text
    assert "validatorUrl: null" in script
    assert ABSOLUTE.findall(script) == []


def test_fastapis_cdn_pages_are_gone(site: httpx.Client) -> None:
    for path in ("/redoc", "/docs/oauth2-redirect", "/static/../pyproject.toml"):
        assert site.get(path).status_code == 404


def test_assets_may_be_cached_and_api_answers_may_not(site: httpx.Client) -> None:
    assert site.get("/static/swagger-ui/swagger-ui-bundle.js").headers["cache-control"] == (
        "no-cache"
    )
    assert site.get("/docs").headers["cache-control"] == "no-store"
    assert site.get("/workflows").headers["cache-control"] == "no-store"
