"""Real servers on loopback for the channel tests and the benchmark: an SMTP server
(aiosmtpd) and an HTTP webhook receiver, each recording what it received."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

TLS = Path(__file__).parent / "tls"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_tls() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(TLS / "cert.pem", TLS / "key.pem")
    return context


def client_tls() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(TLS / "cert.pem"))


@dataclass
class Mailbox:
    """What the SMTP server received."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str], Any]] = field(default_factory=list)  # from, to, peer
    logins: list[str] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    reached: threading.Event = field(default_factory=threading.Event)
    expect: int = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
            self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos), session.peer))
            self.count += 1
            if self.expect and self.count >= self.expect:
                self.reached.set()
        return "250 Message accepted"


class Authenticator:
    def __init__(self, mailbox: Mailbox, user: str, password: str) -> None:
        self.mailbox = mailbox
        self.user = user.encode()
        self.password = password.encode()

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            self.user,
            self.password,
        )
        if ok:
            self.mailbox.logins.append(self.user.decode())
        return AuthResult(success=ok, handled=False)  # handled=True would mean "reply sent"


@contextmanager
def smtp_server(
    *, starttls: bool = False, user: str | None = None, password: str | None = None
) -> Iterator[tuple[Mailbox, int]]:
    """An aiosmtpd server on 127.0.0.1; yields its mailbox and port."""
    mailbox = Mailbox()
    kwargs: dict[str, Any] = {}
    if starttls:
        kwargs.update(tls_context=server_tls(), require_starttls=True)
    if user is not None:
        kwargs.update(
            authenticator=Authenticator(mailbox, user, password or ""),
            auth_require_tls=starttls,
            auth_required=True,
        )
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the webhook receiver got, and how it answers."""

    requests: list[Received] = field(default_factory=list)
    status: int = 204
    location: str | None = None
    hold: threading.Event | None = None  # answer only once this is set (timeouts)
    lock: threading.Lock = field(default_factory=threading.Lock)
    reached: threading.Event = field(default_factory=threading.Event)
    expect: int = 0
    url: str = ""


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 recording every POST; yields the receiver (``url`` set)."""
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            with receiver.lock:
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                if receiver.expect and len(receiver.requests) >= receiver.expect:
                    receiver.reached.set()
            if receiver.hold is not None:
                receiver.hold.wait(timeout=30)
            self.send_response(receiver.status)
            if receiver.location:
                self.send_header("location", receiver.location)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield receiver
    finally:
        if receiver.hold is not None:
            receiver.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
