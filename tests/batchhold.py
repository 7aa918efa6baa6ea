"""What the group-commit tests hold a batch open with, and wait on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from opcatflow.engine import Engine

MEMBERS = 6  # fires queued behind a held batch


class Boom(Exception):
    pass


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.005)


class Hold:
    """Called from a unit of work's ``also``: keeps its batch open until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, *_: object) -> None:
        self.entered.set()
        assert self.release.wait(20)

    def reset(self) -> None:
        self.entered.clear()
        self.release.clear()


HOLD = Hold()


def new_case(engine: Engine) -> str:
    """A case of the example workflow, in its first state (``edit`` and ``approve`` from it)."""
    return engine.start("example", actor="ana", role="clerk", data={"title": "t"}).id
