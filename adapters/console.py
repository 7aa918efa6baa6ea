"""The ``opcatflow`` console script: the command line, or one line naming the missing extra.

The command line lives in the ``[cli]`` extra; ``pip install opcatflow`` installs the engine
alone, and the script is installed anyway, so it must say what to install instead of a
traceback.
"""

from __future__ import annotations

import sys

# the top-level modules the [cli] extra brings (click comes with typer)
CLI_EXTRA = frozenset({"typer", "click", "icalendar", "httpx"})


def main() -> None:
    try:
        from opcatflow.adapters.cli import main as run
    except ModuleNotFoundError as err:
        if (err.name or "").partition(".")[0] not in CLI_EXTRA:
            raise
        print(
            f"error: the opcatflow command needs the [cli] extra ({err.name} is not installed): "
            "pip install 'opcatflow[cli]'",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    run()
