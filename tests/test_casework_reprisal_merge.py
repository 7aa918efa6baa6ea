"""Merging a duplicate reprisal case into the case that goes on (issue 21), with a fresh
engine between steps, on both backends: both written in one unit of work or neither, each
with its own audit record, both chains intact, and the 24-hour alerts of the allegations
moved still counted from each received_at."""

from __future__ import annotations

import json
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from casework import CASEWORKER, COORDINATOR, HEAD, PLACE, Desk

from opcatflow.engine import DefinitionError, Engine, FrozenClock, TransitionRefused
from opcatflow.engine.checkpoint import Checkpoint, SigningKey
from opcatflow.engine.loader import compile_text
from opcatflow.engine.scheduler import Scheduler
from opcatflow.workflows import BUNDLED, registry

PREVIOUS = Path(__file__).parent / "fixtures" / "previous"


@pytest.fixture
def desk(db_url: str, clock: FrozenClock) -> Desk:
    return Desk(db_url, clock)


def allegation(received_at: str, source: str, text: str) -> dict[str, str]:
    return {"received_at": received_at, "source": source, "text": text}


FIRST = allegation("2026-03-02T07:30:00+00:00", "relative", "Beaten after the visit.")
SECOND = allegation("2026-03-02T10:15:00+00:00", "lawyer", "Moved to isolation.")


def case(desk: Desk, *entries: dict[str, str]) -> str:
    return desk.start(
        "reprisal",
        CASEWORKER,
        {
            "origin": "npm_visit",
            "reported_on": "2026-03-02",
            "place": PLACE,
            "allegations": [{"n": i + 1, **e} for i, e in enumerate(entries)],
        },
    )


def focal_point_due(desk: Desk, instance_id: str) -> list[tuple[str, str]]:
    with desk.engine() as eng:
        rows = [o for o in eng.obligations(instance_id) if o.deadline == "notify_focal_point"]
    return [(o.anchor or "", o.due_at.astimezone(UTC).isoformat()) for o in rows if o.status]


def untouched(desk: Desk, *ids: str) -> list[tuple[str, int, str]]:
    return [
        (i.state, i.version, json.dumps(dict(i.data), sort_keys=True)) for i in map(desk.get, ids)
    ]


def checkpoint(desk: Desk, key: SigningKey) -> Checkpoint:
    """A signed checkpoint of the whole trail now, as ``audit checkpoint`` signs it."""
    with desk.engine() as eng:
        size, root = eng.audit_root()
        return key.sign(size, root, desk.clock.now(), reads=eng.read_log_root())


def test_a_duplicate_is_merged_into_the_case_that_goes_on(
    desk: Desk, clock: FrozenClock, tmp_path: Path
) -> None:
    survivor = case(desk, FIRST)
    desk.fire(survivor, "notify_focal_point", CASEWORKER)  # told of the first allegation
    duplicate = case(desk, SECOND)  # the same reprisal, reported again by the lawyer
    before = (len(desk.history(survivor)), len(desk.history(duplicate)))
    key = SigningKey(tmp_path / "signing")
    earlier = checkpoint(desk, key)

    merged = desk.fire(duplicate, "merge_into", CASEWORKER, {"merged_into": survivor})
    assert (merged.state, merged.data["merged_into"]) == ("merged", survivor)
    kept = desk.get(survivor)
    assert kept.data["merged_from"] == [duplicate]
    # its allegation moved with its own received_at, numbered after the survivor's own
    assert [(a["n"], a["received_at"], a["text"]) for a in kept.data["allegations"]] == [
        (1, FIRST["received_at"], FIRST["text"]),
        (2, SECOND["received_at"], SECOND["text"]),
    ]
    # told of the first, not of the second: back to reported, 24 hours from the second
    assert (kept.state, kept.data["received_at"]) == ("reported", SECOND["received_at"])
    # one record of the change each, on each chain (beside their deadlines' records)
    [taken] = [r for r in desk.history(survivor)[before[0] :] if r.outcome == "applied"]
    assert (taken.trigger, taken.to_state, taken.actor) == (
        "take_in_duplicate",
        "reported",
        CASEWORKER[0],
    )
    [closing] = [r for r in desk.history(duplicate)[before[1] :] if r.outcome == "applied"]
    assert (closing.trigger, closing.to_state) == ("merge_into", "merged")
    desk.assert_path(duplicate, "reprisal_merged")
    desk.verify()
    # both chains as audit verify --checkpoint sees them: the checkpoint signed before the
    # merge still holds, and one signed after covers it
    later = checkpoint(desk, key)
    assert later.size > earlier.size
    with desk.engine() as eng:
        assert eng.verify_audit([earlier, later]).status == "intact"

    # the 24-hour alert of the allegation moved counts from its received_at, not the merge
    clock.set(datetime(2026, 3, 3, 10, 0, tzinfo=UTC))
    with desk.engine() as eng:
        firings = Scheduler(eng).tick().firings
    assert ("notify_focal_point", "due") not in [
        (f.deadline, f.kind) for f in firings if f.instance_id == survivor
    ]
    clock.set(datetime(2026, 3, 3, 10, 30, tzinfo=UTC))
    with desk.engine() as eng:
        firings = Scheduler(eng).tick().firings
    assert ("notify_focal_point", "due") in [
        (f.deadline, f.kind) for f in firings if f.instance_id == survivor
    ]
    # nothing runs on for the duplicate: it is closed
    with desk.engine() as eng:
        assert all(o.status in ("cancelled", "met") for o in eng.obligations(duplicate))
    desk.verify()


def test_refused_merges_leave_both_cases_as_they_were(desk: Desk) -> None:
    survivor, duplicate = case(desk, FIRST), case(desk, SECOND)
    visit = desk.start("visit", COORDINATOR, {"kind": "regular", "place": PLACE})
    closed = case(desk, FIRST)
    desk.fire(closed, "notify_focal_point", CASEWORKER)
    desk.fire(closed, "close", HEAD, {"outcome": "No reprisal found.", "risk_level": "low"})
    state = untouched(desk, survivor, duplicate, closed, visit)

    into_itself = desk.refused(duplicate, "merge_into", CASEWORKER, {"merged_into": duplicate})
    assert into_itself.reason == "merged_into: a case cannot be merged into itself"
    across = desk.refused(duplicate, "merge_into", CASEWORKER, {"merged_into": visit})
    assert across.reason == (
        f"merged_into: {visit} is a visit instance; a reprisal merges only into another reprisal"
    )
    into_closed = desk.refused(duplicate, "merge_into", HEAD, {"merged_into": closed})
    assert into_closed.reason == (
        f"merged_into: {closed} is closed: a finished case takes nothing in"
    )
    nowhere = desk.refused(duplicate, "merge_into", HEAD, {"merged_into": "no-such-case"})
    assert nowhere.reason == "merged_into: no instance 'no-such-case'"
    # a role that may not merge, and the survivor's trigger fired on its own
    desk.refused(duplicate, "merge_into", COORDINATOR, {"merged_into": survivor})
    with desk.engine() as eng:  # not offered to anyone: a merge applies it
        offered = [t.trigger for t in eng.available_triggers(survivor, "head", "r.haddad")]
    assert "merge_into" in offered
    assert "take_in_duplicate" not in offered
    direct = desk.refused(survivor, "take_in_duplicate", HEAD, {"merged_from": [duplicate]})
    assert (
        direct.reason
        == "'take_in_duplicate' is applied only by a merge (merge_into on the duplicate)"
    )
    assert untouched(desk, survivor, duplicate, closed, visit) == state
    desk.verify()


def test_a_refusal_on_the_survivors_side_undoes_the_duplicates_change(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    # a case still on version 5 knows no take_in_duplicate: the duplicate's transition has
    # applied (in the unit of work) when the survivor refuses, so it is undone
    older = tmp_path / "v5"
    older.mkdir()
    for path in Path(BUNDLED).glob("*.yaml"):
        if path.name != "reprisal.yaml":
            shutil.copy(path, older / path.name)
    shutil.copy(PREVIOUS / "reprisal-v5.yaml", older / "reprisal.yaml")
    with Engine.open(db_url, [older], registry, clock=clock) as eng:
        survivor = eng.start(
            "reprisal",
            actor=CASEWORKER[0],
            role=CASEWORKER[1],
            data={
                "origin": "npm_visit",
                "reported_on": "2026-03-02",
                "allegations": [{"n": 1, **FIRST}],
            },
        ).id
    desk = Desk(db_url, clock)
    duplicate = case(desk, SECOND)
    assert (desk.get(survivor).workflow_version, desk.get(duplicate).workflow_version) == (5, 6)
    state = untouched(desk, survivor, duplicate)
    seqs = [desk.get(i).audit_seq for i in (survivor, duplicate)]
    refused = desk.refused(duplicate, "merge_into", CASEWORKER, {"merged_into": survivor})
    assert refused.reason.startswith(f"merged_into: {survivor} refused take_in_duplicate (")
    assert untouched(desk, survivor, duplicate) == state
    # the refusal is audited on both chains, and nothing else
    assert [desk.get(i).audit_seq for i in (survivor, duplicate)] == [s + 1 for s in seqs]
    assert desk.history(survivor)[-1].outcome == "refused"
    desk.verify()


def test_two_merges_of_one_pair_either_way_round_do_not_deadlock(
    db_url: str, clock: FrozenClock
) -> None:
    # each merge locks both rows in the order of their ids: one waits for the other, which
    # then finds its survivor finished, instead of each holding the row the other needs
    desk = Desk(db_url, clock)
    first, second = case(desk, FIRST), case(desk, SECOND)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def merge(duplicate: str, survivor: str) -> None:
        with desk.engine() as eng:
            barrier.wait()
            try:
                eng.fire(duplicate, "merge_into", actor="r", role="head",
                         data={"merged_into": survivor})  # fmt: skip
                outcomes[duplicate] = "merged"
            except TransitionRefused as refused:
                outcomes[duplicate] = refused.reason

    threads = [
        threading.Thread(target=merge, args=(first, second)),
        threading.Thread(target=merge, args=(second, first)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outcomes) == 2  # neither failed (a deadlock would be a StoreError)
    [merged] = [d for d, said in outcomes.items() if said == "merged"]
    [late] = [said for said in outcomes.values() if said != "merged"]
    assert late == f"merged_into: {merged} is merged: a finished case takes nothing in"
    states = sorted(desk.get(i).state for i in (first, second))
    assert states == ["merged", "reported"]
    desk.verify()


BAD_MERGE = """\
id: dupes
version: 1
title: Bad merges
roles: {clerk: c, head: h}
fields:
  into: {type: integer}
  from: {type: list, items: integer}
  notes: {type: text}
states:
  open: {initial: true}
  gone: {}
transitions:
  - trigger: merge
    source: open
    dest: gone
    roles: [clerk, head]
    merge: {into: into, trigger: absorb, link: from, copies: [notes]}
  - {trigger: absorb, source: open, roles: [head], writes: [notes]}
"""


def test_validate_checks_a_merge_at_its_place() -> None:
    with pytest.raises(DefinitionError) as invalid:
        compile_text(BAD_MERGE, "dupes.yaml", registry)
    said = [f"{p.line}:{p.column} {p.message}" for p in invalid.value.problems]
    assert said == [
        "11:9 state 'gone' is not final and has no transition out of it",
        "17:12 merge merges a duplicate: its dest must be a final state (merged)",
        "17:19 field 'into' must be a string field that is not personal (it holds the id of "
        "the case merged into)",
        "17:34 role 'clerk' may merge with merge but may not fire absorb on the survivor",
        "17:48 field 'from' must be a list of string (the ids merged in)",
        "17:63 field 'notes' is text: only records are copied",
    ]


def test_an_allegation_held_the_old_way_moves_as_a_record(desk: Desk) -> None:
    # a case with its allegation as text (as versions up to 4 kept it) and no record
    survivor = case(desk, FIRST)
    duplicate = desk.start(
        "reprisal",
        CASEWORKER,
        {
            "origin": "complaint",
            "reported_on": "2026-03-01",
            "received_at": "2026-03-01T16:00:00+00:00",
            "allegation": "Threatened by a guard.",
        },
    )
    desk.fire(duplicate, "merge_into", HEAD, {"merged_into": survivor})
    moved = desk.get(survivor).data["allegations"][-1]
    assert moved == {
        "n": 2,
        "received_at": "2026-03-01T16:00:00+00:00",
        "source": "other",
        "text": "Threatened by a guard.",
    }
    assert desk.get(survivor).data["received_at"] == "2026-03-01T16:00:00+00:00"
    desk.verify()
