"""An unannounced visit (issue 21): its dates are withheld from the authority liaison and
from every notification and webhook until the visit has started, then shown. With a fresh
engine between steps, on both backends; the HTTP API's view, list, filter, history and
deadline list over the bundled workflows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import registerkit
import yaml
from casework import COORDINATOR, HEAD, LIAISON, MEMBER, PLACE, Desk, catalog
from http_server import BundledApi, bundled_api_fixture, live_server_fixture  # noqa: F401

from opcatflow.adapters.views import instance_view, record_view
from opcatflow.engine import Engine, FrozenClock, SQLAlchemyStore
from opcatflow.engine.agenda import agenda_page
from opcatflow.notifications.directory import parse_directory
from opcatflow.notifications.model import STATUSES, OutboxEntry, OutboxStatus
from opcatflow.notifications.outbox import OutboxWriter
from opcatflow.workflows import registry

DAYS = ("2026-04-14", "2026-04-21", "2026-04-28")  # planned, postponed until, planned again
ROLES = ("coordinator", "member", "expert", "liaison", "head")
DIRECTORY = {
    "people": [
        {"id": f"{r}1", "name": r.title(), "email": f"{r}1@npm.example", "roles": [r]}
        for r in ROLES
    ],
    "webhooks": [{"id": "hook", "url": "https://hooks.example/in", "secret": "whsec_" + "A" * 44}],
}


class MessagingDesk(Desk):
    """A desk whose engines write outbox messages (to everyone, and a webhook)."""

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        writer = OutboxWriter(parse_directory(yaml.safe_dump(DIRECTORY), "<directory>"))
        store = SQLAlchemyStore(self.url)
        with Engine(store, catalog(), registry, clock=self.clock, hooks=[writer]) as eng:
            yield eng

    def messages(self, instance_id: str) -> list[OutboxEntry]:
        with self.engine() as eng, eng.store.read() as uow:
            listed = uow.outbox.listing([OutboxStatus(s) for s in STATUSES], limit=10_000)
        return [m for m in listed if m.instance_id == instance_id]

    def as_liaison(self, instance_id: str) -> dict[str, Any]:
        """What the liaison reads: the view, the list, the history, the deadlines (as the
        HTTP API shows them to a liaison's key)."""
        with self.engine() as eng:
            instance = eng.get(instance_id)
            wf = eng.workflow(instance.workflow_id, instance.workflow_version)
            hidden = wf.withheld_fields([LIAISON[1]], instance)
            deadlines = agenda_page(eng, now=eng.clock.now(), roles={LIAISON[1]}).entries
            listed = [
                instance_view(i, wf, wf.withheld_fields([LIAISON[1]], i))
                for i in eng.query(workflow="visit")
            ]
            return {
                "view": instance_view(instance, wf, hidden),
                "list": listed,
                "history": [record_view(r, hidden) for r in eng.history(instance_id)],
                "deadlines": [e.as_json() for e in deadlines if e.instance_id == instance_id],
            }


def reveals(value: object) -> list[str]:
    text = json.dumps(value, default=str)
    return [day for day in DAYS if day in text]


@pytest.fixture
def desk(db_url: str, clock: FrozenClock) -> MessagingDesk:
    return MessagingDesk(db_url, clock)


def test_an_unannounced_visits_dates_reach_no_liaison_and_no_message_before_it_starts(
    desk: MessagingDesk,
) -> None:
    visit = desk.start(
        "visit",
        COORDINATOR,
        {"kind": "regular", "place": PLACE, "unannounced": True, "planned_on": DAYS[0]},
    )
    desk.fire(visit, "plan", COORDINATOR, {"team_members": [registerkit.DIALLO]})
    desk.fire(visit, "postpone", HEAD, {"postponed_until": DAYS[1]}, reason=f"not before {DAYS[1]}")
    desk.fire(visit, "reschedule", COORDINATOR, {"planned_on": DAYS[2]})
    seen = desk.as_liaison(visit)
    assert seen["view"]["data"]["planned_on"] == "[withheld]"
    assert seen["view"]["data"]["postponed_until"] == "[withheld]"
    assert [v["data"]["planned_on"] for v in seen["list"]] == ["[withheld]"]
    assert reveals(seen) == []
    # the coordinator reads them; no message carries them, whoever it goes to
    assert desk.get(visit).data["planned_on"] == DAYS[2]
    before = desk.messages(visit)
    assert {m.channel for m in before} == {"webhook"}  # no notification is declared for these
    assert len(before) == 4
    assert [reveals(m.payload) for m in before] == [[]] * 4
    # the liaison may not write them either (no write without read): refused as a role here
    desk.refused(visit, "reschedule", LIAISON, {"planned_on": DAYS[0]})

    # the visit starts: the dates are no secret any more
    desk.fire(visit, "start_visit", MEMBER)
    seen = desk.as_liaison(visit)
    assert seen["view"]["data"]["planned_on"] == DAYS[2]
    assert "planned_on" not in seen["view"]["withheld"]
    assert [v["data"]["planned_on"] for v in seen["list"]] == [DAYS[2]]
    assert set(reveals(seen["history"])) == set(DAYS)
    [started] = [m for m in desk.messages(visit) if m.event == "visit.transition.start_visit"]
    assert started.payload["cloudevent"]["data"]["data"]["planned_on"] == DAYS[2]
    desk.verify()


def test_an_announced_visit_shows_its_dates_to_the_liaison(desk: MessagingDesk) -> None:
    visit = desk.start("visit", COORDINATOR, {"kind": "regular", "place": PLACE})
    desk.fire(visit, "plan", COORDINATOR, {"planned_on": DAYS[0]})
    assert desk.as_liaison(visit)["view"]["data"]["planned_on"] == DAYS[0]
    # the head decides it is unannounced after all: withheld from then on
    desk.fire(visit, "set_unannounced", HEAD, {"unannounced": True})
    assert desk.as_liaison(visit)["view"]["data"]["planned_on"] == "[withheld]"
    refused = desk.refused(visit, "set_unannounced", LIAISON, {"unannounced": False})
    assert refused.kind == "role"


def test_the_http_api_withholds_an_unannounced_visits_dates_from_the_liaison(
    bundled_api: BundledApi,
) -> None:
    api, engine = bundled_api, bundled_api.engine
    registerkit.seed(engine)  # the visit's place and team member
    visit = engine.start(
        "visit",
        actor="s.nakamura",
        role="coordinator",
        data={"kind": "regular", "place": PLACE, "unannounced": True, "planned_on": DAYS[0]},
    ).id
    engine.fire(
        visit,
        "plan",
        actor="s.nakamura",
        role="coordinator",
        data={"team_members": [registerkit.DIALLO]},
    )

    def get(path: str, role: str, **params: Any) -> Any:
        return api.client.get(path, headers=api.auth(role), params=params)

    shown = get(f"/instances/{visit}", "liaison").json()
    assert shown["data"]["planned_on"] == "[withheld]"
    assert "planned_on" in shown["withheld"]
    listed = get("/instances", "liaison", workflow="visit").json()["items"]
    assert [i["data"]["planned_on"] for i in listed] == ["[withheld]"]
    # a filter on the date would say it: refused to the liaison, for every visit
    oracle = get("/instances", "liaison", workflow="visit", where=f"planned_on={DAYS[0]}")
    assert oracle.status_code == 422
    assert "planned_on" in oracle.json()["detail"]
    mine = get("/instances", "coordinator", workflow="visit", where=f"planned_on={DAYS[0]}")
    assert [i["id"] for i in mine.json()["items"]] == [visit]
    assert reveals(get(f"/instances/{visit}/history", "liaison").json()) == []
    assert reveals(get("/deadlines", "liaison").json()) == []

    engine.fire(visit, "start_visit", actor="a.diallo", role="member")
    assert get(f"/instances/{visit}", "liaison").json()["data"]["planned_on"] == DAYS[0]
    assert reveals(get(f"/instances/{visit}/history", "liaison").json()) == [DAYS[0]]
