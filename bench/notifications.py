"""``python -m bench.notifications``: the outbox dispatcher against a floor, same run.

Dispatches N messages (default 10,000) from the outbox to a local SMTP server (aiosmtpd) and,
separately, N to a local webhook receiver (an HTTP/1.1 server on loopback), then sends the
same messages straight through smtplib / httpx with no outbox (the floor: transport only, no
database, no rendering, no signing). Messages per second for each, and the ratio.

The outbox rows are written beforehand (not timed) as the engine's hook writes them: complaint
notifications with their redacted template context, and signed CloudEvents.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import smtplib
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import structlog
import yaml
from aiosmtpd.controller import Controller

from opcatflow.adapters.channels import SmtpChannel, WebhookChannel
from opcatflow.adapters.channels.webhook import CONTENT_TYPE, sign
from opcatflow.engine import FrozenClock, Instance, SQLAlchemyStore, compile_text
from opcatflow.engine.rows import OutboxEntry, OutboxStatus
from opcatflow.notifications.compose import Composer, Occurrence
from opcatflow.notifications.directory import Directory, decode_secret, parse_directory
from opcatflow.notifications.dispatcher import Dispatcher, DispatchPolicy
from opcatflow.notifications.model import NewMessage
from opcatflow.notifications.templates import TemplateSet
from opcatflow.workflows import BUNDLED, registry

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DATA = {
    "source": "detained_person",
    "channel": "during_visit",
    "received_on": "2026-03-01",
    "institution": "Central Remand Prison",
    "complaint_type": "ill_treatment",
    "persons_concerned": ["Ana Pereira"],
    "summary": "Beaten in cell 14 by two officers on 27 February.",
}


# -- loopback servers ---------------------------------------------------------------------------


class _Counter:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def add(self) -> None:
        with self.lock:
            self.count += 1


class _SmtpHandler(_Counter):
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.add()
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[_Counter, int]]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    handler = _SmtpHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@contextmanager
def webhook_receiver() -> Iterator[tuple[_Counter, str]]:
    counter = _Counter()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            counter.add()
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield counter, f"http://127.0.0.1:{server.server_address[1]}/events"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# -- the messages -------------------------------------------------------------------------------


def templates() -> TemplateSet:
    # the checkout's own folder: an editable reinstall by someone else mid-run rebuilds the
    # installed tree and would hide the bundled files for a moment
    return TemplateSet(
        [Path(__file__).parent.parent / "notifications" / "templates"], include_bundled=False
    )


def directory(url: str, channel: str) -> Directory:
    people = [
        {
            "id": "r.haddad",
            "name": "Rania Haddad",
            "email": "r.haddad@npm.example",
            "locale": "fr",
            "roles": ["caseworker"],
        }
    ]
    hooks = [{"id": "cases", "url": url, "secret": SECRET}] if channel == "webhook" else []
    doc = {"people": people if channel == "email" else [], "webhooks": hooks}
    return parse_directory(yaml.safe_dump(doc), "<bench>")


def messages(n: int, dirs: Directory) -> list[NewMessage]:
    """N outbox messages as the hook writes them for newly received complaints."""
    path = BUNDLED / "complaint.yaml"
    wf = compile_text(path.read_text("utf-8"), str(path), registry)
    composer = Composer()
    out: list[NewMessage] = []
    while len(out) < n:
        instance = Instance(
            str(uuid.uuid4()),
            wf.id,
            wf.version,
            wf.initial,
            DATA,
            1,
            None,
            NOW,
            NOW,
            NOW,
            1,
            "0" * 64,
        )
        occ = Occurrence(
            wf,
            instance,
            "started",
            NOW,
            trigger="start",
            entered=wf.initial,
            actor="m.okafor",
            role="intake",
        )
        out += [m for m in composer.messages(occ, dirs) if m.channel in ("email", "webhook")]
    return out[:n]


@dataclass
class Result:
    name: str
    seconds: list[float]
    n: int

    @property
    def rate(self) -> float:
        return self.n / statistics.median(self.seconds)


def timed(func: Callable[[], None]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def fresh_store(url: str) -> tuple[SQLAlchemyStore, Callable[[], None]]:
    if url.startswith("postgresql"):
        schema = "bench_" + uuid.uuid4().hex[:10]
        admin = sa.create_engine(
            url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        store = SQLAlchemyStore(f"{url}?options=-csearch_path%3D{schema}")

        def drop() -> None:
            store.close()
            with admin.connect() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()

        store.ensure_schema()
        return store, drop
    folder = tempfile.mkdtemp(prefix="opcatflow-bench-")
    store = SQLAlchemyStore(str(Path(folder) / "bench.db"))
    store.ensure_schema()
    return store, store.close


def run_outbox(
    url: str, rows: list[NewMessage], channel: Any, dirs: Directory, batch: int, dispatchers: int
) -> float:
    store, cleanup = fresh_store(url)
    try:
        for i in range(0, len(rows), 1000):
            with store.write() as uow:
                uow.outbox.add(rows[i : i + 1000], NOW)
        quiet = structlog.wrap_logger(
            structlog.ReturnLogger(), wrapper_class=structlog.make_filtering_bound_logger(40)
        )
        workers = [
            Dispatcher(
                store,
                {channel.name: channel},
                templates=templates(),
                directory=dirs,
                policy=DispatchPolicy(batch_size=batch),
                clock=FrozenClock(NOW),
                logger=quiet,
                rng=random.Random(i),
            )
            for i in range(dispatchers)
        ]
        threads = [threading.Thread(target=w.drain) for w in workers]

        def go() -> None:
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        seconds = timed(go)
        with store.read() as uow:
            counts = uow.outbox.counts()
            failed = [OutboxStatus.DEAD, OutboxStatus.FAILED]
            errors = {e.last_error for e in uow.outbox.listing(failed, limit=1000)}
        if counts.get("sent") != len(rows):
            raise SystemExit(f"not every message was sent: {counts}; errors: {errors}")
        return seconds
    finally:
        cleanup()


def floor_email(port: int, emails: list[tuple[str, bytes]]) -> float:
    def go() -> None:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for address, email in emails:
                smtp.sendmail("noreply@npm.example", [address], email)

    return timed(go)


def floor_webhook(url: str, bodies: list[tuple[bytes, dict[str, str]]]) -> float:
    def go() -> None:
        with httpx.Client(trust_env=False) as client:
            for body, headers in bodies:
                client.post(url, content=body, headers=headers).raise_for_status()

    return timed(go)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.notifications", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--n", type=int, default=10_000, help="messages per channel (default 10000)"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each (median reported)")
    parser.add_argument(
        "--batch", type=int, default=100, help="dispatcher batch size (default 100)"
    )
    parser.add_argument("--dispatchers", type=int, default=1, help="dispatcher threads (default 1)")
    parser.add_argument(
        "--db", default="sqlite", help="'sqlite' (a temp file) or a postgresql:// URL"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    url = args.db if args.db != "sqlite" else "sqlite"
    results: list[Result] = []
    with smtp_server() as (mailbox, port), webhook_receiver() as (receiver, hook_url):
        for channel_name in ("email", "webhook"):
            dirs = directory(hook_url, channel_name)
            rows = messages(args.n, dirs)
            bundled = templates()
            if channel_name == "email":
                sender = SmtpChannel("127.0.0.1", port, sender="NPM <noreply@npm.example>")
                probe = Dispatcher(store_stub(), {}, templates=bundled, directory=dirs)
                prepared = [
                    (
                        m.payload["to"]["address"],
                        sender.message(probe.outgoing(entry_of(m, i))),
                    )
                    for i, m in enumerate(rows)
                ]
                floor: Callable[[], float] = functools.partial(floor_email, port, prepared)
                channel: Any = sender
            else:
                key = decode_secret(SECRET)
                bodies = []
                for m in rows:
                    body = json.dumps(m.payload["cloudevent"], separators=(",", ":")).encode()
                    ts = int(time.time())
                    headers = {
                        "content-type": CONTENT_TYPE,
                        "webhook-id": m.key,
                        "webhook-timestamp": str(ts),
                        "webhook-signature": sign(key, m.key, ts, body),
                    }
                    bodies.append((body, headers))
                floor = functools.partial(floor_webhook, hook_url, bodies)
                channel = WebhookChannel(dirs)
            outbox_times, floor_times = [], []
            for _ in range(args.runs):
                outbox_times.append(
                    run_outbox(
                        "sqlite" if url == "sqlite" else url,
                        rows,
                        channel,
                        dirs,
                        args.batch,
                        args.dispatchers,
                    )
                )
                floor_times.append(floor())
            channel.close()
            results.append(Result(f"{channel_name} via outbox", outbox_times, args.n))
            results.append(
                Result(
                    f"{channel_name} floor ({'smtplib' if channel_name == 'email' else 'httpx'})",
                    floor_times,
                    args.n,
                )
            )
        delivered = (mailbox.count, receiver.count)
    backend = "SQLite file (synchronous=FULL)" if url == "sqlite" else "PostgreSQL"
    print(
        f"\n{args.n} messages per run, {args.runs} runs, median; outbox on {backend}, batch {args.batch}, {args.dispatchers} dispatcher(s)"
    )
    print(f"{'':28} {'msg/s':>9} {'seconds':>9}")
    for r in results:
        print(f"{r.name:28} {r.rate:9.0f} {statistics.median(r.seconds):9.2f}")
    for i in range(0, len(results), 2):
        print(f"{results[i].name:28} {results[i].rate / results[i + 1].rate:9.0%} of its floor")
    print(f"servers received: {delivered[0]} emails, {delivered[1]} webhook requests")
    if args.json:
        args.json.write_text(
            json.dumps(
                {r.name: {"msg_per_s": round(r.rate), "seconds": r.seconds} for r in results},
                indent=2,
            )
        )


def store_stub() -> Any:
    class _Stub:
        dialect = "sqlite"

    return _Stub()


def entry_of(m: NewMessage, i: int) -> Any:
    return OutboxEntry(
        i,
        m.instance_id,
        m.event,
        m.channel,
        m.recipient,
        m.payload,
        "sending",
        1,
        NOW,
        m.key,
        NOW,
        None,
        None,
    )


if __name__ == "__main__":
    main()
