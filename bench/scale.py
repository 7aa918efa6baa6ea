"""Part (c): start many instances, then fire one transition on each; rate and memory.

Each side runs in its own fresh process (spawned), on a fresh SQLite file with
synchronous=NORMAL, one transaction per start and per fire, exactly as a caller would use the
engine. The two processes work in turns, a tenth of the instances at a time (which goes first
alternates), so a machine that gets busier or quieter during the long run weighs on both alike.
Instance ids are kept in a byte array allocated before the baseline, so the benchmark's own
bookkeeping does not grow while memory is watched. After every tenth, each process records its
current and peak resident memory and the number of live gc-tracked Python objects: with no
per-instance machine and no unbounded cache, all three stay flat however many instances the
database holds.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import peak_rss_kib, rss_kib, ru_maxrss_kib
from bench.sides import open_side

KINDS = ("floor", "engine")
WARMUP = 200
CHUNKS = 10
SHOWN = (0.1, 0.5, 1.0)  # the checkpoints the table prints; the JSON has every tenth
# RSS may grow by allocator noise; a per-instance cost of even 50 bytes at 100,000 instances
# would exceed this, a machine per instance (~32 KB) by three orders of magnitude.
FLAT_LIMIT_KIB = 4096


def _probe(phase: str, done: int, elapsed: float) -> dict[str, Any]:
    gc.collect()
    return {
        "phase": phase,
        "instances": done,
        "elapsed_s": round(elapsed, 2),
        "rss_kib": rss_kib(),
        "peak_rss_kib": peak_rss_kib(),
        "ru_maxrss_kib": ru_maxrss_kib(),
        "gc_objects": len(gc.get_objects()),
    }


def _child(kind: str, path: str, count: int, log: str, pipe: Any) -> None:
    """Serve ("started" | "fired", up_to) requests until told to stop; reply with a probe."""
    try:
        side = open_side(kind, path, "NORMAL", log)
        for _ in range(WARMUP):
            side.fire(side.start(), "go", 1)
        ids = bytearray(16 * count)
        pipe.send(_probe("baseline", 0, 0.0))
        elapsed = {"started": 0.0, "fired": 0.0}
        done = {"started": 0, "fired": 0}
        while True:
            phase, stop = pipe.recv()
            if phase == "stop":
                break
            begin = time.perf_counter()
            if phase == "started":
                for k in range(done[phase], stop):
                    ids[16 * k : 16 * k + 16] = uuid.UUID(side.start()).bytes
            else:
                for k in range(done[phase], stop):
                    side.fire(str(uuid.UUID(bytes=bytes(ids[16 * k : 16 * k + 16]))), "go", 1)
            elapsed[phase] += time.perf_counter() - begin
            done[phase] = stop
            pipe.send(_probe(phase, stop, elapsed[phase]))
        side.close()
    except BaseException as err:
        pipe.send({"error": repr(err)})


class _Worker:
    def __init__(self, kind: str, path: str, count: int, log: str) -> None:
        ctx = mp.get_context("spawn")
        self.kind = kind
        self.pipe, child_end = ctx.Pipe()
        self.process = ctx.Process(target=_child, args=(kind, path, count, log, child_end))
        self.process.start()

    def reply(self) -> dict[str, Any]:
        while not self.pipe.poll(1):
            if not self.process.is_alive():
                raise RuntimeError(f"(c) {self.kind} process died")
        answer: dict[str, Any] = self.pipe.recv()
        if "error" in answer:
            raise RuntimeError(f"(c) {self.kind} failed: {answer['error']}")
        return answer

    def ask(self, phase: str, stop: int) -> dict[str, Any]:
        self.pipe.send((phase, stop))
        return self.reply()

    def stop(self) -> None:
        if self.process.is_alive():
            self.pipe.send(("stop", 0))
        self.process.join(timeout=60)


def _summary(probes: list[dict[str, Any]], count: int) -> dict[str, Any]:
    started = [p for p in probes if p["phase"] == "started"]
    fired = [p for p in probes if p["phase"] == "fired"]
    watched = probes[1:2] + probes[-1:]  # after the first tenth (warm caches, full pool)
    growth = watched[-1]["rss_kib"] - watched[0]["rss_kib"]
    span = count - probes[1]["instances"]
    start_s, fire_s = started[-1]["elapsed_s"], fired[-1]["elapsed_s"]
    shown = {max(1, int(count * f)) for f in SHOWN}
    return {
        "instances": count,
        "start_s": round(start_s, 1),
        "fire_s": round(fire_s, 1),
        "starts_per_s": round(count / start_s, 1),
        "fires_per_s": round(count / fire_s, 1),
        "probes": probes,
        "shown_probes": [p for p in probes if p["phase"] == "baseline" or p["instances"] in shown],
        "peak_rss_kib": max(p["peak_rss_kib"] for p in probes),
        "rss_growth_kib": growth,
        "rss_growth_bytes_per_instance": round(growth * 1024 / span, 1) if span else None,
        "gc_objects_growth": watched[-1]["gc_objects"] - watched[0]["gc_objects"],
        "flat": growth <= FLAT_LIMIT_KIB,
    }


def run(*, instances: int, log: str, progress: Any = print) -> dict[str, Any]:
    stops = sorted({max(1, instances * i // CHUNKS) for i in range(1, CHUNKS + 1)})
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="opcatflow-bench-") as tmp:
        workers = {k: _Worker(k, str(Path(tmp) / f"c-{k}.db"), instances, log) for k in KINDS}
        try:
            probes = {k: [w.reply()] for k, w in workers.items()}
            turn = 0
            for phase in ("started", "fired"):
                verb = "start" if phase == "started" else "fire one transition on"
                progress(f"(c) {verb} {instances} instances, engine and floor in turns")
                for stop in stops:
                    order = KINDS if turn % 2 == 0 else KINDS[::-1]
                    for kind in order:
                        probes[kind].append(workers[kind].ask(phase, stop))
                    turn += 1
        finally:
            for worker in workers.values():
                worker.stop()
    engine, floor = (_summary(probes[k], instances) for k in ("engine", "floor"))
    start_ratio = engine["starts_per_s"] / floor["starts_per_s"]
    fire_ratio = engine["fires_per_s"] / floor["fires_per_s"]
    return {
        "backend": "sqlite",
        "synchronous": "NORMAL",
        "instances": instances,
        "wall_s": round(time.perf_counter() - began, 1),
        "engine": engine,
        "floor": floor,
        "start_ratio": round(start_ratio, 3),
        "fire_ratio": round(fire_ratio, 3),
        "target": "ratios >= 0.50 (as in (a)); engine RSS flat",
        "met": start_ratio >= 0.5 and fire_ratio >= 0.5 and engine["flat"],
    }
