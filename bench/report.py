"""The printed table and the JSON record of one benchmark run."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def environment(pg_version: str | None) -> dict[str, Any]:
    # The editable install links the working tree: uncommitted engine changes are measured too.
    dirty = _git("status", "--porcelain", "--", "../engine")
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "engine_uncommitted": [line.split(maxsplit=1)[1] for line in dirty.splitlines()]
        if dirty
        else [],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "sqlalchemy": version("sqlalchemy"),
        "transitions": version("transitions"),
        "psycopg": version("psycopg"),
        "postgresql": pg_version,
    }


def _verdict(met: bool) -> str:
    return "ok" if met else "MISSED"


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def table(results: dict[str, Any]) -> str:
    lines: list[str] = []
    durable = results.get("a_durable")
    if durable:
        lines += [
            "(a) durable transitions/s, medians (engine = Engine.fire, floor = bare Core)",
            f"  {'configuration':<18} {'runs':>4} {'engine/s':>9} {'floor/s':>9} "
            f"{'ratio':>6}  target",
        ]
        for row in durable:
            lines.append(
                f"  {row['config']:<18} {row['runs']:>4} {row['engine_median_per_s']:>9.0f} "
                f"{row['floor_median_per_s']:>9.0f} {row['ratio']:>6.2f}  >= 0.50 "
                f"{_verdict(row['met'])}"
            )
    memory = results.get("b_in_memory")
    if memory:
        parts = ", ".join(f"{k} {v:.1f}" for k, v in memory["engine_breakdown_median_us"].items())
        lines += [
            "(b) in-memory cost of one fire, median us (no store)",
            f"  engine {memory['engine_median_us']:.1f}  bare transitions "
            f"{memory['bare_median_us']:.1f}  ratio {memory['ratio']:.2f}  <= 3.0 "
            f"{_verdict(memory['met'])}",
            f"  engine parts: {parts}",
        ]
    store = results.get("d_memory_store")
    if store:
        lines += [
            "(d) a fire on the in-memory store against the engine's decision of it, median us",
            f"  memory store {store['memory_store_median_us']:.1f}  decision "
            f"{store['decision_median_us']:.1f}  ratio {store['ratio']:.2f}  <= 2.0 "
            f"{_verdict(store['met'])}",
            f"  part (b)'s narrower decision {store['part_b_decision_median_us']:.1f}  ratio "
            f"{store['ratio_to_part_b_decision']:.2f}",
            f"  of which the store's own operations: {store['store_operations_median_us']:.1f}",
        ]
    sealing = results.get("e_encryption")
    if sealing:
        lines.append("(e) Engine.fire with personal values sealed against unsealed, medians/s")
        for backend, row in sealing.items():
            lines.append(
                f"  {backend:<18} sealed {row['sealed_per_s']:>8.0f}  clear "
                f"{row['clear_per_s']:>8.0f}  ratio {row['ratio']:>5.2f}  >= 0.70 "
                f"{_verdict(row['ratio'] >= 0.7)}"
            )
    scale = results.get("c_scale")
    if scale:
        e, f = scale["engine"], scale["floor"]
        lines += [
            f"(c) {scale['instances']} instances, SQLite NORMAL, one transaction each "
            f"({scale['wall_s']:.0f} s)",
            f"  {'':<28} {'engine':>9} {'floor':>9} {'ratio':>6}",
            f"  {'starts/s':<28} {e['starts_per_s']:>9.0f} {f['starts_per_s']:>9.0f} "
            f"{scale['start_ratio']:>6.2f}",
            f"  {'fires/s':<28} {e['fires_per_s']:>9.0f} {f['fires_per_s']:>9.0f} "
            f"{scale['fire_ratio']:>6.2f}",
            f"  {'time starting + firing, s':<28} {e['start_s'] + e['fire_s']:>9.0f} "
            f"{f['start_s'] + f['fire_s']:>9.0f}",
            f"  {'peak RSS, MiB':<28} {_mib(e['peak_rss_kib']):>9} {_mib(f['peak_rss_kib']):>9}",
        ]
        for i, (pe, pf) in enumerate(zip(e["shown_probes"], f["shown_probes"], strict=True)):
            label = f"RSS MiB {pe['phase']} {pe['instances']}" if i else "RSS MiB at baseline"
            lines.append(f"  {label:<28} {_mib(pe['rss_kib']):>9} {_mib(pf['rss_kib']):>9}")
        lines += [
            f"  {'RSS growth, first to last':<28} {e['rss_growth_kib']:>7} K "
            f"{f['rss_growth_kib']:>7} K  ({e['rss_growth_bytes_per_instance']} B/instance)",
            f"  {'gc objects growth':<28} {e['gc_objects_growth']:>9} {f['gc_objects_growth']:>9}",
            f"  engine memory flat: {_verdict(e['flat'])}; rates >= 0.50: "
            f"{_verdict(scale['start_ratio'] >= 0.5 and scale['fire_ratio'] >= 0.5)}",
        ]
    return "\n".join(lines)


def write(results: dict[str, Any], *, record: bool) -> list[Path]:
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(results, indent=2) + "\n"
    written = [RESULTS / "latest.json"]
    if record:
        written.append(RESULTS / f"{datetime.now(UTC):%Y-%m-%d}.json")
    for path in written:
        path.write_text(text, encoding="utf-8")
    return written
