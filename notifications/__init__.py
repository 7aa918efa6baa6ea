"""Notifications: what is said to whom, written to the outbox in the transition's transaction
and delivered afterwards (see docs/notifications.md).

Embed it: ``Engine(..., hooks=[OutboxWriter(DirectoryFile(path))])``, then run a
:class:`Dispatcher` over the same store with the channels of :mod:`opcatflow.adapters.channels`.
"""

from __future__ import annotations

from opcatflow.engine.sandbox import BudgetExceeded as RenderLimitExceeded
from opcatflow.engine.sandbox import Limits
from opcatflow.notifications.channel import Channel, DeliveryError, Outgoing
from opcatflow.notifications.check import check_catalog, check_workflow
from opcatflow.notifications.directory import (
    ConfigError,
    Directory,
    DirectoryFile,
    DirectorySource,
    load_directory,
    parse_directory,
)
from opcatflow.notifications.dispatcher import Dispatcher, DispatchPolicy, DispatchStats
from opcatflow.notifications.model import STATUSES, OutboxEntry
from opcatflow.notifications.outbox import OutboxWriter
from opcatflow.notifications.redaction import WITHHELD, Audience
from opcatflow.notifications.settings import NotificationSettings, load_settings
from opcatflow.notifications.templates import Rendered, TemplateProblem, TemplateSet

__all__ = [
    "STATUSES",
    "WITHHELD",
    "Audience",
    "Channel",
    "ConfigError",
    "DeliveryError",
    "Directory",
    "DirectoryFile",
    "DirectorySource",
    "DispatchPolicy",
    "DispatchStats",
    "Dispatcher",
    "Limits",
    "NotificationSettings",
    "OutboxEntry",
    "OutboxWriter",
    "Outgoing",
    "RenderLimitExceeded",
    "Rendered",
    "TemplateProblem",
    "TemplateSet",
    "check_catalog",
    "check_workflow",
    "load_directory",
    "load_settings",
    "parse_directory",
]
