"""Group commit: concurrent write units of work of one process share one transaction and one
durable commit.

One commit per transition caps a process at the disk's flush rate, however many threads fire.
Here callers hand their work (a function of a unit of work) to :meth:`GroupCommit.run` and
queue. The first caller to find nobody leading becomes the leader: it takes every queued
member (itself first), opens one write unit of work, runs each member's work in a savepoint
of its own, commits once, hands every member its own result, and passes the lead to the first
caller that queued meanwhile. There is no timer: a lone caller forms a batch of one and waits
for nobody; a batch is simply whoever arrived while the previous one was running and flushing.

- A member whose work raises gets its exception; only its savepoint is rolled back, so the
  others still commit (a refusal is not an exception: it is stored and committed like any
  change, then raised by the engine after the commit).
- If the batch's commit fails, each member that had succeeded runs again alone, in a unit of
  work of its own; one that fails again gets that error (a :class:`StoreError` for a store
  failure). Work may therefore run twice: it must have no effect outside its unit of work.
- A member other than the first may be told by the store that a lock it needs is held by
  another transaction (``is_busy``): it is put back at the head of the queue and runs in a
  later batch, rather than wait on a lock while the batch holds others (two batches each
  waiting on the other's rows would deadlock).
- :meth:`close` refuses new work and waits for the batch in flight and the queue to drain.

Work runs in the leader's thread, in the caller's :mod:`contextvars` context.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from structlog.typing import FilteringBoundLogger

from opcatflow.engine.errors import StoreError

U = TypeVar("U")
T = TypeVar("T")

MAX_BATCH = 64  # a bound on one transaction's size (and on the latency of its last member)


@dataclass(frozen=True, slots=True)
class GroupStats:
    """What the batches have been so far (for benchmarks and operators).

    Attributes:
        batches: transactions committed or attempted by a leader.
        members: units of work they carried (a member run again counts again).
        largest: the largest batch.
        waited: seconds members spent queued before their batch began, summed.
        retried_alone: members run again alone after their batch's commit failed.
        deferred: members put back in the queue because a lock they needed was busy.
    """

    batches: int = 0
    members: int = 0
    largest: int = 0
    waited: float = 0.0
    retried_alone: int = 0
    deferred: int = 0

    @property
    def mean_size(self) -> float:
        return self.members / self.batches if self.batches else 0.0


class _Member:
    __slots__ = (
        "context", "done", "error", "future", "lead", "ok", "queued_at", "result", "retry",
        "work",
    )  # fmt: skip

    def __init__(self, work: Callable[[Any], Any], future: Future[Any] | None = None) -> None:
        self.work = work
        self.context = contextvars.copy_context()
        # A caller waiting in its thread holds ``done`` (released when the member has its
        # outcome, or the lead); one that did not wait (``run_soon``) gets ``future`` settled.
        self.future = future
        self.done = threading.Lock()
        if future is None:
            self.done.acquire()
        self.queued_at = time.monotonic()
        self.result: Any = None
        self.error: BaseException | None = None
        self.ok = False
        self.lead = False
        self.retry = False


class GroupCommit(Generic[U]):
    """Leader and followers over one store's write units of work.

    Args:
        begin: opens a write unit of work (commits when its block ends, rolls back if it
            raises; store errors come out of it as :class:`StoreError`).
        savepoint: a savepoint of a unit of work.
        translate: turns an exception raised by a member's work into what its caller gets
            (a driver error into :class:`StoreError`).
        is_busy: whether an exception means a lock the member needed is held by another
            transaction (the member then runs in a later batch).
        share: called on the unit of work before its second member runs (a store bounds
            lock waits there); ``unshare`` before the commit.
        logger: batch size and wait are logged at debug.
    """

    def __init__(
        self,
        begin: Callable[[], AbstractContextManager[U]],
        savepoint: Callable[[U], AbstractContextManager[None]],
        *,
        translate: Callable[[BaseException], BaseException] = lambda err: err,
        is_busy: Callable[[BaseException], bool] = lambda err: False,
        share: Callable[[U], None] = lambda uow: None,
        unshare: Callable[[U], None] = lambda uow: None,
        logger: FilteringBoundLogger,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._begin = begin
        self._savepoint = savepoint
        self._translate = translate
        self._is_busy = is_busy
        self._share = share
        self._unshare = unshare
        self.log = logger
        self.max_batch = max_batch
        self._guard = threading.Condition(threading.Lock())
        self._queue: deque[_Member] = deque()
        self._leading = False
        self._closed = False
        # batches, members, largest, waited, retried alone, deferred (see GroupStats)
        self._counts: list[float] = [0, 0, 0, 0.0, 0, 0]
        self._committing: ThreadPoolExecutor | None = None
        self._here = threading.local()

    def stats(self) -> GroupStats:
        with self._guard:
            batches, members, largest, waited, retried, deferred = self._counts
        return GroupStats(
            int(batches), int(members), int(largest), waited, int(retried), int(deferred)
        )

    def queued(self) -> int:
        """How many callers wait for a batch (not those in the batch running now)."""
        with self._guard:
            return len(self._queue)

    def run(self, work: Callable[[U], T]) -> T:
        """Run ``work`` in a write unit of work, possibly shared with other callers'; returns
        its result once the commit is durable, or raises its exception.

        Raises:
            StoreError: the store is closed, or the commit failed (and failed again alone).
        """
        with self._guard:
            if self._closed:
                raise StoreError("the store is closed")
            alone = not self._leading  # nobody leads: nobody is queued either
            if alone:
                self._leading = True
            else:
                member = _Member(work)
                self._queue.append(member)
        if alone:  # a batch of one, run in the caller's own thread and context
            began = time.monotonic()
            try:
                with self._begin() as uow:
                    return work(uow)
            finally:
                self._finish([], began, alone=True)
        if not member.lead:
            member.done.acquire()  # until it has its outcome, or is handed the lead
        if member.lead:  # the leader is always the first member of the batch it runs
            self._lead()
        if member.error is not None:
            raise member.error
        result: T = member.result
        return result

    def run_soon(self, work: Callable[[U], T]) -> Future[T]:
        """Queue ``work`` as :meth:`run` does, without waiting: the future is settled with its
        result or exception once its batch's commit is durable (or has failed). For a caller
        that must not block (an event loop): the batch is led by the committing thread, which
        the first such caller to find nobody leading starts.

        Raises:
            StoreError: the store is closed.
        """
        future: Future[T] = Future()
        member = _Member(work, future)
        with self._guard:
            if self._closed:
                raise StoreError("the store is closed")
            self._queue.append(member)
            start = not self._leading
            if start:
                self._leading = True
                member.lead = True
        if start:
            self._committer().submit(self._commit_on)
        return future

    def _committer(self) -> ThreadPoolExecutor:
        # One thread leads the batches of callers that do not wait (made on first use).
        if self._committing is None:
            with self._guard:
                if self._committing is None:
                    self._committing = ThreadPoolExecutor(1, thread_name_prefix="opcatflow-commit")
        return self._committing

    def close(self) -> None:
        """Refuse new work; return once the batch in flight and every queued member are done."""
        with self._guard:
            self._closed = True
            while self._leading:
                self._guard.wait()
        if self._committing is not None:
            self._committing.shutdown()

    # -- the leader ---------------------------------------------------------------------------

    def _lead(self) -> None:
        # Batch after batch while the next to lead is a caller that is not waiting in a
        # thread of its own (``run_soon``): this thread leads for it.
        while self._lead_one():
            pass

    def _lead_one(self) -> bool:
        with self._guard:
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
        for member in batch:
            member.lead = member.retry = False
        began = time.monotonic()
        try:
            if len(batch) == 1:
                self._alone(batch[0])
            else:
                self._together(batch)
        finally:
            successor = self._finish(batch, began)
        return successor is not None and successor.future is not None

    def _alone(self, member: _Member) -> None:
        try:
            with self._begin() as uow:
                member.result = member.context.run(member.work, uow)
        except BaseException as err:
            member.error = self._translate(err)

    def _together(self, batch: list[_Member]) -> None:
        try:
            with self._begin() as uow:
                for index, member in enumerate(batch):
                    if index == 1:
                        self._share(uow)
                    try:
                        with self._savepoint(uow):
                            member.result = member.context.run(member.work, uow)
                        member.ok = True
                    except BaseException as err:
                        if index > 0 and self._is_busy(err):
                            member.retry = True
                        else:
                            member.error = self._translate(err)
                self._unshare(uow)
        except BaseException as err:
            # The commit (or the transaction itself) failed: nothing of the batch is stored.
            applied = [m for m in batch if m.ok]
            self.log.warning(
                "group_commit_failed", batch=len(batch), retrying=len(applied), error=repr(err)
            )
            for member in batch:
                if not member.ok and member.error is None and not member.retry:
                    member.error = self._translate(err)  # failed before its turn came
            for member in applied:
                member.ok = False
                member.result = None
                self._alone(member)
            with self._guard:
                self._counts[4] += len(applied)

    def _finish(self, batch: list[_Member], began: float, *, alone: bool = False) -> _Member | None:
        """Count the batch, hand each member its outcome, and pass the lead on; returns the
        member that leads next (``None``: nobody is queued)."""
        now = time.monotonic()
        waited = [began - m.queued_at for m in batch] or [0.0]
        deferred = [m for m in batch if m.retry]
        size = 1 if alone else len(batch)
        with self._guard:
            counts = self._counts
            counts[0] += 1
            counts[1] += size
            counts[2] = max(counts[2], size)
            counts[3] += sum(waited)
            counts[5] += len(deferred)
            for member in reversed(deferred):
                self._queue.appendleft(member)
            for member in deferred:
                member.queued_at = now
            successor = self._queue[0] if self._queue else None
            if successor is not None:
                successor.lead = True
            else:
                self._leading = False
                self._guard.notify_all()
        self.log.debug(
            "group_commit",
            batch=size,
            wait_ms=round(1000 * max(waited), 3),
            took_ms=round(1000 * (now - began), 3),
            deferred=len(deferred),
        )
        for index, member in enumerate(batch):
            if member.retry:
                continue
            if member.future is not None:
                _settle(member)
            elif index > 0:  # the first of a batch led it: it is not waiting
                member.done.release()
        if successor is not None and successor.future is None:
            successor.done.release()  # it leads from its own thread
        elif successor is not None and not self._in_committer():
            # A waiting caller's thread must not lead on for others: the committing thread does
            self._committer().submit(self._commit_on)
            return None
        return successor

    def _in_committer(self) -> bool:
        return getattr(self._here, "committing", False)

    def _commit_on(self) -> None:
        self._here.committing = True  # this thread is the committing thread
        self._lead()


def _settle(member: _Member) -> None:
    future = member.future
    assert future is not None
    if member.error is not None:
        future.set_exception(member.error)
    else:
        future.set_result(member.result)
