"""The logger a component uses when it is given none: silent unless the application configured
logging.

An embedded engine must print nothing of its own accord (structlog's own default, unconfigured,
prints every event on standard output). So a component given no logger logs through structlog
if the application called ``structlog.configure``, through the standard library's logger of
the same name if the application configured ``logging`` (the root logger has a handler), and
otherwise nowhere. It is decided when the component is built: configure logging first, or pass
``logger=``.
"""

from __future__ import annotations

import logging
from typing import cast

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, WrappedLogger

__all__ = ["default_logger", "silent_logger"]


def _drop(_logger: WrappedLogger, _method: str, _event: EventDict) -> EventDict:
    raise structlog.DropEvent


def silent_logger() -> FilteringBoundLogger:
    """A logger that discards every event; below ``critical`` a call is a bare ``return``."""
    wrapper = structlog.make_filtering_bound_logger(logging.CRITICAL)
    return cast(
        FilteringBoundLogger,
        structlog.wrap_logger(structlog.ReturnLogger(), processors=[_drop], wrapper_class=wrapper),
    )


def default_logger(name: str) -> FilteringBoundLogger:
    """The logger named ``name`` as the application configured it, or a silent one."""
    if structlog.is_configured():
        return cast(FilteringBoundLogger, structlog.get_logger(name))
    if logging.getLogger().hasHandlers():
        stdlib = logging.getLogger(name)
        effective = stdlib.getEffectiveLevel()
        # structlog filters at the standard levels only: a custom level 15 filters as DEBUG
        level = max(n for n in (0, 10, 20, 30, 40, 50) if n <= effective)
        wrapper = structlog.make_filtering_bound_logger(level)
        return cast(
            FilteringBoundLogger,
            structlog.wrap_logger(
                stdlib,
                processors=[structlog.processors.KeyValueRenderer(key_order=["event"])],
                wrapper_class=wrapper,
            ),
        )
    return silent_logger()
