"""Helpers for the casework scenario tests: people, and a desk that saves and reloads.

Every step of a scenario runs on a fresh :class:`Engine` over the same database (the way a
server restarts between two clicks), so state that lives only in memory cannot pass.
``PATHS`` lists the state path each scenario must follow; ``test_every_state_is_reached``
checks that together they reach every state of every bundled workflow.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from functools import cache
from typing import Any

import pytest
import registerkit

from opcatflow.engine import (
    AuditRecord,
    Catalog,
    Engine,
    FrozenClock,
    Instance,
    SQLAlchemyStore,
    TransitionRefused,
    load_catalog,
)
from opcatflow.engine.bulk import NewInstance
from opcatflow.engine.settings import Settings
from opcatflow.workflows import BUNDLED, registry
from opcatflow.workflows.shipped import shipped_entries

Who = tuple[str, str]

INTAKE: Who = ("m.okafor", "intake")
CASEWORKER: Who = ("l.ferreira", "caseworker")
HEAD: Who = ("r.haddad", "head")
COORDINATOR: Who = ("s.nakamura", "coordinator")
MEMBER: Who = ("a.diallo", "member")
LIAISON: Who = ("j.moreau", "liaison")
EXPERT: Who = ("dr.osei", "expert")
SCHEDULER: Who = ("scheduler", "scheduler")

PLACE = registerkit.PLACE  # the place register's "Central Remand Prison"

COMPLAINT = {
    "source": "detained_person",
    "channel": "during_visit",
    "received_on": "2026-03-02",
    "persons": [{"ref": "P1", "name": "Tomás Varga"}],
    "summary": "Struck by two officers in cell 14 after asking to see a doctor.",
}


def consent(ref: str, *uses: str, on: str = "2026-03-02", **more: Any) -> dict[str, Any]:
    """One entry of ``persons`` with a complete consent to ``uses`` (docs/consent.md)."""
    return {
        "ref": ref,
        "uses": list(uses),
        "consent_obtained_by": "l.ferreira",
        "consent_obtained_on": on,
        "consent_how": "in_writing",
        **more,
    }


def recorded(*persons: dict[str, Any]) -> dict[str, Any]:
    """``record_consent`` data for a visit report: ``persons`` lists everyone whose personal
    data the report carries (nobody, when none are given), and someone says so
    (``persons_complete``); a visit v3 report is published only after that."""
    return {"persons": list(persons), "persons_complete": True}


RECORD = {"complaint_type": "ill_treatment", "institution": PLACE, "theme": registerkit.THEME}
ASSESS = {"seriousness": "high", "urgency": "urgent", "npm_best_placed": True}

CASEWORK = ("complaint", "expert", "recommendation", "referral", "reprisal", "visit")

PATHS: dict[str, tuple[str, list[str]]] = {
    name: (workflow, path.split())
    for name, workflow, path in [
        ("complaint_referred", "complaint",
         "received acknowledged recorded assessed acting follow_up closed"),
        ("complaint_for_patterns", "complaint", "received recorded assessed follow_up"),
        ("referral_followed", "referral", "sent acknowledged outcome_known closed"),
        ("visit_published", "visit",
         "planning postponed planning conducting debrief drafting factual_check final_report "
         "published follow_up closed"),
        ("visit_cancelled", "visit", "planning cancelled"),
        ("visit_kept_confidential", "visit",
         "planning conducting debrief drafting factual_check final_report follow_up closed"),
        ("visit_without_factual_check", "visit",
         "planning conducting debrief drafting final_report published follow_up closed"),
        ("visit_suspended_then_terminated", "visit",
         "planning conducting suspended conducting suspended terminated"),
        ("visit_reprisal_follow_up", "visit", "planning conducting debrief closed"),
        ("expert_onboarded", "expert",
         "recruitment contracted trained accredited available suspended available ended"),
        ("recommendation_implemented", "recommendation",
         "issued awaiting_reply reply_received under_dialogue closed"),
        ("recommendation_escalated", "recommendation",
         "issued awaiting_urgent_reply escalated reply_received under_dialogue"),
        ("recommendation_refused", "recommendation",
         "issued awaiting_reply escalated under_dialogue closed"),
        ("recommendation_set_aside", "recommendation", "issued under_dialogue closed"),
        ("reprisal_escalated", "reprisal",
         "reported risk_assessment preventive_measures follow_up_visit management_informed "
         "escalated closed"),
        ("upr_moved_then_reviewed", "upr_cycle",
         "preparing submitted postponed submitted interactive_dialogue reviewed "
         "awaiting_adoption follow_up closed"),
        ("cat_moved_then_examined", "cat_cycle",
         "list_of_issues awaiting_state_report examination_preparation postponed "
         "examination_preparation closed_briefing examination follow_up closed"),
        ("spt_visit_postponed_suspended_published", "spt_visit",
         "announced postponed announced information_sent under_way suspended under_way "
         "reprisal_prevention awaiting_publication dialogue special_fund closed"),
        ("spt_visit_terminated", "spt_visit", "announced terminated"),
        ("spt_advisory_year", "spt_advisory", "reporting_year report_shared closed"),
        ("sp_visit_followed", "sp_visit",
         "invitation_advocacy scheduled postponed scheduled under_way awaiting_report follow_up "
         "closed"),
        ("reprisal_merged", "reprisal", "reported merged"),
    ]
}  # fmt: skip


@cache
def catalog() -> Catalog:
    return load_catalog([BUNDLED], registry)


def seed_bodies(engine: Engine) -> None:
    """The shipped receiving bodies (authority register), which referrals and do-no-harm
    decisions name; not the themes, which no casework test needs."""
    rows = [NewInstance(dict(data), i) for i, data in shipped_entries("authority")]
    engine.start_many("authority", rows, actor="opcatflow", role="head")


class Desk:
    """Acts on one database, with a fresh engine for every call."""

    def __init__(self, url: str, clock: FrozenClock, settings: Settings | None = None) -> None:
        self.url = url
        self.clock = clock
        self.settings = settings
        store = SQLAlchemyStore(url)
        store.ensure_schema()
        store.close()
        with self.engine() as eng:
            seed_bodies(eng)
            registerkit.seed(eng)

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        store = SQLAlchemyStore(self.url)
        with Engine(store, catalog(), registry, clock=self.clock, settings=self.settings) as eng:
            yield eng

    def later(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))

    def start(
        self,
        workflow: str,
        who: Who,
        data: Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> str:
        with self.engine() as eng:
            return eng.start(workflow, actor=who[0], role=who[1], data=data, reason=reason).id

    def fire(
        self,
        instance_id: str,
        trigger: str,
        who: Who,
        data: Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> Instance:
        self.later(hours=1)
        with self.engine() as eng:
            return eng.fire(
                instance_id, trigger, actor=who[0], role=who[1], data=data, reason=reason
            )

    def refused(
        self,
        instance_id: str,
        trigger: str,
        who: Who,
        data: Mapping[str, Any] | None = None,
    ) -> TransitionRefused:
        """Fire, expecting a refusal; checks that it changed nothing and was audited."""
        before = self.get(instance_id)
        with pytest.raises(TransitionRefused) as caught:
            self.fire(instance_id, trigger, who, data)
        after = self.get(instance_id)
        assert (after.state, after.version, after.data) == (
            before.state,
            before.version,
            before.data,
        )
        last = self.history(instance_id)[-1]
        assert (last.outcome, last.trigger, last.reason) == (
            "refused",
            trigger,
            caught.value.reason,
        )
        return caught.value

    def get(self, instance_id: str) -> Instance:
        with self.engine() as eng:
            return eng.get(instance_id)

    def children(self, instance_id: str) -> list[Instance]:
        with self.engine() as eng:
            return eng.children(instance_id)

    def history(self, instance_id: str) -> list[AuditRecord]:
        with self.engine() as eng:
            return eng.history(instance_id)

    def path(self, instance_id: str) -> list[str]:
        """The states the instance went through, from its audit trail."""
        states: list[str] = []
        for record in self.history(instance_id):
            entered = record.outcome in ("started", "applied") and record.to_state is not None
            if entered and (not states or states[-1] != record.to_state):
                states.append(record.to_state)
        return states

    def assert_path(self, instance_id: str, scenario: str) -> None:
        workflow, expected = PATHS[scenario]
        assert self.get(instance_id).workflow_id == workflow
        assert self.path(instance_id) == expected

    def verify(self) -> None:
        with self.engine() as eng:
            report = eng.verify_audit()
        assert report.ok, report.first_break

    # -- common set-ups ------------------------------------------------------------------

    def available_expert(self, person: str = registerkit.OSEI, user: str = EXPERT[0]) -> str:
        """An external expert (``person``: their person register entry) taken through
        onboarding to ``available``."""
        expert = self.start(
            "expert",
            COORDINATOR,
            {"person": person, "user": user, "recruitment": "public_call_pool"},
        )
        self.fire(
            expert,
            "sign_contract",
            COORDINATOR,
            {"contract_signed_on": "2026-01-05", "confidentiality_signed": True},
        )
        self.fire(expert, "complete_training", COORDINATOR, {"training_completed_on": "2026-01-20"})
        self.fire(
            expert,
            "accredit",
            LIAISON,
            {"accredited_on": "2026-02-10", "accreditation_reference": "MJ/2026/114"},
        )
        self.fire(expert, "make_available", HEAD)
        return expert

    def final_report(self, **data: Any) -> str:
        """A visit by NPM members only, its final report adopted (nobody interviewed)."""
        visit = self.start("visit", COORDINATOR, {"kind": "regular", "place": PLACE})
        self.fire(visit, "plan", COORDINATOR, {"team_members": [registerkit.DIALLO]})
        self.fire(visit, "start_visit", MEMBER)
        self.fire(visit, "end_visit", MEMBER, {"ended_on": "2026-03-04", "people_interviewed": 0})
        self.fire(visit, "start_drafting", MEMBER, {"debrief_notes": "-"})
        self.fire(
            visit, "send_for_factual_check", HEAD, {"report_addressee": registerkit.AUTHORITY}
        )
        self.fire(visit, "adopt_final_report", HEAD, data)
        return visit
