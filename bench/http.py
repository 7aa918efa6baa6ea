"""``python -m bench.http``: transitions per second through the HTTP API against direct
``Engine.fire``, in the same run, on the same database.

The API side is the product as shipped: an ``opcatflow serve`` process (uvicorn, one worker,
with its scheduler and dispatcher idle beside it, logging at WARNING) on the benchmark
workflow, and 4 concurrent clients in this process, each on one keep-alive connection, each
firing round-robin over instances of its own (``POST /instances/{id}/transitions``, API key
checked, role checked by the engine, the instance redacted and serialised). The direct side
is ``Engine.fire`` on the same database from this process, with 4 threads on instances of
their own (and, for reference, 1 thread). Runs alternate which side goes first. These plain
fires take the route's fast path (``adapters/http/fastpath.py``); ``--client raw-key`` sends
a new ``Idempotency-Key`` with each, which FastAPI answers after reading first.

Target: the API at least 50% of direct (median against median).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    ACTOR,
    DATA,
    DEFAULT_PG_URL,
    NEXT_TRIGGER,
    ROLE,
    WORKFLOW,
    WORKFLOW_ID,
    bench_logger,
    median,
    pg_schemas,
)
from bench.report import RESULTS, environment
from opcatflow.adapters.http.keys import ApiKeys
from opcatflow.engine import Engine, Registry

CLIENTS = 4
TARGET = 0.50


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serving(url: str, log: Path) -> Iterator[str]:
    """An ``opcatflow serve`` process on ``url``; yields its base URL once ready."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "opcatflow.adapters.cli",
        "--workflows",
        str(WORKFLOW),
        "--log-level",
        "warning",
        "serve",
        "--db",
        url,
        "--port",
        str(port),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPCATFLOW_")}
    with log.open("wb") as err:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"serve exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("serve did not become ready")
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Pool:
    """Instances of one client or thread, and where each stands."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.states = ["a"] * len(ids)
        self.turn = 0

    def next(self) -> tuple[str, str]:
        i = self.turn % len(self.ids)
        trigger = NEXT_TRIGGER[self.states[i]]
        self.states[i] = "b" if trigger == "go" else "a"
        self.turn += 1
        return self.ids[i], trigger


# -- the API side ---------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection, written and read by hand: a load generator on the
    same two cores as the server must cost as little as it can (httpx costs several times
    the CPU per request, which the server then does not get; ``--client httpx`` shows it)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.host = host  # the server answers only to the Host it serves

    @classmethod
    async def open(cls, base: str) -> Connection:
        authority = base.removeprefix("http://")
        host, port = authority.split(":")
        return cls(*await asyncio.open_connection(host, int(port)), authority)

    async def post(self, path: str, body: bytes, token: str, extra: str = "") -> tuple[int, bytes]:
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def _client(
    base: str, token: str, pool: Pool, n: int, latencies: list[float], kind: str
) -> None:
    if kind == "httpx":
        headers = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:
            for _ in range(n):
                instance_id, trigger = pool.next()
                began = time.perf_counter()
                response = await client.post(
                    f"/instances/{instance_id}/transitions", json={"trigger": trigger}
                )
                latencies.append(time.perf_counter() - began)
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code}: {response.text}")
        return
    connection = await Connection.open(base)
    try:
        for _ in range(n):
            instance_id, trigger = pool.next()
            body = json.dumps({"trigger": trigger}).encode()
            extra = f"Idempotency-Key: {uuid.uuid4()}\r\n" if kind == "raw-key" else ""
            began = time.perf_counter()
            status, answer = await connection.post(
                f"/instances/{instance_id}/transitions", body, token, extra
            )
            latencies.append(time.perf_counter() - began)
            if status != 200:
                raise RuntimeError(f"{status}: {answer.decode()}")
    finally:
        await connection.close()


def api_run(
    base: str, token: str, pools: list[Pool], n: int, kind: str = "raw"
) -> tuple[float, list[float]]:
    """``n`` transitions over the API, shared by the clients; returns (rate, latencies)."""
    latencies: list[float] = []
    each = n // len(pools)

    async def main() -> float:
        began = time.perf_counter()
        await asyncio.gather(*(_client(base, token, p, each, latencies, kind) for p in pools))
        return time.perf_counter() - began

    elapsed = asyncio.run(main())
    return each * len(pools) / elapsed, latencies


# -- the direct side --------------------------------------------------------------------------


def direct_run(engine: Engine, pools: list[Pool], n: int) -> float:
    """``n`` transitions through ``Engine.fire``, one thread per pool; returns the rate."""
    each = n // len(pools)
    barrier = threading.Barrier(len(pools) + 1)
    errors: list[BaseException] = []

    def work(pool: Pool) -> None:
        barrier.wait()
        try:
            for _ in range(each):
                instance_id, trigger = pool.next()
                engine.fire(instance_id, trigger, actor=ACTOR, role=ROLE)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(p,)) for p in pools]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return each * len(pools) / elapsed


# -- one backend --------------------------------------------------------------------------------


def measure(
    url: str, label: str, *, runs: int, n: int, pool: int, client: str, log_dir: Path
) -> dict[str, Any]:
    engine = Engine.open(url, [WORKFLOW], Registry(), logger=bench_logger("off"))
    try:
        _, token = ApiKeys(engine.store, engine.clock).create("bench", [ROLE])

        def pools(count: int) -> list[Pool]:
            return [
                Pool(
                    [
                        engine.start(WORKFLOW_ID, actor=ACTOR, role=ROLE, data=DATA).id
                        for _ in range(pool)
                    ]
                )
                for _ in range(count)
            ]

        api_pools, direct_pools, single_pool = pools(CLIENTS), pools(CLIENTS), pools(1)
        rates: dict[str, list[float]] = {"api": [], "direct": [], "direct_1": []}
        latencies: list[float] = []
        with serving(url, log_dir / f"serve-{label}.log") as base:
            api_run(base, token, api_pools, 40 * CLIENTS, client)  # warm-up
            direct_run(engine, direct_pools, 40 * CLIENTS)
            direct_run(engine, single_pool, 40)
            for run in range(runs):
                order = ("api", "direct") if run % 2 == 0 else ("direct", "api")
                for side in order:
                    if side == "api":
                        rate, lat = api_run(base, token, api_pools, n, client)
                        rates["api"].append(rate)
                        latencies += lat
                    else:
                        rates["direct"].append(direct_run(engine, direct_pools, n))
                rates["direct_1"].append(direct_run(engine, single_pool, n // 2))
    finally:
        engine.close()
    api, direct, single = (median(rates[k]) for k in ("api", "direct", "direct_1"))
    ordered = sorted(latencies)
    return {
        "backend": label,
        "client": client,
        "runs": runs,
        "transitions_per_run": n,
        "api_median_per_s": round(api, 1),
        "direct_median_per_s": round(direct, 1),
        "direct_1_thread_median_per_s": round(single, 1),
        "ratio": round(api / direct, 3),
        "ratio_vs_1_thread": round(api / single, 3),
        "met": api / direct >= TARGET,
        "api_latency_ms": {
            "p50": round(1000 * statistics.median(ordered), 2),
            "p95": round(1000 * ordered[int(len(ordered) * 0.95)], 2),
            "max": round(1000 * ordered[-1], 2),
        },
        "rates": {k: [round(r, 1) for r in v] for k, v in rates.items()},
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"HTTP API against direct Engine.fire, transitions/s, medians ({CLIENTS} clients / threads)",
        f"  {'backend':<12} {'client':<6} {'runs':>4} {'api/s':>8} {'direct/s':>9} {'ratio':>6} "
        f"{'direct 1T/s':>11}  {'p50 ms':>7} {'p95 ms':>7}  target",
    ]
    for r in rows:
        lat = r["api_latency_ms"]
        lines.append(
            f"  {r['backend']:<12} {r['client']:<6} {r['runs']:>4} {r['api_median_per_s']:>8.0f} "
            f"{r['direct_median_per_s']:>9.0f} {r['ratio']:>6.2f} "
            f"{r['direct_1_thread_median_per_s']:>11.0f}  {lat['p50']:>7.1f} {lat['p95']:>7.1f}"
            f"  >= {TARGET:.2f} {'ok' if r['met'] else 'MISSED'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per side (default 5)")
    parser.add_argument(
        "--n", type=int, default=400, help="transitions per run, split over the clients"
    )
    parser.add_argument("--pool", type=int, default=5, help="instances per client (default 5)")
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgresql", "both"),
        default="both",
        help="default both",
    )
    parser.add_argument(
        "--client",
        choices=("raw", "raw-key", "httpx"),
        default="raw",
        help="the load generator: hand-written HTTP/1.1 (default), the same with a new "
        "Idempotency-Key on each request (the route's path that reads first), or "
        "httpx.AsyncClient",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("OPCATFLOW_BENCH_PG", DEFAULT_PG_URL),
        help=f"PostgreSQL base URL (default $OPCATFLOW_BENCH_PG or {DEFAULT_PG_URL})",
    )
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"environment": environment(None), "rows": []}
    options = {"runs": args.runs, "n": args.n, "pool": args.pool, "client": args.client}
    with tempfile.TemporaryDirectory(prefix="opcatflow-bench-http-") as folder:
        tmp = Path(folder)
        if args.backend in ("sqlite", "both"):
            print("... SQLite (synchronous FULL)", file=sys.stderr, flush=True)
            url = str(tmp / "bench.db")
            results["rows"].append(measure(url, "sqlite", log_dir=tmp, **options))
        if args.backend in ("postgresql", "both"):
            print("... PostgreSQL", file=sys.stderr, flush=True)
            with pg_schemas(args.pg_url, 1) as [url]:
                results["rows"].append(measure(url, "postgresql", log_dir=tmp, **options))
    results["environment"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(table(results["rows"]))
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / "http-latest.json"
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {target}")
    return 0 if all(r["met"] for r in results["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
