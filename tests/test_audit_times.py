"""Audit times follow the order of changes, on SQLite and PostgreSQL.

A record is stamped with the clock read once its instance is locked, and never before the
record ahead of it in the chain; ``audit verify`` reports a record stamped earlier than the
one before it, as a break if this release wrote it and as a warning on older data.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import structlog
from click.testing import Result
from helpers import EXAMPLE_DIR, make_registry
from typer.testing import CliRunner

from opcatflow.adapters.cli import app
from opcatflow.engine import Engine, FrozenClock, TransitionRefused, UnitOfWork
from opcatflow.engine.audit import REFUSED, AuditRecord, make_record
from opcatflow.engine.clock import Clock, SystemClock
from opcatflow.engine.scheduler import Scheduler
from opcatflow.engine.sql import tables as t
from opcatflow.engine.sql.store import TIMES_ORDERED_FROM

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CLEAN_ENV = {"OPCATFLOW_DB": None, "OPCATFLOW_ACTOR": None, "OPCATFLOW_ROLE": None}


class TickingClock:
    """Moves one second on every reading, so the order of readings shows in the records."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=1)
            return self._now


class SkewedClock:
    """The real time of a server whose clock is ``offset`` away from the others'."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return SystemClock().now() + self.offset


def open_engine(url: str, clock: Clock) -> Engine:
    return Engine.open(url, [EXAMPLE_DIR], make_registry(), clock=clock)


@pytest.fixture
def frozen(db_url: str) -> Iterator[Engine]:
    with open_engine(db_url, FrozenClock(T0)) as engine:
        yield engine


def new_case(engine: Engine) -> str:
    return engine.start("example", actor="ana", role="clerk", data={"title": "t"}).id


def times(engine: Engine, instance_id: str) -> list[datetime]:
    return [r.at for r in engine.history(instance_id)]


BLOCKED_BY = "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"


def in_store_write(thread: threading.Thread) -> bool:
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "connect" and code.co_filename.endswith("store.py"):
            return True
        frame = frame.f_back
    return False


def queued_for_next_batch(engine: Engine) -> bool:
    """Whether a writer of the same store waits for the batch holding the lock to commit
    (group commit: it then runs in the next batch)."""
    return engine.store.group.queued() > 0  # type: ignore[attr-defined]


def wait_until_blocked(engine: Engine, holder_pid: int | None, waiter: threading.Thread) -> None:
    """Return once ``waiter`` waits for the lock the test holds: queued behind the holder's
    batch if both fire through one store; else on PostgreSQL, a session blocked by the
    holder's; on SQLite, the thread inside ``store.connect()`` (whose writer lock the test
    holds, so it cannot have gone further)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if queued_for_next_batch(engine):
            return
        if holder_pid is None:
            if in_store_write(waiter):
                return
        else:
            with engine.store.engine.connect() as conn:
                if conn.execute(sa.text(BLOCKED_BY), {"pid": holder_pid}).scalar():
                    return
        time.sleep(0.01)
    pytest.fail("the second writer never waited for the lock")


def first_while_second_waits(first: Engine, second: Engine, case: str) -> list[AuditRecord]:
    """``first`` locks the case; ``second`` fires and waits for the lock; ``first`` fires,
    commits and lets it go. Returns the case's history."""
    waiter = threading.Thread(
        target=lambda: second.fire(case, "edit", actor="second", role="clerk")
    )
    postgresql = first.store.dialect == "postgresql"

    def hold(uow: UnitOfWork, _: object) -> None:
        # Called in the unit of work of first's fire, which holds the case's lock; the
        # backend's pid needs the connection behind it (the SQL store's own attribute).
        conn = uow.raw._conn  # type: ignore[attr-defined]  # under the engine's sealing
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() if postgresql else None
        waiter.start()
        wait_until_blocked(first, pid, waiter)

    first.fire(case, "edit", actor="first", role="clerk", also=hold)
    waiter.join(10)
    history = [r for r in first.history(case) if r.outcome in ("started", "applied")]
    assert [r.actor for r in history] == ["ana", "first", "second"]
    assert first.verify_audit().ok
    return history


def test_a_writer_that_waited_for_the_lock_is_stamped_after_the_writer_it_waited_for(
    db_url: str,
) -> None:
    with open_engine(db_url, TickingClock(T0)) as engine:
        history = first_while_second_waits(engine, engine, new_case(engine))
    assert history[1].at < history[2].at


def test_a_writer_whose_clock_is_behind_the_one_it_waited_for_takes_that_ones_time(
    db_url: str,
) -> None:
    ahead = T0 + timedelta(days=1)
    with (
        open_engine(db_url, FrozenClock(ahead)) as first,
        open_engine(db_url, TickingClock(T0)) as second,
    ):
        history = first_while_second_waits(first, second, new_case(second))
    assert [r.at for r in history[1:]] == [ahead, ahead]


def test_along_every_chain_times_never_decrease_under_writers_with_skewed_clocks(
    db_url: str,
) -> None:
    # Four servers whose clocks disagree by up to a second fire, are refused, and run the
    # deadline scheduler on the same cases; the cases' deadlines are overdue, so the
    # scheduler writes into the same chains.
    with open_engine(db_url, FrozenClock(SystemClock().now() - timedelta(days=40))) as engine:
        cases = [new_case(engine) for _ in range(3)]
    offsets = [timedelta(0), timedelta(milliseconds=-300), timedelta(milliseconds=200)]
    offsets.append(timedelta(seconds=-1))

    def server(offset: timedelta) -> None:
        with open_engine(db_url, SkewedClock(offset)) as engine:
            scheduler = Scheduler(engine, batch_size=1)
            for i in range(12):
                case = cases[i % len(cases)]
                if i % 4 == 3:
                    scheduler.tick()
                    continue
                with suppress(TransitionRefused):  # a refusal is a record of the chain too
                    engine.fire(case, "edit" if i % 2 else "approve", actor="w", role="clerk")

    with ThreadPoolExecutor(len(offsets)) as pool:
        list(pool.map(server, offsets))
    with open_engine(db_url, SystemClock()) as engine:
        Scheduler(engine).tick()  # whatever every tick above skipped (locked by a fire)
        for case in cases:
            stamps = times(engine, case)
            assert stamps == sorted(stamps), [
                (r.seq, r.at.isoformat(), r.actor, r.outcome, r.id) for r in engine.history(case)
            ]
            # the scheduler wrote into the chain; whether the reminder came before the due
            # date (or the case left the deadline's states first) is up to the threads' race
            assert {"reminder", "due"} & {r.outcome for r in engine.history(case)}
        report = engine.verify_audit()
        assert (report.ok, report.warnings) == (True, [])


def test_a_clock_set_back_stamps_the_record_with_the_time_of_the_one_before(
    frozen: Engine,
) -> None:
    clock = frozen.clock
    assert isinstance(clock, FrozenClock)
    case = new_case(frozen)
    clock.set(T0 + timedelta(hours=2))
    frozen.fire(case, "edit", actor="ana", role="clerk")
    clock.set(T0 + timedelta(hours=1))
    with structlog.testing.capture_logs() as logs:
        frozen.log = structlog.get_logger("opcatflow")  # given none, it chose when it was built
        frozen.fire(case, "edit", actor="ana", role="clerk")
        with pytest.raises(TransitionRefused):
            frozen.fire(case, "approve", actor="ana", role="clerk")
    assert times(frozen, case)[-3:] == [T0 + timedelta(hours=2)] * 3
    assert frozen.get(case).updated_at == T0 + timedelta(hours=2)
    behind = [e for e in logs if e["event"] == "clock_behind_audit_chain"]
    assert [(e["log_level"], e["instance_id"]) for e in behind] == [("warning", case)] * 2
    assert behind[0]["clock"] == (T0 + timedelta(hours=1)).isoformat()


def test_deadline_records_are_stamped_under_the_lock_and_never_before_the_one_before(
    frozen: Engine,
) -> None:
    clock = frozen.clock
    assert isinstance(clock, FrozenClock)
    case = new_case(frozen)
    clock.set(T0 + timedelta(days=30))
    frozen.fire(case, "edit", actor="ana", role="clerk")
    clock.set(T0 + timedelta(days=20))  # the tick runs for a later instant, on a clock behind
    report = Scheduler(frozen).tick(T0 + timedelta(days=60))
    assert [f.outcome for f in report.firings] == ["reminded", "due"]
    history = frozen.history(case)[-2:]  # after the start, its obligation and the edit
    assert [r.outcome for r in history] == ["reminder", "due"]
    assert [r.at for r in history] == [T0 + timedelta(days=30)] * 2
    clock.set(T0 + timedelta(days=40))
    frozen.fire(case, "edit", actor="ana", role="clerk")
    assert times(frozen, case)[-1] == T0 + timedelta(days=40)


# -- audit verify --------------------------------------------------------------------------


def forge_earlier_record(engine: Engine, instance_id: str) -> int:
    """What a release before this one could write: a well-hashed record stamped an hour
    before the record ahead of it. Returns its global id."""
    with engine.store.write() as uow:
        current, last = uow.instances.lock_for_append(instance_id)
        assert last is not None
        record = make_record(
            instance_id=instance_id,
            seq=current.audit_seq + 1,
            at=last - timedelta(hours=1),
            actor="ana",
            role="clerk",
            workflow_id=current.workflow_id,
            workflow_version=current.workflow_version,
            trigger="approve",
            from_state=current.state,
            to_state=None,
            outcome=REFUSED,
            reason="written by an older release",
            changes="{}",
            prev_hash=current.audit_head,
        )
        uow.audit.append(record)
        assert uow.instances.advance_audit_head(instance_id, record.seq, record.hash)
    found = engine.history(instance_id)[-1].id
    assert found is not None
    return found


def verify(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["--db", db_url, "audit", "verify", *args], env=CLEAN_ENV)


def test_a_record_stamped_before_the_one_before_it_breaks_a_chain_written_by_this_release(
    db_url: str, frozen: Engine
) -> None:
    case = new_case(frozen)
    forged = forge_earlier_record(frozen, case)
    report = frozen.verify_audit()
    assert report.first_break is not None
    assert (report.ok, report.first_break.id, report.warnings) == (False, forged, [])
    assert "earlier than the record before it" in report.first_break.problem
    result = verify(db_url)
    assert result.exit_code == 8
    seq = 3  # after the start and the record of the obligation it armed
    assert f"error: audit chain broken at audit record {forged} (instance {case}, seq {seq})" in (
        result.stderr
    )


def test_a_record_of_older_data_stamped_before_the_one_before_it_is_a_warning(
    db_url: str, frozen: Engine
) -> None:
    case = new_case(frozen)
    forged = forge_earlier_record(frozen, case)
    with frozen.store.connect(
        write=True
    ) as conn:  # a database that an older release wrote: no marker
        conn.execute(t.meta.delete().where(t.meta.c.key == TIMES_ORDERED_FROM))
    with open_engine(db_url, FrozenClock(T0)) as upgraded:  # this release opens it
        assert upgraded.store.audit_times_ordered_from() == forged
        report = upgraded.verify_audit()
        assert (report.ok, report.breaks, [w.id for w in report.warnings]) == (True, [], [forged])
    result = verify(db_url)
    assert result.exit_code == 0
    assert "audit chain unanchored: 3 records over 1 instance" in result.stdout
    assert f"1 warning on records of older data:\n  audit record {forged} " in result.stdout
    result = verify(db_url, "--json")
    assert result.exit_code == 0
    assert [(w["id"], w["seq"]) for w in json.loads(result.stdout)["warnings"]] == [(forged, 3)]


def test_a_new_database_holds_no_older_data(frozen: Engine) -> None:
    assert frozen.store.audit_times_ordered_from() == 0
