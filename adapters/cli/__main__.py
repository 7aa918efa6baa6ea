"""``python -m opcatflow.adapters.cli``: the same as the ``opcatflow`` console script."""

from __future__ import annotations

from opcatflow.adapters.cli import main

main()
