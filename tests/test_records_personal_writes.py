"""No write without read, per sub-field: a role that may not read a records field's personal
sub-fields may not set, clear, change or remove them (docs/data-contract.md), in the full-list
and the change form, at start and on a trigger; its other sub-fields stay writable. Through
the Engine on both backends, over HTTP, at ``validate``, and a hypothesis case at the
decision step (right and wrong guesses are refused alike, an applied write keeps every
stored personal value).

The ledger definition (tests/definitions/records): ``notes.about`` and ``log.who`` are
personal, readable by head only; clerk and head both fire ``note``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from http_server import live_server_fixture  # noqa: F401
from hypothesis import given, settings
from hypothesis import strategies as st
from test_records import CLERK, HEAD, LEDGER, NAME, Who, ledger_registry
from test_records_edges import Api, api  # noqa: F401

from opcatflow.adapters.views import record_view
from opcatflow.engine import (
    CompiledWorkflow,
    DefinitionError,
    Engine,
    FrozenClock,
    TransitionRefused,
    compile_text,
)
from opcatflow.engine.firing import Applied, decide
from opcatflow.notifications.redaction import WITHHELD

CLERK_MAY_NOT = (
    "role 'clerk' may not write the personal sub-fields of notes (about; it may not read "
    "them: only head may write them)"
)
LEDGER_TEXT = (LEDGER / "ledger.yaml").read_text()
LEDGER_WF = compile_text(LEDGER_TEXT, "ledger.yaml", ledger_registry())
STORED = [{"n": 1, "text": "Asked for a doctor", "about": NAME}, {"n": 2, "text": "Cold cells"}]


@pytest.fixture
def ledger(db_url: str, clock: FrozenClock) -> Iterator[Engine]:
    with Engine.open(db_url, [LEDGER], ledger_registry(), clock=clock) as eng:
        yield eng


def noted(eng: Engine) -> str:
    """An instance whose first note is about a person (written by head, who may read it)."""
    return eng.start("ledger", data={"notes": STORED}, **HEAD).id


def refused_for_clerk(eng: Engine, instance_id: str, notes: Any) -> str:
    before = eng.get(instance_id)
    with pytest.raises(TransitionRefused) as caught:
        eng.fire(instance_id, "note", data={"notes": notes}, **CLERK)
    assert caught.value.kind == "data"
    after = eng.get(instance_id)
    assert (after.version, after.data) == (before.version, before.data)
    last = eng.history(instance_id)[-1]
    assert (last.outcome, last.reason, last.changed) == ("refused", caught.value.reason, {})
    return caught.value.reason


WRITES_OF_PERSONAL_VALUES = {
    "append": {"append": [{"text": "x", "about": "A guess"}]},
    "edit": {"edit": [{"n": 1, "about": "A guess"}]},
    "edit an entry without one": {"edit": [{"n": 2, "about": "A guess"}]},
    "clear": {"edit": [{"n": 1, "about": None}]},
    "remove an entry holding one": {"remove": [1]},
    "clear the field": None,
    "a full list clearing one": [{"n": 1, "text": "Asked for a doctor"}],
    "a full list dropping one": [{"n": 2, "text": "Cold cells"}],
    "a full list with one": [*STORED[:1], {"n": 3, "text": "y", "about": "A guess"}],
}


def test_a_role_that_may_not_read_personal_sub_fields_may_not_write_them(ledger: Engine) -> None:
    i = noted(ledger)  # one instance for every form: a refusal leaves it unchanged
    for form, notes in WRITES_OF_PERSONAL_VALUES.items():
        reason = refused_for_clerk(ledger, i, notes)
        assert reason == CLERK_MAY_NOT, form
        assert "A guess" not in reason
        assert NAME not in reason


def test_its_other_sub_fields_stay_writable_and_the_personal_values_stay(ledger: Engine) -> None:
    i = noted(ledger)
    change = {"append": [{"text": "Blankets"}], "edit": [{"n": 1, "text": "Saw a doctor"}]}
    ledger.fire(i, "note", data={"notes": change}, **CLERK)
    after = ledger.fire(i, "note", data={"notes": {"remove": [2]}}, **CLERK)  # nobody's data
    assert after.data["notes"] == [
        {"n": 1, "text": "Saw a doctor", "about": NAME},
        {"n": 3, "text": "Blankets"},
    ]
    # head may read them, so head may write them in every form
    after = ledger.fire(i, "note", data={"notes": [{"n": 3, "text": "B", "about": "Ana"}]}, **HEAD)
    assert after.data["notes"] == [{"n": 3, "text": "B", "about": "Ana"}]


def test_a_start_with_a_personal_sub_field_the_role_may_not_read_stores_nothing(
    ledger: Engine,
) -> None:
    with pytest.raises(TransitionRefused) as caught:
        ledger.start("ledger", data={"notes": {"append": [{"text": "x", "about": NAME}]}}, **CLERK)
    assert (caught.value.kind, caught.value.reason) == ("data", CLERK_MAY_NOT)
    assert ledger.query(workflow="ledger") == []
    started = ledger.start("ledger", data={"notes": [{"n": 1, "text": "x"}]}, **CLERK)
    assert started.data["notes"] == [{"n": 1, "text": "x"}]


def test_a_right_and_a_wrong_guess_leave_the_same_history_for_the_role(ledger: Engine) -> None:
    i = noted(ledger)
    for guess in (NAME, "Ana Pereira"):  # the stored value, and another
        refused_for_clerk(ledger, i, {"edit": [{"n": 1, "about": guess}]})
    hidden = LEDGER_WF.withheld_fields(["clerk"])
    right, wrong = (
        {
            k: v
            for k, v in record_view(r, hidden, LEDGER_WF.schema.personal_parts).items()
            if k not in ("id", "seq", "at", "hash", "prev_hash")
        }
        for r in ledger.history(i)[-2:]
    )
    assert right == wrong


def test_validate_refuses_write_roles_that_may_not_read_personal_sub_fields() -> None:
    text = LEDGER_TEXT.replace("    label: Notes, editable\n", "    write_roles: [clerk]\n", 1)
    with pytest.raises(DefinitionError) as caught:
        compile_text(text, "ledger.yaml", ledger_registry())
    [problem] = caught.value.problems
    assert problem.message == (
        "role 'clerk' may not read the personal sub-fields of 'notes' (about), so it may never "
        "write them: add it to the field's 'visible_to' (or 'personal_visible_to')"
    )
    line = text.splitlines().index("    write_roles: [clerk]") + 1
    assert (problem.path, problem.line, problem.column) == ("ledger.yaml", line, 19)


def test_http_refuses_a_personal_sub_field_from_a_key_that_may_not_read_it(
    api: Api,  # noqa: F811
) -> None:
    started = api.call(
        "POST", "/instances", "head", {"workflow": "ledger", "data": {"notes": STORED}}
    )
    assert started.status_code == 201, started.text
    i = started.json()["id"]
    guess = {"trigger": "note", "data": {"notes": {"edit": [{"n": 1, "about": NAME}]}}}
    refused = api.call("POST", f"/instances/{i}/transitions", "clerk", guess)
    assert (refused.status_code, refused.json()["kind"]) == (422, "data")
    assert refused.json()["detail"].endswith(CLERK_MAY_NOT)
    history = api.call("GET", f"/instances/{i}/history", "clerk").json()
    assert history[-1]["outcome"] == "refused"
    assert NAME not in json.dumps(history)
    seen = api.call("GET", f"/instances/{i}", "clerk").json()
    assert seen["data"]["notes"][0]["about"] == WITHHELD
    assert api.call("GET", f"/instances/{i}", "head").json()["data"]["notes"][0]["about"] == NAME


# -- the decision step, with hypothesis ------------------------------------------------------

_GUESSES = st.sampled_from([NAME, "Ana Pereira", None])
_ENTRY = st.fixed_dictionaries(
    {"text": st.sampled_from(["a", "b"])}, optional={"n": st.integers(1, 4), "about": _GUESSES}
)
_CHANGE = st.fixed_dictionaries(
    {},
    optional={
        "append": st.lists(_ENTRY, max_size=2),
        "edit": st.lists(
            st.fixed_dictionaries(
                {"n": st.integers(1, 3)},
                optional={"text": st.sampled_from(["c"]), "about": _GUESSES},
            ),
            max_size=2,
        ),
        "remove": st.lists(st.integers(1, 3), max_size=2),
    },
).filter(bool)
_FULL = st.lists(_ENTRY.map(lambda e: {"n": 1, **e}), max_size=3)


def _decide(wf: CompiledWorkflow, who: Who, notes: Any) -> Any:
    return decide(
        wf,
        instance_id="i-1",
        state="open",
        data={"notes": STORED},
        trigger="note",
        actor=who["actor"],
        role=who["role"],
        supplied={"notes": notes},
        now=datetime(2026, 3, 2, 9, tzinfo=UTC),
    )


def _with_guess(notes: Any, guess: str) -> Any:
    """``notes`` with every personal value replaced by ``guess``."""
    if isinstance(notes, list):
        return [{k: guess if k == "about" and v else v for k, v in e.items()} for e in notes]
    return {k: _with_guess(v, guess) if k != "remove" else v for k, v in notes.items()}


@settings(max_examples=60, deadline=None, database=None)
@given(notes=st.one_of(_CHANGE, _FULL))
def test_a_clerk_never_writes_a_personal_value_and_its_guesses_are_refused_alike(
    notes: Any,
) -> None:
    outcome = _decide(LEDGER_WF, CLERK, notes)
    other = _decide(LEDGER_WF, CLERK, _with_guess(notes, "Someone else"))
    assert type(outcome) is type(other)
    if not isinstance(outcome, Applied):
        assert outcome.reason == other.reason
        assert NAME not in outcome.reason
        assert "Ana Pereira" not in outcome.reason
        return
    before = {e["n"]: e.get("about") for e in STORED}
    after = {e["n"]: e.get("about") for e in outcome.data["notes"]}
    for key, about in after.items():
        assert about == before.get(key)  # kept where it was, never set where it was not
    assert all(key in after for key, about in before.items() if about is not None)
