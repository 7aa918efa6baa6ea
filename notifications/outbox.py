"""``OutboxWriter``: the engine hook that writes notifications in the transition's transaction.

Hand it to the engine (``Engine(..., hooks=[OutboxWriter(directory)])``): every start,
applied trigger and deadline event then writes its messages in the same unit of work, so
they commit with the change or not at all. It does no I/O besides those inserts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from structlog.typing import FilteringBoundLogger

from opcatflow.engine.events import DeadlineEvent, TransitionEvent
from opcatflow.engine.logs import default_logger
from opcatflow.engine.ports import UnitOfWork
from opcatflow.engine.register_bodies import bodies_of
from opcatflow.engine.sharing import Policy
from opcatflow.notifications.compose import Composer, Occurrence
from opcatflow.notifications.directory import DirectorySource
from opcatflow.notifications.model import NewMessage
from opcatflow.notifications.titles import reference_titles


class OutboxWriter:
    """A :class:`~opcatflow.engine.TransactionHook` writing outbox messages.

    Args:
        directory: the recipients directory (a :class:`DirectoryFile` is re-read when its file
            changes).
        policy: the NPM's settings (``Settings.policy``), for redaction; the bodies are
            read from the authority register in the transaction of each occurrence.
        logger: a structlog logger.
        titles: register id -> its title field (``notifications.titles.title_fields``): the
            templates then see the title of each entry the instance refers to (``titles``).
    """

    def __init__(
        self,
        directory: DirectorySource,
        *,
        policy: Policy | None = None,
        logger: FilteringBoundLogger | None = None,
        titles: Mapping[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.composer = Composer(policy)
        self.titles = dict(titles or {})
        self.log = logger or default_logger("opcatflow.notifications")

    def on_change(self, uow: UnitOfWork, event: TransitionEvent) -> None:
        """Write the messages of a start or an applied trigger."""
        self._write(uow, Occurrence.of_change(event))

    def on_deadline(self, uow: UnitOfWork, event: DeadlineEvent) -> None:
        """Write the messages of a reminder, a due date or an overdue alert; none while an
        embargo holds the deadline's due date: when such a message goes out would tell the
        date it leaves out (those who may read it find the deadline in their agenda)."""
        if event.deadline in event.workflow.withheld_deadlines(None, event.instance):
            self.log.info(
                "deadline_message_withheld",
                instance_id=event.instance.id,
                deadline=event.deadline,
                kind=event.kind,
            )
            return
        self._write(uow, Occurrence.of_deadline(event))

    def _write(self, uow: UnitOfWork, occ: Occurrence) -> None:
        # the register entries as they hold on the NPM's day of the occurrence
        calendar = self.composer.policy.calendar
        today = calendar.local_date(occ.at)
        found = reference_titles(uow, occ.workflow, occ.instance.data, self.titles, today)
        occ = dataclasses.replace(occ, titles=found)
        # redacted for the bodies of the authority register as this transaction reads them
        composer = self.composer.with_bodies(bodies_of(uow, occ.at, calendar))
        messages = composer.messages(occ, self.directory.current())
        uow.outbox.add(messages, occ.at)
        for m in messages:
            if m.last_error is not None:
                self._unrouted(m)

    def _unrouted(self, m: NewMessage) -> None:
        self.log.warning(
            "notification_unrouted",
            instance_id=m.instance_id,
            notification_event=m.event,
            recipient=m.recipient,
            status=m.status,
            error=m.last_error,
        )
