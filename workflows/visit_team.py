"""The visit team rules by register (visit version 6; docs/domain.md, cross-cutting rule 4).

Version 6 names its place and its people by register id, so each rule compares ids, never
spellings:

- a member is a member because the person register says so (``person_kind`` member or
  staff): an external expert listed among the members is refused, and external experts
  never visit alone;
- a conflict of interest is a place id the expert declared: the visit's place and the
  declared ones are compared after following merges, so neither a spelling nor a duplicate
  entry merged away dodges it;
- the expertise the settings require for the type of place (``visit.required_expertise``)
  must be held by someone on the team, as the person register records it.

Register entries are read through the same lookup as every rule that reads another instance
(a register entry is an instance of its register workflow), as they hold on the NPM's current
day (an amendment entered ahead of its ``valid_from`` counts from that day).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from opcatflow.engine import GuardRefusal, Instance, RuleContext
from opcatflow.engine.refs import ACTIVE
from opcatflow.engine.registers import current_values, follow_merges
from opcatflow.workflows.rules import registry

# The person register's kinds that make someone part of the NPM (not an external expert).
NPM_KINDS = frozenset({"member", "staff"})


def entry(ctx: RuleContext, register: str, entry_id: object) -> Instance | None:
    """The register entry ``entry_id`` names, following merges to the surviving entry, with
    the values that hold today (:attr:`RuleContext.today`); None when it names no entry of
    that register."""
    if not isinstance(entry_id, str) or not entry_id:
        return None
    found = follow_merges(ctx.lookup, entry_id)
    if found is None or found.workflow_id != register:
        return None
    data = current_values(found.data, ctx.today)
    return found if data is found.data else dataclasses.replace(found, data=data)


def _title(found: Instance) -> str:
    return str(found.data.get("name") or found.id)


def _canonical(ctx: RuleContext, register: str, ids: Iterable[object]) -> set[str]:
    """The surviving entry ids ``ids`` name (an unknown id stands for itself)."""
    return {
        found.id if (found := entry(ctx, register, i)) is not None else str(i)
        for i in ids
        if i is not None
    }


def _members(ctx: RuleContext) -> list[Instance]:
    """The team's members, each an active NPM member or staff member of the person
    register; every other case refused with what the register says."""
    members: list[Instance] = []
    problems: list[str] = []
    for person_id in dict.fromkeys(ctx.data.get("team_members") or []):
        person = entry(ctx, "person", person_id)
        if person is None:
            problems.append(f"{person_id!r} is not in the person register")
        elif person.state != ACTIVE:
            problems.append(f"{_title(person)} is no longer in the person register")
        elif person.data.get("person_kind") not in NPM_KINDS:
            kind = person.data.get("person_kind")
            problems.append(
                f"{_title(person)} is listed as a member, but the person register records them "
                f"as {kind}: a member is a member because the register says so (list an "
                "external expert's record under team_experts)"
            )
        else:
            members.append(person)
    if problems:
        raise GuardRefusal("; ".join(problems))
    if not members:
        raise GuardRefusal(
            "the team has no NPM member or staff member (external experts never visit alone)"
        )
    return members


def _expert_problem(
    ctx: RuleContext, expert_id: str, place: Instance, declared: set[str]
) -> tuple[str, Instance | None]:
    """What keeps one expert off this visit ("" when nothing), and their person entry."""
    expert = ctx.lookup(expert_id)
    if expert is None or expert.workflow_id != "expert":
        return f"{expert_id} is not an expert record", None
    data = expert.data
    person = entry(ctx, "person", data.get("person"))
    name = _title(person) if person is not None else expert_id
    if person is None or person.state != ACTIVE:
        return f"expert {name} is not an active entry of the person register", None
    if expert.state != "available":
        return f"expert {name} is not accredited and available (state: {expert.state})", person
    if data.get("confidentiality_signed") is not True:
        return f"expert {name} has not signed the confidentiality agreement", person
    if not data.get("training_completed_on"):
        return f"expert {name} has not completed the initial training", person
    conflicts = _canonical(
        ctx, "place", (e.get("place") for e in data.get("conflicts_of_interest") or [] if e)
    )
    if place.id in conflicts:
        return f"expert {name} declared a conflict of interest for {_title(place)}", person
    if expert_id not in declared:
        problem = f"expert {name} has not declared that they have no conflict of interest"
        return f"{problem} for {_title(place)}", person
    return "", person


def _missing_expertise(ctx: RuleContext, place: Instance, team: list[Instance]) -> list[str]:
    kind = str(place.data.get("place_type"))
    needed = ctx.policy.required_expertise.get(kind, ())
    held = {e for person in team for e in person.data.get("expertise") or []}
    return [e for e in needed if e not in held]


@registry.guard("visit_team_by_register", reason="the visit team is not ready")
def visit_team_by_register(ctx: RuleContext) -> bool:
    """At least one NPM member or staff member, as the person register says; every external
    expert accredited, bound by confidentiality, trained and free of conflicts of interest
    for this place (by id); the expertise the settings require for this type of place held
    by someone on the team."""
    place = entry(ctx, "place", ctx.data.get("place"))
    if place is None:
        raise GuardRefusal(f"{ctx.data.get('place')!r} is not in the place register")
    if place.state != ACTIVE:
        raise GuardRefusal(f"{_title(place)} is closed (state {place.state} in the place register)")
    members = _members(ctx)
    declared = {str(e.get("expert")) for e in ctx.data.get("experts_no_conflict") or [] if e}
    team = list(members)
    problems = []
    for expert_id in dict.fromkeys(ctx.data.get("team_experts") or []):
        problem, person = _expert_problem(ctx, str(expert_id), place, declared)
        problems.append(problem)
        if person is not None:
            team.append(person)
    if any(problems):
        raise GuardRefusal("; ".join(p for p in problems if p))
    missing = _missing_expertise(ctx, place, team)
    if missing:
        kind = place.data.get("place_type")
        raise GuardRefusal(
            f"a visit to a {kind} needs {', '.join(missing)} on the team (the settings' "
            f"visit.required_expertise for {kind}); nobody on it holds that expertise in the "
            "person register"
        )
    return True
