"""For any personal values and reasons: none of them is found in the database's files, the
outbox, the idempotency table or the audit export, nor in what a role that may not read
them is shown; and every one of them reads back whole through the engine.

Values are drawn from letters that appear in no template, definition or generated value, and
are long enough that random ciphertext or key bytes cannot contain one by chance."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import changes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from notify_helpers import NOTICE, make_directory
from sealing_helpers import stored_bytes

from opcatflow.adapters.views import instance_view, record_view
from opcatflow.engine import Engine, FrozenClock, Registry, UnitOfWork
from opcatflow.engine.rows import IdempotencyRecord
from opcatflow.notifications.model import STATUSES
from opcatflow.notifications.outbox import OutboxWriter

settings.register_profile(
    "ci", max_examples=20, deadline=None, derandomize=True, database=None, print_blob=True
)
SECRET_LETTERS = "ǅǈǋǲȸȹɃɄʭʮϏϗꙀꙁꙂꙃ"
secret = st.text(alphabet=SECRET_LETTERS, min_size=8, max_size=40)
reason = st.one_of(st.none(), secret)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    """One SQLite file for every example (each starts its own instance)."""
    url = str(tmp_path_factory.mktemp("sealed") / "sealed.db")
    keys = tmp_path_factory.mktemp("keys") / "keys"
    from opcatflow.engine.crypto.providers import KeyFile

    writer = OutboxWriter(make_directory())
    with Engine.open(
        url, [NOTICE], Registry(), clock=FrozenClock(NOW), hooks=[writer], keys=KeyFile(keys)
    ) as engine:
        yield engine, url


def _reply(instance_id: str, body: dict[str, Any]) -> Any:
    later = NOW + timedelta(days=1)
    reply = IdempotencyRecord(
        "key", instance_id, "POST", "/instances", "f", 201, json.dumps(body), {}, NOW, later
    )

    def store(uow: UnitOfWork, _: object) -> None:
        uow.idempotency.add(reply)

    return store


@settings(
    settings.get_profile("ci"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    person=secret,
    story=secret,
    relatives=st.lists(secret, min_size=1, max_size=3),
    later=secret,
    first_reason=reason,
    second_reason=reason,
)
def test_no_personal_value_is_found_where_it_may_not_be(
    sealed: tuple[Engine, str],
    person: str,
    story: str,
    relatives: list[str],
    later: str,
    first_reason: str | None,
    second_reason: str | None,
) -> None:
    engine, url = sealed
    data = {"place": "Prison A", "person": person, "story": story, "relatives": relatives}
    made = engine.start("notice", actor="a", role="clerk", data=data, reason=first_reason)
    engine.fire(
        made.id,
        "note",
        actor="a",
        role="clerk",
        data={"story": later},
        reason=second_reason,
        also=_reply(made.id, {"data": {**data, "story": later}, "reason": second_reason}),
    )
    values = [person, story, *relatives, later] + [r for r in (first_reason, second_reason) if r]

    def found(text: str | bytes) -> list[str]:
        if isinstance(text, bytes):
            return [v for v in values if v.encode() in text]
        return [v for v in values if v in text]

    # read back whole by the engine, for a role that may read them
    current = engine.get(made.id)
    assert (current.data["person"], current.data["story"]) == (person, later)
    assert [r.reason for r in changes(engine, made.id)][:2] == [first_reason, second_reason]
    # nowhere in the database's files (the file, its WAL)
    assert found(stored_bytes(url)) == []
    # nor in the store's own rows of outbox and idempotency replies
    with engine.store.raw.read() as raw:
        outbox = [m.payload for m in raw.outbox.listing(STATUSES, limit=10_000)]
        reply = raw.idempotency.get("key", made.id)
    assert found(json.dumps(outbox, ensure_ascii=False)) == []
    assert reply is not None
    assert found(reply.response) == []
    # nor in the audit export
    export = io.StringIO()
    engine.export_audit(export, made.id)
    assert found(export.getvalue()) == []
    # nor in what a role that may not read them is shown (the API's own views)
    wf = engine.workflow("notice")
    hidden = wf.withheld_fields(["authority"])
    shown = json.dumps(
        [
            instance_view(current, wf, hidden),
            *(record_view(r, hidden) for r in engine.history(made.id)),
        ],
        ensure_ascii=False,
    )
    assert found(shown) == []


def test_the_ci_profile_bounds_the_examples() -> None:
    assert settings.get_profile("ci").max_examples <= 25


def test_the_secret_letters_are_nowhere_in_the_notice_definition() -> None:
    text = Path(NOTICE).read_text(encoding="utf-8")
    assert not set(SECRET_LETTERS) & set(text)
