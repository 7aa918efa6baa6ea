"""Requirement: several worker processes on one PostgreSQL database fire each due timer
exactly once, send each overdue alert once, and a worker killed (SIGKILL) in the middle of a
batch loses and duplicates nothing."""

from __future__ import annotations

import multiprocessing
import os
import signal
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from conftest import new_pg_schema
from timerload import open_engine, run_worker, seed_due_tickets

from opcatflow.engine import FrozenClock
from opcatflow.engine.sql import tables as t

TIMERS = 10_000
ALERTING = TIMERS // 10  # the cases that also owe a reply, and alert
CREATED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = CREATED + timedelta(hours=2)  # every timer fell due an hour ago


@pytest.fixture
def pg_url(pg_admin: sa.Engine) -> str:
    schema, url = new_pg_schema(pg_admin)
    yield url
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


@pytest.mark.slow
def test_three_workers_fire_each_timer_once_even_when_one_is_killed_mid_batch(pg_url: str) -> None:
    seed_due_tickets(pg_url, TIMERS, CREATED, CREATED + timedelta(hours=1))
    spawn = multiprocessing.get_context("spawn")
    reached = spawn.Event()
    victim = spawn.Process(target=run_worker, args=(pg_url, NOW, 200, 150, reached))
    victim.start()
    with spawn.Pool(2) as pool:
        survivors = pool.starmap_async(run_worker, [(pg_url, NOW, 100)] * 2)
        assert reached.wait(timeout=300), "the victim never got into a batch"
        # 149 timers of its batch are fired, audited and marked in its open transaction
        os.kill(victim.pid, signal.SIGKILL)
        victim.join()
        fired = survivors.get(timeout=600)
    assert victim.exitcode == -signal.SIGKILL
    assert sum(fired) == TIMERS  # the survivors fired all, the victim's batch included
    assert all(n > 0 for n in fired)  # both took part: claims did not collide

    with open_engine(pg_url, FrozenClock(NOW)) as engine, engine.store.connect() as conn:
        c = t.timers.c
        statuses = dict(conn.execute(sa.select(c.status, sa.func.count()).group_by(c.status)).all())
        # per case: the escalation's due timer; for some, the reply's and its overdue alert
        assert statuses == {"fired": TIMERS + 2 * ALERTING}
        a = t.audit.c
        per_instance = (
            sa.select(a.instance_id, sa.func.count().label("n"))
            .where(a.actor == "scheduler")
            .group_by(a.instance_id)
            .subquery()
        )
        counts = dict(
            conn.execute(
                sa.select(per_instance.c.n, sa.func.count()).group_by(per_instance.c.n)
            ).all()
        )
        # per case, once each: answer due, escalate applied, answer closed as escalated (and
        # for those that owe a reply: reply due, its overdue alert)
        assert counts == {3: TIMERS - ALERTING, 5: ALERTING}
        alerts = conn.execute(
            sa.select(a.instance_id, sa.func.count())
            .where(a.outcome == "overdue")
            .group_by(a.instance_id)
        ).all()
        assert len(alerts) == ALERTING
        assert {n for _, n in alerts} == {1}
        m = t.outbox.c
        sent = conn.execute(
            sa.select(m.instance_id, sa.func.count())
            .where(m.event == "ticket.overdue.reply")
            .group_by(m.instance_id)
        ).all()
        assert len(sent) == ALERTING  # one alert message per case, never two
        assert {n for _, n in sent} == {1}
        states = dict(
            conn.execute(
                sa.select(t.instances.c.state, sa.func.count()).group_by(t.instances.c.state)
            ).all()
        )
        assert states == {"escalated": TIMERS}
    with open_engine(pg_url, FrozenClock(NOW)) as engine:
        assert engine.verify_audit().ok
