"""``type: records``: entries with typed sub-fields, written whole or by key, append-only or not.

Through the Engine on both backends; tests/test_records_edges.py drives the HTTP API and CLI.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opcatflow.engine import (
    DefinitionError,
    Engine,
    FrozenClock,
    InvalidData,
    Registry,
    RuleContext,
    TransitionRefused,
    compile_text,
)
from opcatflow.engine.audit import Redactor
from opcatflow.engine.settings import Settings
from opcatflow.notifications.compose import _machine_data
from opcatflow.notifications.redaction import NOBODY, WITHHELD, redact

LEDGER = Path(__file__).parent / "definitions" / "records"


class Who(TypedDict):
    actor: str
    role: str


CLERK: Who = {"actor": "c.ruiz", "role": "clerk"}
HEAD: Who = {"actor": "h.haddad", "role": "head"}
NAME = "Tomás Varga"


def ledger_registry() -> Registry:
    registry = Registry()

    @registry.action("tidy_log", writes=["log"])
    def tidy_log(ctx: RuleContext) -> None:
        ctx.data["log"] = [{**e, "text": e["text"].lower()} for e in ctx.data.get("log") or []]

    return registry


@pytest.fixture
def ledger(db_url: str, clock: FrozenClock) -> Iterator[Engine]:
    with Engine.open(db_url, [LEDGER], ledger_registry(), clock=clock) as eng:
        yield eng


def refused(eng: Engine, instance_id: str, trigger: str, data: dict[str, object]) -> str:
    before = eng.get(instance_id)
    with pytest.raises(TransitionRefused) as caught:
        eng.fire(instance_id, trigger, data=data, **HEAD)
    assert caught.value.kind == "data"
    after = eng.get(instance_id)
    assert (before.version, before.data) == (after.version, after.data)
    assert caught.value.reason == eng.history(instance_id)[-1].reason
    return caught.value.reason


def test_appended_entries_get_the_next_number_and_edits_go_by_key(ledger: Engine) -> None:
    i = ledger.start("ledger", data={"notes": {"append": [{"text": "first"}]}}, **CLERK).id
    add = {"append": [{"text": "second", "about": NAME}, {"text": "third", "tags": ["legal"]}]}
    ledger.fire(i, "note", data={"notes": add}, **HEAD)  # clerk may not read 'about'
    edit = {"edit": [{"n": 2, "on": "2026-03-02", "about": None}], "remove": [1]}
    after = ledger.fire(i, "note", data={"notes": edit}, **HEAD)
    assert after.data["notes"] == [
        {"n": 2, "text": "second", "on": "2026-03-02"},
        {"n": 3, "text": "third", "tags": ["legal"]},
    ]


def test_a_full_list_is_compared_with_the_stored_entries_by_key(ledger: Engine) -> None:
    notes = [{"n": 1, "text": "a"}, {"n": 2, "text": "b"}]
    i = ledger.start("ledger", data={"notes": notes}, **CLERK).id
    after = ledger.fire(i, "note", data={"notes": [{"n": 2, "text": "B"}]}, **CLERK)
    assert after.data["notes"] == [{"n": 2, "text": "B"}]
    assert (ledger.history(i)[-1].changed["notes"]) == {
        "1": {"n": [1, None], "text": ["a", None]},
        "2": {"text": ["b", "B"]},
    }


def test_the_audit_names_entries_and_sub_fields_and_hashes_personal_values(
    ledger: Engine,
) -> None:
    i = ledger.start("ledger", **CLERK).id
    ledger.fire(i, "note", data={"notes": {"append": [{"text": "x", "about": NAME}]}}, **HEAD)
    ledger.fire(i, "note", data={"notes": {"edit": [{"n": 1, "about": "Ana Pereira"}]}}, **HEAD)
    first, second = (r.changed["notes"] for r in ledger.history(i)[1:])
    assert {"n", "text", "about"} == set(first["1"])
    assert first["1"]["n"] == [None, 1]
    assert first["1"]["about"][1].startswith("hmac-sha256:")
    assert list(second["1"]) == ["about"]
    assert first["1"]["about"][1] == second["1"]["about"][0]  # equal values, equal hashes
    exported = io.StringIO()
    ledger.export_audit(exported, i)
    assert NAME not in exported.getvalue()
    assert "Ana Pereira" not in exported.getvalue()


def test_errors_name_the_entry_and_the_sub_field_never_a_personal_value(ledger: Engine) -> None:
    i = ledger.start("ledger", **CLERK).id
    reason = refused(ledger, i, "note", {"notes": [{"n": 1, "text": "x", "about": 7}]})
    assert reason == "notes[1].about: not a valid value"
    reason = refused(ledger, i, "note", {"notes": [{"n": 4, "text": 5}]})
    assert reason == "notes[4].text: expected text"
    reason = refused(ledger, i, "note", {"notes": [{"n": 4, "txt": "x"}]})
    assert reason == "notes[4]: unknown sub-field 'txt' (did you mean 'text'?)"
    reason = refused(ledger, i, "note", {"notes": [{"n": 4}]})
    assert reason == "notes[4]: missing required sub-field(s) text"
    reason = refused(ledger, i, "note", {"notes": [{"text": "x"}]})
    assert reason == "notes: entry #1: missing its key 'n'"
    reason = refused(ledger, i, "note", {"notes": [{"n": 1, "text": "a"}, {"n": 1, "text": "b"}]})
    assert reason == "notes[1]: key 'n' is used twice"
    reason = refused(ledger, i, "note", {"notes": {"edit": [{"n": 9, "text": "x"}]}})
    assert reason == "notes[9]: no entry to edit (append it instead)"
    reason = refused(ledger, i, "note", {"notes": {"add": []}})
    assert reason == "notes: a change takes 'append', 'edit' and/or 'remove', not add"
    with pytest.raises(InvalidData, match=r"log: entry #1: missing its key 'ref'"):
        ledger.start("ledger", data={"log": {"append": [{"text": "x"}]}}, **CLERK)


def test_append_only_records_take_new_entries_and_refuse_edits_and_removals(
    ledger: Engine,
) -> None:
    log = [{"ref": "D1", "text": "Visit Block C", "who": NAME}]
    i = ledger.start("ledger", data={"log": log}, **HEAD).id
    more = {"append": [{"ref": "D2", "text": "Refer to the ombudsperson"}]}
    assert len(ledger.fire(i, "note", data={"log": more}, **HEAD).data["log"]) == 2
    edited = [{"ref": "D1", "text": "Visit Block D", "who": NAME}, more["append"][0]]
    reason = refused(ledger, i, "note", {"log": edited})
    assert "log is append-only: entries may be added, never edited or removed; " in reason
    assert reason.endswith("this edits [D1] (text)")
    rewritten = [{"ref": "D1", "text": "x", "who": "Ana Pereira"}]
    reason = refused(ledger, i, "note", {"log": rewritten})
    assert reason.endswith("this removes [D2] and edits [D1] (text, who)")
    assert NAME not in reason
    for change in ({"edit": [{"ref": "D1", "text": "x"}]}, {"remove": ["D2"]}, None):
        assert "append-only" in refused(ledger, i, "note", {"log": change})
    assert "this edits [D1], [D2] (text)" in refused(ledger, i, "tidy_log", {})
    again = {"append": [{"ref": "D1", "text": "again"}]}
    assert "log[D1]: an entry with this key exists" in refused(ledger, i, "note", {"log": again})


LEDGER_TEXT = (LEDGER / "ledger.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    key: n\n", "", "a records field needs 'key'"),
        ("    key: n\n", "    key: nn\n", "key 'nn' is not one of its sub-fields"),
        ("      n: {type: integer}", "      n: {type: text}", "key 'n' must be a string, integer"),
        ("      on: {type: date}", "      on: {type: records}", "records are not supported"),
        (
            "    append_only: true\n",
            "    personal: true\n",
            "is not personal or confidential as a whole",
        ),
    ],
)
def test_a_malformed_records_field_is_located(old: str, new: str, message: str) -> None:
    assert old in LEDGER_TEXT
    with pytest.raises(DefinitionError, match=message) as caught:
        compile_text(LEDGER_TEXT.replace(old, new, 1), "ledger.yaml", ledger_registry())
    assert caught.value.problems[0].line > 1


def test_records_keys_on_other_fields_are_refused() -> None:
    text = LEDGER_TEXT.replace("label: Notes, editable", "label: Notes\n    append_only: false")
    assert compile_text(text, "l.yaml", ledger_registry()).schema.records["notes"]
    text = LEDGER_TEXT.replace("      on: {type: date}", "      on: {type: date, key: on}")
    with pytest.raises(DefinitionError, match="unknown key 'key'"):
        compile_text(text, "l.yaml", ledger_registry())


def test_the_format_schema_describes_records() -> None:
    from opcatflow.engine import WorkflowDefinition

    schema = json.dumps(WorkflowDefinition.model_json_schema())
    assert '"records"' in schema
    assert "append_only" in schema
    assert "SubFieldSpec" in schema


# -- redaction and the audit diff, without a store --------------------------------------------

SCHEMA = compile_text(LEDGER_TEXT, "ledger.yaml", ledger_registry()).schema
PEOPLE = st.text(alphabet="ÁBCDEFGHIJKLMNOPQRSTUVWXYZáé", min_size=8, max_size=12)
ENTRY = st.fixed_dictionaries(
    {"text": st.sampled_from(["visit", "call", "letter"])},
    optional={"about": PEOPLE, "on": st.just("2026-03-02")},
)
NOTES = st.lists(ENTRY, max_size=4).map(
    lambda entries: [{"n": i + 1, **e} for i, e in enumerate(entries)]
)


def _people(*values: object) -> set[str]:
    return {e["about"] for v in values for e in v or [] if "about" in e}  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None)
@given(before=NOTES, after=NOTES)
def test_the_audit_diff_never_holds_a_personal_sub_field_value(
    before: list[dict[str, object]], after: list[dict[str, object]]
) -> None:
    changes = Redactor(b"k" * 32).changes(
        {"notes": before}, {"notes": after}, SCHEMA.personal, SCHEMA.records
    )
    assert not any(person in changes for person in _people(before, after))
    diff = json.loads(changes).get("notes", {})
    changed_keys = {str(e["n"]) for e in before if e not in after} | {
        str(e["n"]) for e in after if e not in before
    }
    assert set(diff) == changed_keys


def test_notifications_and_webhooks_withhold_personal_sub_fields_only() -> None:
    data = {"notes": [{"n": 1, "text": "visit", "about": NAME}]}
    shown = redact(
        data,
        SCHEMA.fields,
        SCHEMA.personal,
        NOBODY,
        policy=Settings.default().policy,
        today=date(2026, 3, 2),
        parts=SCHEMA.personal_parts,
    )
    assert shown.data["notes"] == [{"n": 1, "text": "visit", "about": WITHHELD}]
    assert shown.withheld == ("notes",)
    assert _machine_data(data, SCHEMA) == {"notes": [{"n": 1, "text": "visit"}]}
