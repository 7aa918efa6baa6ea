"""``Dispatcher``: delivers outbox messages, with retries, backoff, dead letters and leases.

One round (:meth:`Dispatcher.run_once`): claim a batch of due rows in a short transaction,
render and send each outside any transaction, then record every outcome in a second short
transaction. A crash between a send and its record leaves the row claimed; its lease runs
out and it is sent again (at least once, never lost). Run several dispatchers, in threads or
processes, against one PostgreSQL database: each claims different rows.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from structlog.typing import FilteringBoundLogger

from opcatflow.engine.clock import Clock, SystemClock
from opcatflow.engine.errors import InstanceNotFound
from opcatflow.engine.logs import default_logger
from opcatflow.engine.ports import Store
from opcatflow.engine.register_bodies import bodies_of
from opcatflow.engine.rows import SendOutcome as Outcome
from opcatflow.engine.settings import Settings
from opcatflow.engine.sharing import REASON, Policy
from opcatflow.notifications.channel import Attachment, Channel, DeliveryError, Outgoing
from opcatflow.notifications.directory import DirectorySource, Target
from opcatflow.notifications.model import (
    DEAD,
    FAILED,
    ROUTE,
    SENT,
    NewMessage,
    OutboxEntry,
    idempotency_key,
)
from opcatflow.notifications.redaction import WITHHELD, Audience, hide, still_shown
from opcatflow.notifications.templates import TemplateProblem, TemplateSet


@dataclass(frozen=True)
class DispatchPolicy:
    """How hard the dispatcher tries.

    Attributes:
        max_attempts: attempts before a message goes dead (the dead-letter state).
        backoff_base: seconds before the second attempt; doubles with each attempt.
        backoff_max: the longest wait between attempts, in seconds.
        lease: seconds a claimed message stays reserved for its dispatcher.
        batch_size: messages claimed per round.
    """

    max_attempts: int = 8
    backoff_base: float = 30.0
    backoff_max: float = 3600.0
    lease: float = 300.0
    batch_size: int = 50

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.batch_size < 1:
            raise ValueError("max_attempts and batch_size must be at least 1")
        if not 0 < self.backoff_base <= self.backoff_max or self.lease <= 0:
            raise ValueError("need 0 < backoff_base <= backoff_max and lease > 0")

    def backoff(self, attempts: int, rng: random.Random) -> timedelta:
        """Exponential backoff with jitter: a delay in [d/2, d], d = base * 2^(attempts-1)."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** min(attempts - 1, 62))
        return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))


@dataclass
class DispatchStats:
    """What one or more rounds did."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    routed: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: DispatchStats) -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.failed += other.failed
        self.dead += other.dead
        self.routed += other.routed


class Dispatcher:
    """Delivers the outbox of one store through the given channels.

    Args:
        store: the database holding the outbox.
        channels: channel name (``email``, ``webhook``, ``log``, ``file``) -> channel.
        templates: where message templates are found.
        directory: the recipients directory, for messages still to be routed.
        policy: attempts, backoff, lease, batch size.
        clock: the only source of time (tests pass a FrozenClock).
        logger: a structlog logger; events carry ids, never message content.
        rng: the jitter's random source.
        sharing: the NPM's settings (``Settings.policy``): a message showing personal data
            is checked again, when it is sent, against the bodies of the authority register
            and the instance's consents and decisions as they are then.
    """

    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        *,
        templates: TemplateSet,
        directory: DirectorySource,
        policy: DispatchPolicy | None = None,
        clock: Clock | None = None,
        logger: FilteringBoundLogger | None = None,
        rng: random.Random | None = None,
        sharing: Policy | None = None,
    ) -> None:
        self.store = store
        self.channels = dict(channels)
        self.templates = templates
        self.directory = directory
        self.policy = policy or DispatchPolicy()
        self.clock = clock or SystemClock()
        self.log = logger or default_logger("opcatflow.notifications")
        self.rng = rng or random.Random()
        self.sharing = sharing if sharing is not None else Settings.default().policy

    # -- rounds ---------------------------------------------------------------------------

    def run_once(self) -> DispatchStats:
        """Claim one batch of due messages, deliver them, record the outcomes."""
        now = self.clock.now()
        with self.store.write() as uow:
            batch = uow.outbox.claim(
                now=now,
                lease=timedelta(seconds=self.policy.lease),
                limit=self.policy.batch_size,
            )
        stats = DispatchStats(claimed=len(batch))
        outcomes = []
        for entry in batch:
            if entry.channel == ROUTE:
                self._route(entry, stats)
            else:
                outcomes.append(self._deliver(entry))
        if outcomes:
            with self.store.write() as uow:
                uow.outbox.finish(outcomes, self.clock.now())
        for outcome in outcomes:
            self._count(outcome, stats)
        return stats

    def drain(self, max_rounds: int = 1_000_000) -> DispatchStats:
        """Run rounds until a round claims nothing (messages due later are left)."""
        total = DispatchStats()
        for _ in range(max_rounds):
            stats = self.run_once()
            total.add(stats)
            if stats.claimed == 0:
                break
        return total

    def run(self, stop: threading.Event, *, idle: float = 2.0) -> None:
        """Deliver until ``stop`` is set, waiting ``idle`` seconds when nothing is due."""
        self.log.info("dispatcher_started", batch_size=self.policy.batch_size)
        try:
            while not stop.is_set():
                try:
                    stats = self.run_once()
                except Exception as err:  # the database went away: keep the worker alive
                    self.log.error("dispatcher_round_failed", error=f"{type(err).__name__}: {err}")
                    stop.wait(idle)
                    continue
                if stats.claimed == 0:
                    stop.wait(idle)
        finally:
            for channel in self.channels.values():
                channel.close()
            self.log.info("dispatcher_stopped")

    # -- one message ----------------------------------------------------------------------

    def outgoing(self, entry: OutboxEntry) -> Outgoing:
        """The message a channel is given for a row (renders its template).

        Raises:
            TemplateProblem: the template is missing, broken, or went past its budget.
        """
        payload = entry.payload
        to = payload.get("to") or {}
        subject = text = ""
        html = None
        locale = payload.get("locale")
        if "template" in payload:
            rendered = self.templates.render(payload["template"], locale, payload["context"])
            subject, text, html, locale = (
                rendered.subject,
                rendered.text,
                rendered.html,
                rendered.locale,
            )
        elif "message" in payload:  # written whole (an audit checkpoint): nothing to render
            subject, text = payload["message"]["subject"], payload["message"]["text"]
        attachments = tuple(
            Attachment(a["name"], a["type"], a["text"]) for a in payload.get("attachments", ())
        )
        return Outgoing(
            id=entry.id,
            idempotency_key=entry.idempotency_key,
            channel=entry.channel,
            event=entry.event,
            recipient=entry.recipient,
            name=to.get("name"),
            address=to.get("address"),
            locale=locale,
            subject=subject,
            text=text,
            html=html,
            cloudevent=payload.get("cloudevent"),
            instance_id=entry.instance_id,
            created_at=entry.created_at,
            attempt=entry.attempts,
            attachments=attachments,
        )

    def _deliver(self, entry: OutboxEntry) -> Outcome:
        if entry.attempts > self.policy.max_attempts:
            return Outcome(entry, DEAD, error=f"abandoned mid-send {entry.attempts - 1} times")
        channel = self.channels.get(entry.channel)
        if channel is None:
            return Outcome(entry, DEAD, error=f"channel {entry.channel!r} is not configured")
        try:
            channel.send(self.outgoing(self._rechecked(entry)))
        except TemplateProblem as err:
            if err.missing:  # perhaps being deployed: retry; a broken template will not mend
                return self._retry(entry, f"template: {err}")
            return Outcome(entry, DEAD, error=f"template: {err}")
        except DeliveryError as err:
            if err.permanent:
                return Outcome(entry, DEAD, error=str(err))
            return self._retry(entry, str(err))
        except Exception as err:
            return self._retry(entry, f"{type(err).__name__}: {err}")
        return Outcome(entry, SENT)

    def _rechecked(self, entry: OutboxEntry) -> OutboxEntry:
        """The entry with the personal fields it showed when written, and may no longer
        show (consent withdrawn, decision expired), withheld."""
        sharing = entry.payload.get("sharing")
        if not sharing:
            return entry
        data: dict[str, Any] = {}
        context = entry.payload["context"]
        audience = Audience(sharing.get("body"), frozenset(sharing.get("uses") or ()))
        now = self.clock.now()
        today = self.sharing.today(now)  # the NPM's day: consents expire on its dates
        with self.store.read() as uow:
            if entry.instance_id is not None:
                # an erased instance raises: nothing of it may be shown
                with suppress(InstanceNotFound):
                    data = dict(uow.instances.get(entry.instance_id).data)
            if REASON in sharing["shown"]:
                data[REASON] = context.get("reason")
            # the bodies as the authority register says now: a body retired since is refused
            policy = replace(self.sharing, bodies=bodies_of(uow, now, self.sharing.calendar))
            still = still_shown(data, sharing["shown"], audience, policy, today)
        gone = [n for n in sharing["shown"] if n not in still]
        if not gone:
            return entry
        parts = sharing.get("parts") or {}
        shown_data = dict(context.get("data") or {})
        for name in gone:
            if name in shown_data:
                hidden = frozenset(parts[name]) if name in parts else None
                shown_data[name] = hide(shown_data[name], hidden)
        withheld = [*context.get("withheld", []), *(n for n in gone if n != REASON)]
        context = {**context, "data": shown_data, "withheld": withheld}
        if REASON in gone:
            context["reason"] = WITHHELD
        self.log.info("notification_withheld_at_dispatch", message_id=entry.id, fields=len(gone))
        return replace(entry, payload={**entry.payload, "context": context})

    def _retry(self, entry: OutboxEntry, error: str) -> Outcome:
        if entry.attempts >= self.policy.max_attempts:
            return Outcome(entry, DEAD, error=f"gave up after {entry.attempts} attempts: {error}")
        due = self.clock.now() + self.policy.backoff(entry.attempts, self.rng)
        return Outcome(entry, FAILED, next_attempt_at=due, error=error)

    def _count(self, outcome: Outcome, stats: DispatchStats) -> None:
        e = outcome.entry
        fields = {"message_id": e.id, "notification_event": e.event, "channel": e.channel}
        if outcome.status == SENT:
            stats.sent += 1
            self.log.debug("notification_sent", attempts=e.attempts, **fields)
        elif outcome.status == FAILED:
            stats.failed += 1
            self.log.warning(
                "notification_failed",
                attempts=e.attempts,
                retry_at=_iso(outcome.next_attempt_at),
                error=outcome.error,
                **fields,
            )
        else:
            stats.dead += 1
            stats.errors.append(outcome.error or "")
            self.log.error("notification_dead", attempts=e.attempts, error=outcome.error, **fields)

    # -- routing --------------------------------------------------------------------------

    def _route(self, entry: OutboxEntry, stats: DispatchStats) -> None:
        """Resolve a message's recipients again; on success write one row per recipient."""
        targets, error = self._targets(entry)
        messages = [] if error else [self._routed(entry, t) for t in targets]
        if error is None:
            outcome = Outcome(entry, SENT)
        elif entry.attempts >= self.policy.max_attempts:
            outcome = Outcome(
                entry, DEAD, error=f"gave up after {entry.attempts} attempts: {error}"
            )
        else:
            due = self.clock.now() + self.policy.backoff(entry.attempts, self.rng)
            outcome = Outcome(entry, FAILED, next_attempt_at=due, error=error)
        now = self.clock.now()
        with self.store.write() as uow:
            if uow.outbox.finish([outcome], now) == 1:
                uow.outbox.add(messages, now)
        if messages:
            stats.routed += 1
            self.log.info("notification_routed", message_id=entry.id, recipients=len(messages))
        else:
            self._count(outcome, stats)

    def _targets(self, entry: OutboxEntry) -> tuple[list[Target], str | None]:
        route = entry.payload.get("route") or {}
        directory = self.directory.current()
        if "role" in route:
            found = directory.with_role(route.get("workflow", ""), route["role"])
            if found:
                return found, None
            return [], f"no one in the recipients directory has role {route['role']!r}"
        if "people" in route:
            found, missing = directory.by_ids(route["people"])
            if missing:
                return [], f"not in the recipients directory: {', '.join(missing)}"
            return found, None
        if "address_field" in route:
            field = route["address_field"]
            return [], f"field {field!r} held no email address when the message was written"
        return [], f"cannot route {route!r}"

    def _routed(self, entry: OutboxEntry, target: Target) -> NewMessage:
        payload = entry.payload
        context = {
            **payload["context"],
            "recipient": {"name": target.name, "locale": target.locale},
        }
        return NewMessage(
            entry.instance_id,
            entry.event,
            target.channel,
            target.key,
            {
                "template": payload["template"],
                "locale": target.locale,
                "to": {"name": target.name, "address": target.address},
                "context": context,
            },
            idempotency_key(entry.idempotency_key, target.channel, target.key),
        )


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None
