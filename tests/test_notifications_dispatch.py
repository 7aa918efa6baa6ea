"""The dispatcher: delivery, retries with backoff and jitter, dead letters, leases (at least
once), routing later, and several dispatchers sharing one database."""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from notify_helpers import TEMPLATES, Recorder, make_directory, notice_engine, rows

from opcatflow.engine import Engine, FrozenClock, SQLAlchemyStore
from opcatflow.notifications.directory import Directory
from opcatflow.notifications.dispatcher import Dispatcher, DispatchPolicy
from opcatflow.notifications.model import DEAD, FAILED, PENDING, ROUTE, SENDING, SENT
from opcatflow.notifications.templates import TemplateSet

POLICY = DispatchPolicy(max_attempts=3, backoff_base=60, backoff_max=600, lease=120, batch_size=10)


class Source:
    """A directory the test can swap, like an edited file."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def current(self) -> Directory:
        return self.directory


def dispatcher(
    engine: Engine,
    clock: FrozenClock,
    channels: dict[str, Recorder],
    *,
    templates: TemplateSet | None = None,
    policy: DispatchPolicy = POLICY,
    directory: Source | None = None,
    store: SQLAlchemyStore | None = None,
) -> Dispatcher:
    return Dispatcher(
        store or engine.store,
        channels,
        templates=templates or TemplateSet([TEMPLATES], include_bundled=False),
        directory=directory or Source(make_directory()),
        policy=policy,
        clock=clock,
        rng=random.Random(7),
    )


def recorders(failures: int = 0, permanent: bool = False) -> dict[str, Recorder]:
    return {name: Recorder(name, failures, permanent) for name in ("email", "log", "file")}


def start(engine: Engine, **data: object) -> str:
    return engine.start("notice", actor="a", role="clerk", data=data).id


def test_due_messages_are_rendered_in_the_recipients_locale_and_marked_sent(
    db_url: str, clock: FrozenClock
) -> None:
    channels = recorders()
    with notice_engine(db_url, clock) as engine:
        start(engine, place="Prison A", person="Ana")
        stats = dispatcher(engine, clock, channels).run_once()
        found = rows(engine)
    assert (stats.claimed, stats.sent, stats.failed, stats.dead) == (2, 2, 0, 0)
    assert {m.status for m in found} == {SENT}
    assert all(m.sent_at == clock.now() and m.attempts == 1 for m in found)
    by_address = {m.address: m for m in channels["email"].sent}
    english, french = by_address["head1@npm.example"], by_address["head2@npm.example"]
    assert english.subject == "started open for Head One: [withheld]"
    assert "place=Prison A" in english.text
    assert english.html == "<p>[withheld] at Prison A</p>\n"
    assert french.subject == "FR started open pour Head Two: [withheld]"
    assert french.html is None  # the French file has no html block
    assert {english.idempotency_key, french.idempotency_key} == {m.idempotency_key for m in found}


def test_a_failed_send_is_retried_with_exponential_backoff_and_jitter_then_sent(
    db_url: str, clock: FrozenClock
) -> None:
    channels = recorders(failures=4)  # two messages fail twice each
    with notice_engine(db_url, clock) as engine:
        start(engine)
        d = dispatcher(engine, clock, channels)
        delays = []
        for attempt in (1, 2):
            assert d.run_once().failed == 2
            failed = rows(engine, FAILED)
            assert {m.attempts for m in failed} == {attempt}
            ceiling = 60 * 2 ** (attempt - 1)
            waits = [(m.next_attempt_at - clock.now()).total_seconds() for m in failed]
            assert all(ceiling / 2 <= w <= ceiling for w in waits)
            delays.append(waits)
            assert d.run_once().claimed == 0  # nothing is due before its time
            clock.advance(timedelta(seconds=max(waits)))
        assert d.run_once().sent == 2
        assert {(m.status, m.attempts, m.last_error) for m in rows(engine)} == {(SENT, 3, None)}
    assert len(set(delays[0])) == 2  # jitter spreads the two messages apart


def test_a_message_goes_dead_after_the_last_attempt(db_url: str, clock: FrozenClock) -> None:
    channels = recorders(failures=100)
    with notice_engine(db_url, clock) as engine:
        start(engine)
        d = dispatcher(engine, clock, channels)
        for _ in range(3):
            d.run_once()
            clock.advance(timedelta(hours=1))
        dead = rows(engine, DEAD)
        assert d.run_once().claimed == 0
    assert len(dead) == 2
    assert all(m.attempts == 3 for m in dead)
    assert all((m.last_error or "").startswith("gave up after 3 attempts") for m in dead)


def test_a_permanent_error_sends_the_message_dead_at_once(db_url: str, clock: FrozenClock) -> None:
    with notice_engine(db_url, clock) as engine:
        start(engine)
        stats = dispatcher(engine, clock, recorders(failures=100, permanent=True)).run_once()
        assert {(m.status, m.attempts) for m in rows(engine)} == {(DEAD, 1)}
    assert stats.dead == 2


def test_a_broken_template_sends_the_message_dead_until_it_is_fixed_and_retried(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    broken = [folder / f"notice_opened.{locale}.jinja" for locale in ("en", "fr")]
    for path in broken:
        path.write_text(
            "{% block subject %}{{ data.nope.deeper }}{% endblock %}{% block text %}x{% endblock %}"
        )
    channels = recorders()
    templates = TemplateSet([folder, TEMPLATES], include_bundled=False)
    with notice_engine(db_url, clock) as engine:
        start(engine)
        d = dispatcher(engine, clock, channels, templates=templates)
        d.run_once()
        dead = rows(engine, DEAD)
        assert all("template" in (m.last_error or "") for m in dead)
        for path in broken:
            path.unlink()  # the operator removes the broken overrides
        with engine.store.write() as uow:
            for m in dead:
                uow.outbox.retry(m.id, clock.now())
        assert {(m.status, m.attempts) for m in rows(engine)} == {(PENDING, 0)}
        assert d.run_once().sent == 2
    assert len(dead) == 2
    assert len(channels["email"].sent) == 2


def test_a_missing_template_is_retried_rather_than_given_up(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    with notice_engine(db_url, clock) as engine:
        start(engine)
        empty = TemplateSet([tmp_path], include_bundled=False)
        assert dispatcher(engine, clock, recorders(), templates=empty).run_once().failed == 2
        assert {m.status for m in rows(engine)} == {FAILED}
        assert all("no template 'notice_opened'" in (m.last_error or "") for m in rows(engine))


def test_a_message_for_a_channel_that_is_not_configured_goes_dead(
    db_url: str, clock: FrozenClock
) -> None:
    with notice_engine(db_url, clock) as engine:
        start(engine)
        dispatcher(engine, clock, {"log": Recorder("log")}).run_once()
        assert {m.last_error for m in rows(engine)} == {"channel 'email' is not configured"}


class Crash(BaseException):
    """The process dies (not an error the dispatcher may catch)."""


class CrashingChannel(Recorder):
    def send(self, message: object) -> None:
        super().send(message)  # type: ignore[arg-type]
        if len(self.sent) == 1:
            raise Crash


def test_a_dispatcher_that_dies_mid_batch_loses_nothing_and_the_resend_keeps_its_key(
    db_url: str, clock: FrozenClock
) -> None:
    with notice_engine(db_url, clock) as engine:
        start(engine)
        crashing = CrashingChannel("email")
        with pytest.raises(Crash):
            dispatcher(engine, clock, {"email": crashing}).run_once()
        assert {m.status for m in rows(engine)} == {SENDING}
        survivor = recorders()
        other = dispatcher(engine, clock, survivor)
        assert other.run_once().claimed == 0  # still leased to the dead dispatcher
        clock.advance(timedelta(seconds=POLICY.lease))
        assert other.run_once().sent == 2
        assert {(m.status, m.attempts) for m in rows(engine)} == {(SENT, 2)}
    resent = {m.idempotency_key for m in survivor["email"].sent}
    assert crashing.sent[0].idempotency_key in resent  # a duplicate the receiver can drop


def test_a_message_abandoned_at_every_attempt_goes_dead(db_url: str, clock: FrozenClock) -> None:
    with notice_engine(db_url, clock) as engine:
        start(engine, owner="x")
        for _ in range(POLICY.max_attempts):
            with engine.store.write() as uow:
                claimed = uow.outbox.claim(now=clock.now(), lease=timedelta(seconds=60), limit=10)
                assert claimed
            clock.advance(timedelta(seconds=61))
        channels = recorders()
        assert dispatcher(engine, clock, channels).run_once().dead == 2
        dead = rows(engine, DEAD)
    assert channels["email"].sent == []
    assert all("abandoned" in (m.last_error or "") for m in dead)


def test_a_message_nobody_could_receive_is_routed_once_the_directory_names_someone(
    db_url: str, clock: FrozenClock
) -> None:
    source = Source(make_directory())
    channels = recorders()
    with notice_engine(db_url, clock, source.directory) as engine:
        instance_id = start(engine)
        engine.fire(instance_id, "submit", actor="a", role="clerk")
        engine.fire(instance_id, "close", actor="h", role="head")
        d = dispatcher(engine, clock, channels, directory=source)
        d.drain()
        waiting = [m for m in rows(engine) if m.channel == ROUTE and m.status == FAILED]
        assert [m.recipient for m in waiting] == ["role:notice.authority"]
        people = [
            {"id": "auth", "name": "Liaison", "email": "l@ministry.example", "roles": ["authority"]}
        ]
        source.directory = make_directory(people=people)
        clock.advance(timedelta(hours=1))
        stats = d.drain()
        routed = rows(engine, SENT)
    assert stats.routed == 1
    assert [m.address for m in channels["email"].sent][-1] == "l@ministry.example"
    delivered = [m for m in routed if m.recipient == "auth"]
    assert len(delivered) == 1
    assert delivered[0].payload["context"]["recipient"]["name"] == "Liaison"
    assert delivered[0].payload["context"]["data"]["person"] is None


def test_several_dispatchers_send_every_message_exactly_once(
    db_url: str, clock: FrozenClock
) -> None:
    channel = Recorder("email")
    with notice_engine(db_url, clock) as engine:
        for _ in range(60):
            start(engine)  # 2 messages each
        stores = [SQLAlchemyStore(db_url) for _ in range(4)]
        try:
            workers = [
                dispatcher(engine, clock, {"email": channel}, store=s, policy=POLICY)
                for s in stores
            ]
            threads = [threading.Thread(target=w.drain) for w in workers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            for s in stores:
                s.close()
        assert {m.status for m in rows(engine)} == {SENT}
    keys = [m.idempotency_key for m in channel.sent]
    assert len(keys) == 120
    assert len(set(keys)) == 120


def test_run_delivers_until_stopped(db_url: str, clock: FrozenClock) -> None:
    done = threading.Event()

    class Signalling(Recorder):
        def send(self, message: object) -> None:
            super().send(message)  # type: ignore[arg-type]
            if len(self.sent) == 2:
                done.set()

    channel = Signalling("email")
    with notice_engine(db_url, clock) as engine:
        d = dispatcher(engine, clock, {"email": channel})
        stop = threading.Event()
        worker = threading.Thread(target=d.run, args=(stop,), kwargs={"idle": 0.01})
        worker.start()
        try:
            start(engine)
            assert done.wait(timeout=30)
        finally:
            stop.set()
            worker.join(timeout=30)
    assert not worker.is_alive()
    assert len(channel.sent) == 2


def test_the_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        DispatchPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="backoff_base"):
        DispatchPolicy(backoff_base=10, backoff_max=5)
    backoff = DispatchPolicy(backoff_base=1, backoff_max=100).backoff(1000, random.Random(1))
    assert 50 <= backoff.total_seconds() <= 100
