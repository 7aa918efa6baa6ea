"""Random casework never breaks the cross-cutting rules (hypothesis, on both backends).

Random triggers, roles and data (mostly plausible, sometimes not; sensitive fields smuggled
into unrelated steps) over experts, visits and complaints. After every applied step an oracle
written here, independent of the rules module, checks that:
- a visit started only with an NPM member or staff member on the team, and with every
  external expert available, bound by confidentiality, trained, free of a declared conflict
  for the place, and declared free of one for this visit;
- a report was published only when everyone whose data it carries had consented;
- a complaint's personal data went to the management only with every person's active consent
  for it, and as evidence to another body only with that consent for referral or an active
  do-no-harm decision naming that (independent) body, the use and the fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import registerkit
import structlog
from casework import catalog
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from opcatflow.engine import (
    Engine,
    FrozenClock,
    Instance,
    InstanceNotFound,
    SQLAlchemyStore,
    TransitionRefused,
)
from opcatflow.workflows import registry

PLACES = [registerkit.PLACE, registerkit.HOSPITAL]  # register ids (tests/registerkit.py)
PERSONS = ["Ana Pereira", "Rui Costa", "Tomás Varga"]
ROLES = ["intake", "caseworker", "member", "coordinator", "expert", "liaison", "head", "visitor"]
BODIES = ["ombudsperson", "police_ombudsperson", "prison_management", "prison_director"]
DAYS = ["2026-03-01", "2026-03-05", "2026-03-20"]

QUIET = structlog.wrap_logger(structlog.ReturnLogger())  # thousands of steps: no log lines

SETTINGS = settings(
    max_examples=10,
    stateful_step_count=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def subsets(items: list[str]) -> st.SearchStrategy[list[str]]:
    return (
        st.lists(st.sampled_from(items), max_size=len(items), unique=True) if items else st.just([])
    )


def entries(key: str, values: list[str]) -> list[dict[str, str]]:
    """Records entries with only their key sub-field."""
    return [{key: value} for value in values]


def sometimes(extra: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Extra fields slipped into a step, one time in two."""
    return st.one_of(st.just({}), extra)


def expert_data(trigger: str) -> st.SearchStrategy[dict[str, Any]]:
    plausible: dict[str, st.SearchStrategy[Any]] = {
        "sign_contract": st.fixed_dictionaries(
            {"contract_signed_on": st.just("2026-01-05"), "confidentiality_signed": st.booleans()}
        ),
        "complete_training": st.just({"training_completed_on": "2026-01-20"}),
        "accredit": st.just({"accredited_on": "2026-02-01", "accreditation_reference": "R-1"}),
        "declare_conflict": st.fixed_dictionaries(
            {"conflicts_of_interest": subsets(PLACES).map(lambda ps: entries("place", ps))}
        ),
        "suspend": st.just({"suspension_reason": "inquiry"}),
        "end": st.just({"end_reason": "left"}),
    }
    smuggled = st.fixed_dictionaries(
        {},
        optional={
            "confidentiality_signed": st.booleans(),
            "training_completed_on": st.sampled_from([None, "2026-01-20"]),
        },
    )
    return st.builds(
        lambda a, b: {**a, **b}, plausible.get(trigger, st.just({})), sometimes(smuggled)
    )


def person(*uses: str) -> st.SearchStrategy[dict[str, Any]]:
    """One entry of ``persons``, its consent to some of ``uses`` complete or not."""
    return st.fixed_dictionaries(
        {"ref": st.sampled_from(["P1", "P2"]), "name": st.sampled_from(PERSONS)},
        optional={
            "uses": subsets(list(uses)),
            "consent_obtained_by": st.just("l.ferreira"),
            "consent_obtained_on": st.sampled_from(DAYS),
            "consent_how": st.just("orally"),
            "consent_withdrawn_on": st.sampled_from(DAYS),
        },
    )


def visit_data(trigger: str, experts: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    team = {
        # Dr Osei is an external expert in the person register: a member in name only.
        "team_members": st.sampled_from(
            [
                [registerkit.DIALLO],
                [],
                [registerkit.OSEI],
                [registerkit.DIALLO, registerkit.NAKAMURA],
            ]
        ),
        "team_experts": subsets([*experts, "not-an-expert"]),
        "experts_no_conflict": subsets(experts).map(lambda ids: entries("expert", ids)),
    }
    plausible: dict[str, st.SearchStrategy[Any]] = {
        "plan": st.fixed_dictionaries(team),
        "record_no_conflict": st.fixed_dictionaries(
            {"experts_no_conflict": subsets(experts).map(lambda ids: entries("expert", ids))}
        ),
        "end_visit": st.fixed_dictionaries(
            {"ended_on": st.just("2026-03-10"), "people_interviewed": st.sampled_from([0, 3])}
        ),
        "start_drafting": st.just({"debrief_notes": "notes"}),
        "comment_draft": st.just({"draft_comment": "comment"}),
        "send_for_factual_check": st.just(
            {
                "report_addressee": registerkit.AUTHORITY,
                "report_recommendations": ["Open the yard."],
            }
        ),
        "record_correction": st.fixed_dictionaries(
            {
                "correction": st.just("412 people, not 450"),
                "correction_to": st.sampled_from(["fact", "finding", "recommendation"]),
            }
        ),
        "record_meeting": st.just({"factual_check_meeting_on": "2026-04-01"}),
        "record_consent": st.fixed_dictionaries(
            {"persons": st.lists(person("publish"), max_size=2, unique_by=lambda p: p["ref"])},
            optional={"persons_complete": st.sampled_from([True, True, False])},
        ),
        "send_urgent_notification": st.just(
            {"urgent_concerns": ["No fire alarm."], "report_addressee": registerkit.AUTHORITY}
        ),
        "cancel": st.just({"cancellation_reason": "closed"}),
        "close": st.just({"outcome": "done"}),
    }
    smuggled = st.fixed_dictionaries(
        {},
        optional={
            **team,
            "persons": st.lists(person("publish"), max_size=2, unique_by=lambda p: p["ref"]),
            "persons_complete": st.booleans(),
        },
    )
    return st.builds(
        lambda a, b: {**a, **b}, plausible.get(trigger, st.just({})), sometimes(smuggled)
    )


def complaint_data(trigger: str) -> st.SearchStrategy[dict[str, Any]]:
    plausible: dict[str, st.SearchStrategy[Any]] = {
        "record": st.just(
            {"complaint_type": "other", "institution": PLACES[0], "theme": registerkit.THEME}
        ),
        "assess": st.just({"seriousness": "high", "urgency": "urgent", "npm_best_placed": True}),
        "refer": st.fixed_dictionaries(
            {
                "referral_body": st.just("ombudsperson"),
                "referral_shares": st.sampled_from(["evidence", "preliminary_findings"]),
            }
        ),
        "recommend_to_authority": st.just(
            {"authority": registerkit.AUTHORITY, "recommendation_text": "x"}
        ),
        "close": st.fixed_dictionaries({"outcome": st.just("done"), "told_limits": st.booleans()}),
        "withdraw": st.just({"outcome": "withdrawn"}),
    }
    decision = st.fixed_dictionaries(
        {
            "ground": st.just("unable_to_consent"),
            "recipient": st.sampled_from(BODIES),
            "fields": subsets(["summary", "persons"]),
            "use": st.just("refer"),
            "decided_on": st.sampled_from(DAYS),
            "expires_on": st.sampled_from(DAYS),
        }
    )
    plausible["record_consent"] = st.fixed_dictionaries(
        {"persons": st.lists(person("refer", "share_with_management"), max_size=1)}
    )
    plausible["decide_do_no_harm"] = st.fixed_dictionaries(
        {"do_no_harm": decision.map(lambda d: {"append": [d]})}
    )
    smuggled = st.fixed_dictionaries(
        {},
        optional={
            "persons": st.lists(person("refer", "share_with_management"), max_size=1),
            "do_no_harm": decision.map(lambda d: {"append": [d]}),
        },
    )
    return st.builds(
        lambda a, b: {**a, **b}, plausible.get(trigger, st.just({})), sometimes(smuggled)
    )


# -- the oracle --------------------------------------------------------------------------------


def check_visit_start(after: Instance, experts: Mapping[str, Instance | None]) -> None:
    data = after.data
    kinds = {registerkit.PEOPLE[m]["person_kind"] for m in data.get("team_members") or []}
    assert kinds, "started without a member"
    assert kinds <= {"member", "staff"}, "started with a member in name only"
    declared = {e["expert"] for e in data.get("experts_no_conflict") or []}
    for expert_id in data.get("team_experts") or []:
        expert = experts[expert_id]
        assert expert is not None, expert_id
        assert expert.workflow_id == "expert", expert_id
        assert expert.state == "available", expert.state
        assert expert.data.get("confidentiality_signed") is True
        assert expert.data.get("training_completed_on")
        conflicts = {e["place"] for e in expert.data.get("conflicts_of_interest") or []}
        assert data["place"] not in conflicts
        assert expert_id in declared


def check_publication(after: Instance, today: str) -> None:
    assert after.data.get("persons_complete") is True  # someone said whose data it carries
    persons = after.data.get("persons") or []
    assert all(consented(p, "publish", today) for p in persons)


def consented(person: Mapping[str, Any], use: str, today: str) -> bool:
    withdrawn = person.get("consent_withdrawn_on")
    return (
        use in (person.get("uses") or [])
        and bool(person.get("consent_obtained_by") and person.get("consent_how"))
        and person.get("consent_obtained_on", "9999") <= today
        and (withdrawn is None or withdrawn > today)
    )


def check_sharing(after: Instance, trigger: str, today: str) -> None:
    data = after.data
    if trigger == "refer" and data.get("referral_shares") != "evidence":
        return
    use = "share_with_management" if trigger == "inform_management" else "refer"
    persons = data.get("persons") or []
    shared = [f for f in ("summary", "persons") if data.get(f)]
    if not shared or (persons and all(consented(p, use, today) for p in persons)):
        return
    assert use == "refer", "the management was informed without everyone's consent"
    body = data.get("referral_body")
    assert body in ("ombudsperson", "police_ombudsperson"), body
    for name in shared:
        assert any(
            d["recipient"] == body
            and d["use"] == "refer"
            and name in d["fields"]
            and d["decided_on"] <= today < d["expires_on"]
            for d in data.get("do_no_harm") or []
        ), name


# The way forward from each state: three steps in four take it, so random runs get deep (a team
# formed, visits started, reports published) instead of stalling at the first state.
FORWARD = {
    "expert": {
        "recruitment": ["sign_contract"],
        "contracted": ["complete_training"],
        "trained": ["accredit"],
        "accredited": ["make_available"],
        "available": ["declare_conflict", "suspend"],
        "suspended": ["reinstate"],
    },
    "visit": {
        "planning": ["plan", "record_no_conflict", "start_visit"],
        "postponed": ["reschedule"],
        "conducting": ["end_visit"],
        "debrief": ["start_drafting"],
        "drafting": ["send_for_factual_check", "record_consent"],
        "factual_check": ["adopt_final_report", "record_correction"],
        "final_report": ["record_consent", "publish"],
    },
    "complaint": {
        "received": ["acknowledge", "record"],
        "acknowledged": ["record"],
        "recorded": ["assess"],
        "assessed": ["inform_management", "refer", "record_consent", "decide_do_no_harm"],
        "acting": ["inform_management", "refer", "record_consent", "decide_do_no_harm"],
    },
}


def casework_rules(url: str) -> type[RuleBasedStateMachine]:
    workflows = catalog()

    class Casework(RuleBasedStateMachine):
        @initialize()
        def open_engine(self) -> None:
            self.clock = FrozenClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
            self.engine = Engine(
                SQLAlchemyStore(url), workflows, registry, clock=self.clock, logger=QUIET
            )
            if self.engine.registers.resolve("place", registerkit.PLACE) is None:
                registerkit.seed(self.engine)  # once per database (examples share it)
            expert = {"person": registerkit.OSEI, "recruitment": "ad_hoc"}
            complaint = {
                "source": "detained_person",
                "channel": "mail",
                "received_on": "2026-03-01",
                "persons": [{"ref": "P1", "name": PERSONS[0]}],
            }
            self.ids: dict[str, list[str]] = {
                "expert": [self.new("expert", "coordinator", expert) for _ in range(2)],
                "visit": [
                    self.new("visit", "coordinator", {"kind": "regular", "place": place})
                    for place in PLACES
                ],
                "complaint": [self.new("complaint", "intake", complaint)],
            }
            self.checked = {"start_visit": 0, "publish": 0, "shared": 0}

        def new(self, workflow: str, role: str, data: dict[str, Any]) -> str:
            return self.engine.start(workflow, actor="x", role=role, data=data).id

        def teardown(self) -> None:
            if hasattr(self, "engine"):
                assert self.engine.verify_audit().ok
                self.engine.close()

        def data_for(self, workflow: str, trigger: str) -> st.SearchStrategy[dict[str, Any]]:
            if workflow == "expert":
                return expert_data(trigger)
            if workflow == "visit":
                return visit_data(trigger, self.ids["expert"])
            return complaint_data(trigger)

        @rule(
            workflow=st.sampled_from(["visit", "visit", "visit", "expert", "expert", "complaint"]),
            forward=st.integers(0, 3).map(bool),
            draw=st.data(),
        )
        def step(self, workflow: str, forward: bool, draw: st.DataObject) -> None:
            """Fire a trigger on an instance: the way forward by a role allowed to take it,
            or anything by anyone (most of which is refused)."""
            instance_id = draw.draw(st.sampled_from(self.ids[workflow]))
            current = self.engine.get(instance_id)
            wf = workflows.get(workflow)
            ahead = FORWARD[workflow].get(current.state, [])
            if forward and ahead:
                trigger = draw.draw(st.sampled_from(ahead))
                options = wf.options.get((current.state, trigger), [])
                role = draw.draw(st.sampled_from(sorted({r for o in options for r in o.roles})))
            else:
                trigger = draw.draw(st.sampled_from(sorted(wf.triggers)))
                role = draw.draw(st.sampled_from(ROLES))
            data = draw.draw(self.data_for(workflow, trigger))
            self.clock.advance(timedelta(hours=1))
            try:
                after = self.engine.fire(instance_id, trigger, actor="x", role=role, data=data)
            except TransitionRefused:
                return
            if workflow == "visit" and trigger == "start_visit":
                team = after.data.get("team_experts") or []
                check_visit_start(after, {e: self.lookup(e) for e in team})
                self.checked["start_visit"] += 1
            elif workflow == "visit" and trigger == "publish":
                check_publication(after, self.clock.now().date().isoformat())
                self.checked["publish"] += 1
            elif workflow == "complaint" and trigger in ("inform_management", "refer"):
                check_sharing(after, trigger, self.clock.now().date().isoformat())
                self.checked["shared"] += 1

        def lookup(self, instance_id: str) -> Instance | None:
            try:
                return self.engine.get(instance_id)
            except InstanceNotFound:
                return None

    return Casework


def test_random_casework_never_breaks_the_cross_cutting_rules(db_url: str) -> None:
    store = SQLAlchemyStore(db_url)
    store.ensure_schema()
    store.close()
    run_state_machine_as_test(casework_rules(db_url), settings=SETTINGS)
