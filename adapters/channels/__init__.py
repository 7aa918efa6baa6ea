"""Delivery channels: one small class each behind
:class:`opcatflow.notifications.channel.Channel`."""

from __future__ import annotations

from opcatflow.adapters.channels.file import FileChannel
from opcatflow.adapters.channels.log import LogChannel
from opcatflow.adapters.channels.smtp import SmtpChannel
from opcatflow.adapters.channels.webhook import WebhookChannel, sign

__all__ = ["FileChannel", "LogChannel", "SmtpChannel", "WebhookChannel", "sign"]
