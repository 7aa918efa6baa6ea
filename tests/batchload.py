"""Writers for the group-commit tests that run in spawned processes (tests/ is on their
sys.path): several threads of one engine firing at once, so their fires share commits."""

from __future__ import annotations

import os
import threading
from typing import Any

from helpers import EXAMPLE_DIR, make_registry


def fire_in_threads(url: str, threads: int, fires: int, barrier: Any = None) -> int:
    """Each of ``threads`` threads starts a case and fires ``edit`` on it ``fires`` times;
    returns the number of audit records written (a start and the fires, per thread)."""
    from opcatflow.engine import Engine

    with Engine.open(url, [EXAMPLE_DIR], make_registry(), create=False) as engine:
        if barrier is not None:
            barrier.wait()

        def run() -> None:
            case = engine.start("example", actor="w", role="clerk", data={"title": "t"}).id
            for _ in range(fires):
                engine.fire(case, "edit", actor="w", role="clerk")

        workers = [threading.Thread(target=run) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    return threads * (1 + fires)


def fire_until_killed(url: str, returned: str, threads: int) -> None:
    """Fire ``edit`` from ``threads`` threads until the process is killed; after each fire
    returns, append ``<case> <version>`` to the file ``returned`` (one unbuffered write, so
    what the file holds returned before the kill)."""
    from opcatflow.engine import Engine

    engine = Engine.open(url, [EXAMPLE_DIR], make_registry(), create=False)
    out = os.open(returned, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def run() -> None:
        case = engine.start("example", actor="w", role="clerk", data={"title": "t"}).id
        os.write(out, f"{case} 1\n".encode())
        while True:
            version = engine.fire(case, "edit", actor="w", role="clerk").version
            os.write(out, f"{case} {version}\n".encode())

    for _ in range(threads):
        threading.Thread(target=run, daemon=True).start()
    threading.Event().wait()  # until SIGKILL
