"""Plain ASGI middleware: the request body limit, and one log event per request."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.typing import FilteringBoundLogger

from opcatflow.adapters.http.problems import MEDIA_TYPE, problem_body


class _TooLarge(HTTPException):
    """Raised from ``receive``: FastAPI re-raises HTTP exceptions met while reading a body,
    so the app's handler answers with the problem."""

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail)


async def _send_problem(send: Send, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": body["status"],
            "headers": [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyLimit:
    """Answers 413 to a body over ``max_body`` bytes, by its Content-Length or, when it
    streams without one, as soon as it grows past the limit (nothing past it is buffered);
    and 400 to a URL holding NUL."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            # no identifier, state or field name holds NUL; PostgreSQL could not even compare
            await _send_problem(send, problem_body("malformed-request", "NUL in the URL", 400))
            return
        detail = f"request bodies are limited to {self.max_body} bytes"
        too_large = problem_body("payload-too-large", detail)
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_body):
                await _send_problem(send, too_large)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _TooLarge(detail)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_problem(send, too_large)


class RequestLog:
    """Logs ``http_request`` (method, route, status, duration, key id) after each request,
    and marks every response ``Cache-Control: no-store`` (they may hold personal data) but
    the documentation pages' files under ``/static/``, which hold none."""

    def __init__(self, app: ASGIApp, log: FilteringBoundLogger) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500
        cache = b"no-cache" if scope["path"].startswith("/static/") else b"no-store"

        async def logging_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"cache-control", cache)]
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        finally:
            route = scope.get("route")
            state = scope.get("state") or {}
            self.log.info(
                "http_request",
                method=scope["method"],
                path=scope["path"],
                route=getattr(route, "path", None),
                status=status,
                duration_ms=round((time.perf_counter() - began) * 1000, 2),
                key_id=state.get("key_id"),
            )
