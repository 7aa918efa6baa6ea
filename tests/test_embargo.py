"""Embargoes (docs/definitions.md, "Embargoes"): fields withheld from some roles and from
every message while a flag is set and the instance is in given states, on both backends.
The rule on its own, over a small definition with a deadline counted from the secret date;
the bundled unannounced visit is tests/test_casework_unannounced.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from casework import catalog
from hypothesis import given, settings
from hypothesis import strategies as st

from opcatflow.adapters.views import instance_view, record_view
from opcatflow.engine import DefinitionError, Engine, FrozenClock, Registry, TransitionRefused
from opcatflow.engine.agenda import agenda_page
from opcatflow.engine.loader import compile_text
from opcatflow.engine.scheduler import Scheduler
from opcatflow.notifications.directory import parse_directory
from opcatflow.notifications.model import STATUSES, OutboxEntry, OutboxStatus
from opcatflow.notifications.outbox import OutboxWriter
from opcatflow.notifications.templates import TemplateSet

MISSION = Path(__file__).parent / "definitions" / "embargo" / "mission.yaml"
SECRET_DAY = "2026-03-20"
DIRECTORY = {
    "people": [
        {"id": "p1", "name": "Planner", "email": "p1@npm.example", "roles": ["planner"]},
        {"id": "l1", "name": "Liaison", "email": "l1@npm.example", "roles": ["liaison"]},
    ],
    "webhooks": [{"id": "hook", "url": "https://hooks.example/in", "secret": "whsec_" + "A" * 44}],
}


@pytest.fixture
def mission(db_url: str, clock: FrozenClock) -> Iterator[Engine]:
    writer = OutboxWriter(parse_directory(yaml.safe_dump(DIRECTORY), "<directory>"))
    with Engine.open(db_url, [MISSION], Registry(), clock=clock, hooks=[writer]) as engine:
        yield engine


def messages(engine: Engine) -> list[OutboxEntry]:
    with engine.store.read() as uow:
        return uow.outbox.listing([OutboxStatus(s) for s in STATUSES], limit=10_000)


def shows_day(value: object) -> bool:
    return "2026-03-20" in json.dumps(value, default=str) or "2026-03-18" in json.dumps(
        value, default=str
    )


def test_a_secret_date_is_withheld_from_the_liaison_and_every_message_until_released(
    mission: Engine, clock: FrozenClock
) -> None:
    case = mission.start(
        "mission", actor="pat", role="planner", data={"secret": True, "place": "Remand centre"}
    )
    mission.fire(case.id, "plan", actor="pat", role="planner", data={"planned_on": SECRET_DAY})
    case = mission.get(case.id)
    wf = mission.workflow("mission")
    liaison = wf.withheld_fields(["liaison"], case)
    assert liaison == {"planned_on"}
    assert wf.withheld_fields(["planner"], case) == frozenset()
    assert wf.withheld_fields(["liaison", "planner"], case) == frozenset()  # one role may read
    view = instance_view(case, wf, liaison)
    assert view["data"]["planned_on"] == "[withheld]"
    assert view["withheld"] == ["planned_on"]
    assert not any(shows_day(record_view(r, liaison)) for r in mission.history(case.id))
    # the deadline counted from it: out of the liaison's agenda and of any calendar
    now = clock.now()
    assert [e.deadline for e in agenda_page(mission, now=now, roles={"planner"}).entries] == [
        "briefing"
    ]
    assert agenda_page(mission, now=now, roles={"liaison"}).entries == []
    assert agenda_page(mission, now=now, outside=True).entries == []
    # every message, to the planner as to the liaison, and the webhooks: no date; and no
    # reminder, due date or alert of the deadline counted from it, whose sending day would
    # tell the date (the scheduler still marks it overdue)
    clock.advance(timedelta(days=17))  # past the reminder and the due date
    Scheduler(mission).tick()
    queued = messages(mission)
    assert {m.channel for m in queued} == {"email", "webhook"}
    assert "mission.transition.plan" in {m.event for m in queued}
    assert not [m.event for m in queued if "briefing" in m.event]
    assert not any(shows_day(m.payload) for m in queued)
    hook = next(m for m in queued if m.channel == "webhook")
    assert "planned_on" not in hook.payload["cloudevent"]["data"]["data"]
    assert [o.status for o in mission.obligations(case.id)] == ["due"]  # processed, unmet
    # released: the liaison reads it, and messages from now on carry it
    mission.fire(case.id, "go", actor="pat", role="planner")
    case = mission.get(case.id)
    assert wf.withheld_fields(["liaison"], case) == frozenset()
    assert instance_view(case, wf, frozenset())["data"]["planned_on"] == SECRET_DAY
    assert any(shows_day(record_view(r, frozenset())) for r in mission.history(case.id))
    released = [m for m in messages(mission) if m.event == "mission.transition.go"]
    assert released
    assert all(shows_day(m.payload) for m in released)


def test_with_no_embargo_the_deadline_sends_its_reminder_and_alerts(
    mission: Engine, clock: FrozenClock
) -> None:
    case = mission.start("mission", actor="pat", role="planner", data={"secret": False})
    mission.fire(case.id, "plan", actor="pat", role="planner", data={"planned_on": SECRET_DAY})
    clock.advance(timedelta(days=17))
    Scheduler(mission).tick()
    sent = {m.event for m in messages(mission) if "briefing" in m.event}
    assert sent >= {"mission.reminder.briefing", "mission.overdue.briefing"}


def test_a_rendered_message_says_withheld_where_the_date_was(
    mission: Engine, tmp_path: Path
) -> None:
    case = mission.start("mission", actor="pat", role="planner", data={"secret": True})
    mission.fire(case.id, "plan", actor="pat", role="planner", data={"planned_on": SECRET_DAY})
    (tmp_path / "notice_opened.en.jinja").write_text(
        "{% block subject %}Mission on {{ data.planned_on }}{% endblock %}"
        "{% block text %}{{ reason }}{% endblock %}"
    )
    templates = TemplateSet([tmp_path], include_bundled=False)
    [email, *_] = [m for m in messages(mission) if m.channel == "email"]
    rendered = templates.render("notice_opened", "en", email.payload["context"])
    assert rendered.subject == "Mission on [withheld]"


def test_no_write_without_read_while_the_embargo_holds(mission: Engine) -> None:
    case = mission.start("mission", actor="pat", role="planner", data={"secret": True})
    with pytest.raises(TransitionRefused) as refused:
        mission.fire(case.id, "plan", actor="lou", role="liaison", data={"planned_on": SECRET_DAY})
    assert refused.value.kind == "data"
    assert refused.value.reason == (
        "role 'liaison' may not write planned_on (withheld from it while an embargo holds on "
        "this instance)"
    )
    # what it may read, it may write; and an announced mission is no one's secret
    mission.fire(case.id, "plan", actor="lou", role="liaison", data={"note": "Asked for a room"})
    open_case = mission.start(
        "mission", actor="lou", role="liaison", data={"planned_on": SECRET_DAY}
    )
    assert open_case.data["planned_on"] == SECRET_DAY
    # nor may it set or lift the embargo itself (validate insists on the flag's write_roles)
    with pytest.raises(TransitionRefused, match="may not write secret"):
        mission.start("mission", actor="lou", role="liaison", data={"secret": True})


BAD = """\
id: bad
version: 1
title: Bad embargoes
roles: {planner: p, liaison: l}
fields:
  ref: {type: string}
  secret: {type: text}
  day: {type: date}
summary_field: ref
states:
  planning:
    initial: true
    deadlines:
      - {id: brief, due: 2 days before day}
  done: {final: true}
transitions:
  - {trigger: go, source: planning, dest: done, roles: [planner]}
  - trigger: ask
    source: planning
    roles: [planner]
    opens: [{workflow: bad, data: {ref: "'x'", day: day}}]
embargoes:
  - id: e
    flag: secret
    fields: [day, ref, nope]
    from_roles: [liason]
    while_in: [planning, planing]
"""


def test_validate_checks_every_name_of_an_embargo_at_its_place() -> None:
    with pytest.raises(DefinitionError) as invalid:
        compile_text(BAD, "bad.yaml", Registry())
    said = [f"{p.line}:{p.column} {p.message}" for p in invalid.value.problems]
    assert said == [
        "21:53 ask gives its bad child day while embargo 'e' may hold: the child would show "
        "what the embargo withholds",
        "23:5 deadline 'brief' is counted from day, which the embargo withholds: its due date "
        "would reveal them; list it in 'deadlines'",
        "24:11 flag 'secret' is text: an embargo's flag is a boolean field (the embargo holds "
        "while it is true)",
        "24:11 flag 'secret' must declare write_roles without the roles the embargo keeps out "
        "(liason): whoever may clear it may lift the embargo",
        "25:19 field 'ref' is the summary_field: summaries are shown in every list and "
        "calendar, so it cannot be embargoed",
        "25:24 unknown field 'nope'",
        "26:18 unknown role 'liason' (did you mean 'liaison'?)",
        "27:26 unknown state 'planing' (did you mean 'planning'?)",
    ]


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(
    state=st.sampled_from(["planning", "postponed", "conducting", "debrief", "cancelled"]),
    flag=st.sampled_from([True, False, None]),
    roles=st.sets(st.sampled_from(["coordinator", "member", "expert", "liaison", "head"])),
)
def test_without_an_instance_the_read_rule_answers_the_worst_case(
    state: str, flag: bool | None, roles: set[str]
) -> None:
    # what a list filter is checked against must withhold at least what any visit withholds,
    # else a filter would answer for some visits what their views withhold
    visit = catalog().get("visit")
    one = SimpleNamespace(state=state, data={"unannounced": flag, "planned_on": SECRET_DAY})
    assert visit.withheld_fields(roles, one) <= visit.withheld_fields(roles)
    held = flag is True and state in ("planning", "postponed", "cancelled")
    assert ("planned_on" in visit.withheld_fields(roles, one)) == (held and roles <= {"liaison"})
