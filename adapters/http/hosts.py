"""The ``Host`` a request may name, and the public URL absolute links are built on.

Without a check, whoever sends a request chooses the host the ``Location`` of a new instance
points to (a forged ``Host`` is reflected). Here a request whose ``Host`` is not on the trusted
list is refused before routing, with a 400 problem that does not repeat it; and when the
server knows its public URL (``serve --public-url``), absolute links are built on that, never
on the request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from opcatflow.adapters.http.problems import MEDIA_TYPE, problem_body

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
# Probes name the host they were configured with (an orchestrator's: the pod's address); these
# answers build no URL and hold nothing, so refusing them would only push operators to trust *.
PROBES = frozenset({"/health", "/ready"})


def host_name(header: str) -> str:
    """The host of a ``Host`` header, without its port; IPv6 without brackets; lower case."""
    value = header.strip().lower()
    if value.startswith("["):  # [::1]:8000
        return value[1 : value.find("]")] if "]" in value else ""
    name, _, port = value.rpartition(":")
    if name and port.isdigit() and ":" not in name:
        return name
    return value


def public_host(url: str) -> str:
    """The host name of a public URL (``https://npm.example.org/api`` -> ``npm.example.org``).

    Raises:
        ValueError: not an absolute http(s) URL.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"a public URL has no query or fragment: {url!r}")
    return parts.hostname


def trusted(pattern: str, host: str) -> bool:
    """Whether ``host`` matches ``pattern``: a name, ``*.example.org`` (any subdomain), or
    ``*`` (any host)."""
    pattern = pattern.lower()
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


class TrustedHosts:
    """Answers 400 (``untrusted-host``) to a request whose ``Host`` matches none of
    ``patterns``, but for the health and readiness probes; passes the others on."""

    def __init__(self, app: ASGIApp, patterns: Iterable[str]) -> None:
        self.app = app
        self.patterns = tuple(patterns)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"host"), b"")
        host = host_name(header.decode("latin-1"))
        if host and any(trusted(p, host) for p in self.patterns):
            await self.app(scope, receive, send)
            return
        body = problem_body(
            "untrusted-host",
            "this server does not answer to the Host this request names "
            "(the server's --trusted-host and --public-url say which it does)",
        )
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", MEDIA_TYPE.encode()),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
