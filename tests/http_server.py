"""The HTTP API under test: one real uvicorn server on a free loopback port for the whole
session, serving the app each test builds over its own database (``db_url``), reached with a
real httpx client over TCP.

Test modules import the fixtures: ``from http_server import api_fixture, live_server_fixture``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from fastapi import FastAPI
from helpers import make_registry
from starlette.types import ASGIApp, Receive, Scope, Send

from opcatflow.adapters.http import ApiConfig, ApiKeys, create_app
from opcatflow.engine import Engine, FrozenClock
from opcatflow.workflows import BUNDLED, registry

DEFINITIONS = Path(__file__).parent / "definitions" / "http"

# name -> roles of the keys every test gets (actor: "<name>-actor")
KEYS: dict[str, tuple[str, ...]] = {
    "clerk": ("clerk",),
    "reviewer": ("reviewer",),
    "observer": ("observer",),
    "warden": ("warden",),
    "admin": ("admin",),
    "multi": ("observer", "clerk", "reviewer"),
}


class AppSlot:
    """The ASGI app the server runs: whichever app the current test put in ``app``."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            raise RuntimeError("no app installed for this request")
        await self.app(scope, receive, send)


class LiveServer:
    def __init__(self) -> None:
        self.slot = AppSlot()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.slot, lifespan="off", log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


@pytest.fixture(scope="session", name="live_server")
def live_server_fixture() -> Iterator[LiveServer]:
    server = LiveServer()
    server.start()
    yield server
    server.stop()


@dataclass
class ApiUnderTest:
    app: FastAPI
    engine: Engine
    client: httpx.Client
    tokens: dict[str, str]
    clock: FrozenClock
    url: str

    def auth(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, path: str, who: str | None, **kw: Any) -> httpx.Response:
        headers = {**self.auth(who), **kw.pop("headers", {})}
        return self.client.get(path, headers=headers, **kw)

    def post(self, path: str, who: str | None, **kw: Any) -> httpx.Response:
        headers = {**self.auth(who), **kw.pop("headers", {})}
        return self.client.post(path, headers=headers, **kw)

    def start(self, who: str = "clerk", **data: Any) -> dict[str, Any]:
        body = {"workflow": "casefile", "data": {"title": "A case", **data}}
        response = self.post("/instances", who, json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def fire(self, instance_id: str, trigger: str, who: str, **kw: Any) -> httpx.Response:
        body = {"trigger": trigger, **kw.pop("body", {})}
        return self.post(f"/instances/{instance_id}/transitions", who, json=body, **kw)


@pytest.fixture(name="api")
def api_fixture(
    live_server: LiveServer, db_url: str, clock: FrozenClock, request: pytest.FixtureRequest
) -> Iterator[ApiUnderTest]:
    """The API over the test definitions (casefile, permit) on this test's database, with a
    key for each entry of KEYS and a revoked one (``revoked``, role clerk)."""
    # every test calls from 127.0.0.1, and the key matrix fails on purpose far more than the
    # default limit of failed authentications allows (test_http_security tests that limit)
    config = getattr(request, "param", None) or ApiConfig(auth_failure_limit=0)
    with Engine.open(db_url, [DEFINITIONS], make_registry(), clock=clock) as engine:
        keys = ApiKeys(engine.store, clock)
        tokens = {name: keys.create(f"{name}-actor", roles)[1] for name, roles in KEYS.items()}
        revoked, tokens["revoked"] = keys.create("revoked-actor", ["clerk"])
        keys.revoke(revoked.id)
        app = create_app(engine, config)
        live_server.slot.app = app
        try:
            with httpx.Client(base_url=live_server.url, timeout=30) as client:
                yield ApiUnderTest(app, engine, client, tokens, clock, live_server.url)
        finally:
            live_server.slot.app = None


@dataclass
class BundledApi:
    """The API over the bundled workflows, with a key per role (actor: ``<role>-actor``)."""

    engine: Engine
    client: httpx.Client
    tokens: dict[str, str]

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture(name="bundled_api")
def bundled_api_fixture(
    live_server: LiveServer, db_url: str, clock: FrozenClock
) -> Iterator[BundledApi]:
    """The API over the bundled workflows on this test's database, a key for each role."""
    quiet = structlog.wrap_logger(structlog.ReturnLogger())
    with Engine.open(db_url, [BUNDLED], registry, clock=clock, logger=quiet) as engine:
        roles = sorted({r for wf in engine.catalog.latest() for r in wf.definition.roles})
        keys = ApiKeys(engine.store, clock)
        tokens = {role: keys.create(f"{role}-actor", [role])[1] for role in roles}
        live_server.slot.app = create_app(engine, ApiConfig())
        try:
            with httpx.Client(base_url=live_server.url, timeout=30) as client:
                yield BundledApi(engine, client, tokens)
        finally:
            live_server.slot.app = None
