"""``opcatflow demo``: one complaint from receipt to closure, on a fresh SQLite file.

Runs through the same :class:`Engine` every command uses, on a simulated clock so the
timeline spans weeks: the complaint, the referral record its referral opens, the reactive
visit it opens (refused once: its external expert was not yet accredited), and the
recommendations of the visit's report. Then it shows what the audit trail keeps and verifies
its chain.
"""

from __future__ import annotations

import dataclasses
import io
import json
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from opcatflow.adapters.cli import output as out
from opcatflow.adapters.cli.demo_registers import seed_demo_registers
from opcatflow.adapters.cli.errors import AUDIT_BROKEN, UNEXPECTED, fail
from opcatflow.adapters.cli.options import settings
from opcatflow.engine import Engine, FrozenClock, TransitionRefused
from opcatflow.workflows import BUNDLED

WORKFLOW = "complaint"
CHILD = "referral"  # the record the complaint's `refer` opens
VISIT = "visit"  # opened by the complaint's `open_visit`
EXPERT_RECORD = "expert"
OPENED = (CHILD, VISIT, "recommendation", "reprisal")  # what the complaint leads to
INTAKE = ("m.okafor", "intake")
CASEWORKER = ("l.ferreira", "caseworker")
HEAD = ("r.haddad", "head")
COORDINATOR = ("s.nakamura", "coordinator")
MEMBER = ("a.diallo", "member")
LIAISON = ("j.moreau", "liaison")
EXPERT = ("dr.osei", "expert")

COMPLAINT = {
    "source": "detained_person",
    "channel": "during_visit",
    "received_on": "2026-03-02",
    "persons": [{"ref": "P1", "name": "Tomás Varga"}],
    "summary": "Says two officers struck him in cell 14 on 27 February after he asked to see "
    "a doctor; bruising on his left arm seen by the visiting team.",
}
REFERRAL = {"referral_body": "police_ombudsperson", "referral_shares": "evidence"}
EXPERT_DATA = {
    "person": "dr.osei",  # her entry of the person register (demo_registers)
    "user": EXPERT[0],
    "recruitment": "public_call_pool",
}
REPORT_RECOMMENDATIONS = [
    "Record every use of force in the register and review the camera footage within 48 hours.",
    "Give every person who alleges ill-treatment a medical examination by an independent "
    "doctor within 24 hours.",
]
DO_NO_HARM = {
    "do_no_harm": {
        "append": [
            {
                "ground": "serious_violation_reprisal_risk",
                "recipient": "police_ombudsperson",
                "fields": ["summary", "persons"],
                "use": "refer",
                "decided_on": "2026-03-10",
                "expires_on": "2026-04-10",
                "why": "Serious ill-treatment; asking for his consent where he was transferred "
                "would expose him to reprisals, and the evidence would otherwise be lost. The "
                "ombudsperson is independent and bound to confidentiality.",
            }
        ]
    }
}


@dataclass(frozen=True)
class Step:
    at: datetime
    who: tuple[str, str]
    trigger: str
    data: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    on: str = WORKFLOW  # the workflow of the instance acted on (the first one of it)


def _at(month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


STEPS = [
    Step(_at(3, 3, 9, 10), INTAKE, "acknowledge",
         reason="Receipt acknowledged by letter through the confidential mail channel"),
    Step(_at(3, 3, 11, 0), COORDINATOR, "sign_contract",
         {"contract_signed_on": "2026-03-03", "confidentiality_signed": True},
         on=EXPERT_RECORD),
    Step(_at(3, 4, 14, 25), INTAKE, "record",
         {"complaint_type": "ill_treatment", "institution": "central-remand-prison",
          "theme": "use_of_force"}),
    Step(_at(3, 5, 16, 0), COORDINATOR, "complete_training",
         {"training_completed_on": "2026-03-05"}, on=EXPERT_RECORD),
    Step(_at(3, 6, 11, 0), CASEWORKER, "assess",
         {"seriousness": "high", "urgency": "urgent", "npm_best_placed": False},
         reason="Criminal allegation: the police ombudsperson is best placed to investigate"),
    Step(_at(3, 6, 15, 0), HEAD, "open_visit",
         {"visit_reason": "See cell 14, the use-of-force register and the medical records."},
         reason="See cell 14, the use-of-force register and the medical records ourselves"),
    Step(_at(3, 9, 16, 20), HEAD, "refer", REFERRAL,
         reason="Send the medical notes and photographs to the police ombudsperson"),
    Step(_at(3, 10, 10, 5), HEAD, "decide_do_no_harm", DO_NO_HARM,
         reason="Do-no-harm decision, after consulting the caseworker"),
    Step(_at(3, 10, 10, 30), HEAD, "refer", REFERRAL,
         reason="Referred under the do-no-harm decision of 10 March"),
    Step(_at(3, 10, 14, 0), COORDINATOR, "plan",
         {"planned_on": "2026-03-11", "priorities": ["use of force by staff", "health care"],
          "team_members": ["a.diallo", "s.nakamura"], "team_experts": ["@expert"],
          "experts_no_conflict": [{"expert": "@expert"}]},
         reason="Dr Osei declared no conflict of interest for Central Remand Prison", on=VISIT),
    Step(_at(3, 11, 8, 30), COORDINATOR, "start_visit",
         reason="Unannounced visit, the team at the gate", on=VISIT),
    Step(_at(3, 11, 9, 0), CASEWORKER, "follow_up",
         reason="Asked the police ombudsperson to confirm that an investigation is open"),
    Step(_at(3, 11, 12, 0), LIAISON, "accredit",
         {"accredited_on": "2026-03-11", "accreditation_reference": "MJ/OPCAT/2026/031"},
         reason="Accreditation granted by the Ministry of Justice", on=EXPERT_RECORD),
    Step(_at(3, 11, 12, 30), COORDINATOR, "make_available", on=EXPERT_RECORD),
    Step(_at(3, 12, 8, 0), MEMBER, "start_visit",
         reason="Management met at the gate; the mandate explained in every interview",
         on=VISIT),
    Step(_at(3, 12, 18, 30), MEMBER, "end_visit",
         {"ended_on": "2026-03-12", "people_interviewed": 9}, on=VISIT),
    Step(_at(3, 13, 9, 0), HEAD, "open_reprisal_follow_up",
         reason="Nine people spoke to the team: check on them", on=VISIT),
    Step(_at(3, 16, 12, 15), CASEWORKER, "confirm_receipt", {"acknowledged_on": "2026-03-16"},
         reason="The ombudsperson's office confirmed receipt by phone", on=CHILD),
    Step(_at(3, 16, 17, 0), MEMBER, "start_drafting",
         {"debrief_notes": "Force register incomplete; no medical examination after incidents."},
         on=VISIT),
    Step(_at(3, 20, 10, 0), EXPERT, "comment_draft",
         {"draft_comment": "The bruising recorded in the medical log matches the account."},
         on=VISIT),
    Step(_at(3, 23, 9, 0), COORDINATOR, "send_for_factual_check",
         {"report_addressee": "prison_service",
          "report_recommendations": REPORT_RECOMMENDATIONS},
         reason="Sent confidentially; the authorities have 10 working days", on=VISIT),
    Step(_at(4, 1, 15, 0), LIAISON, "record_correction",
         {"correction": "The prison held 412 people on 12 March, not 450.",
          "correction_to": "fact"}, on=VISIT),
    Step(_at(4, 2, 9, 0), COORDINATOR, "decide_correction",
         {"correction_n": 1, "correction_decision": "accepted"},
         reason="The register confirms 412 people on 12 March", on=VISIT),
    Step(_at(4, 2, 10, 0), CASEWORKER, "record_outcome",
         {"result": "investigated", "mechanism_worked": True},
         reason="Investigation opened on 2 April", on=CHILD),
    Step(_at(4, 7, 11, 0), HEAD, "adopt_final_report",
         reason="Final report sent to the Prison Service", on=VISIT),
    Step(_at(4, 27, 15, 0), HEAD, "close",
         {"told_limits": True,
          "outcome": "Investigation opened by the police ombudsperson on 2 April; "
          "reprisals to be checked on the next visit."},
         reason="Complainant told on the visit of 24 April what the NPM can and cannot do"),
]  # fmt: skip


def _fresh(given: str | None) -> Path:
    if given is None:
        return Path(tempfile.mkdtemp(prefix="opcatflow-demo-")) / "demo.db"
    if "://" in given:  # checked on the text: Path() would fold "://" into ":/"
        raise typer.BadParameter("the demo runs on a SQLite file: give a path", param_hint="--db")
    db = Path(given)
    if db.exists() and (db.is_dir() or db.stat().st_size > 0):
        raise typer.BadParameter(
            f"{db} exists and is not empty; the demo needs a fresh file", param_hint="--db"
        )
    db.parent.mkdir(parents=True, exist_ok=True)
    return db


def _global_db(ctx: typer.Context) -> str | None:
    """The global ``--db`` (or ``$OPCATFLOW_DB``) when one was given, not its default."""
    root = ctx.find_root()
    source = root.get_parameter_source("db")
    if source is None or source.name == "DEFAULT":
        return None
    return settings(ctx).db


def demo(
    ctx: typer.Context,
    *,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="PATH",
            help="A new SQLite file to run on (default: the global --db or $OPCATFLOW_DB if "
            "given, else one in a new temporary folder).",
        ),
    ] = None,
) -> None:
    """Run a complaint, and the visit it opens, on a fresh database; verify the audit trail."""
    path = _fresh(db if db is not None else _global_db(ctx))
    clock = FrozenClock(_at(3, 2, 10, 30))
    run = dataclasses.replace(settings(ctx), db=str(path), workflows=(BUNDLED,))
    with run.engine(clock) as engine:
        _run(engine, clock, path)


def _run(engine: Engine, clock: FrozenClock, path: Path) -> None:
    wf = engine.workflow(WORKFLOW)
    echo = out.echo
    echo(
        out.bold("opcatflow demo")
        + ": one complaint from receipt to closure, and the visit it opens"
    )
    echo()
    echo(f"  database  {path} {out.dim('(a fresh SQLite file)')}")
    shown_workflows = [
        ("workflow", wf),
        *(("opens" if i == 0 else "", engine.workflow(w)) for i, w in enumerate(OPENED)),
        ("and", engine.workflow(EXPERT_RECORD)),
    ]
    for label, shown in shown_workflows:
        echo(
            f"  {label.ljust(8)}  {shown.id} v{shown.version}, {shown.definition.title} "
            + out.dim(
                f"({len(shown.definition.states)} states, "
                f"{len(shown.definition.transitions)} transitions)"
            )
        )
    first, last = clock.now(), STEPS[-1].at
    echo(f"  clock     simulated, {first.day} {first:%B} to {last.day} {last:%B %Y} (UTC)")
    echo(
        "  registers "
        + ", ".join(f"{n} {register}" for register, n in seed_demo_registers(engine).items())
        + out.dim(" (entries cases refer to by id: docs/registers.md)")
    )

    actor, role = COORDINATOR
    expert = engine.start(
        EXPERT_RECORD,
        actor=actor,
        role=role,
        data=EXPERT_DATA,
        reason="Forensic doctor from the pool of the 2025 public call",
    )
    clock.advance(timedelta(minutes=10))
    actor, role = INTAKE
    instance = engine.start(
        WORKFLOW,
        actor=actor,
        role=role,
        data=COMPLAINT,
        reason="Raised in a private interview during the visit to Central Remand Prison",
    )
    ids = {WORKFLOW: instance.id, EXPERT_RECORD: expert.id}
    refusals: list[TransitionRefused] = []
    for step in STEPS:
        clock.set(step.at)
        actor, role = step.who
        if step.on not in ids:
            for parent in list(ids.values()):
                for child in engine.children(parent):
                    ids.setdefault(child.workflow_id, child.id)
        try:
            engine.fire(
                ids[step.on], step.trigger, actor=actor, role=role,
                data=_resolve(step.data, ids), reason=step.reason,
            )  # fmt: skip
        except TransitionRefused as refused:
            refusals.append(refused)

    records = engine.history(instance.id)
    everything = sorted(
        (r for i in _family(engine, [expert.id, instance.id]) for r in engine.history(i)),
        key=lambda r: r.id or 0,
    )
    echo()
    echo(out.bold("Timeline") + out.dim(", read back from the audit trail of every record"))
    echo("\n".join(out.timeline(everything, indent=2, workflows=True)))

    echo()
    echo(out.bold("The refusals"))
    kinds = ", ".join(sorted({r.kind for r in refusals}))
    refused_at = next(r.at for r in records if r.outcome == "refused")
    out.paragraph(
        f"On {refused_at.day} {refused_at:%B} the head tried to refer the case to the police "
        "ombudsperson with the evidence, before the person had consented to that use and "
        f"before anyone had decided that sharing it does no harm. The engine refused ({kinds}), "
        "said why, and changed nothing but the audit trail, which keeps the refusal (from the "
        "command line, a refusal is exit code 3). Once the head's do-no-harm decision was on "
        "record - its ground, the one independent body, the use, the fields and an expiry - "
        "the same referral to that body went through, and "
        "opened a referral record, linked both ways, that the caseworker followed to its "
        "outcome."
    )
    visit = engine.get(ids[VISIT])
    refused_visit = next(r.at for r in engine.history(visit.id) if r.outcome == "refused")
    recommendations = [c for c in engine.children(visit.id) if c.workflow_id == "recommendation"]
    echo()
    out.paragraph(
        f"The complaint also opened a reactive visit. On {refused_visit.day} "
        f"{refused_visit:%B} the coordinator tried to start it with Dr Osei on the team, "
        "before the authorities had accredited her. The engine refused: an external expert "
        "joins a visit only once accredited (an expert record in state 'available'), bound by "
        "confidentiality, trained and free of conflicts of interest for the place, and never "
        "without an NPM member or staff member. Accredited the same day, she joined the visit "
        "the next morning. After the visit the head opened a reprisal follow-up for the "
        f"{visit.data['people_interviewed']} people interviewed; the authorities proposed a "
        "correction of fact to the draft, which the NPM accepted (a finding is never theirs to "
        "correct); adopting the final report opened "
        f"{len(recommendations)} recommendation records, each to be followed until the "
        "authority's written reply."
    )

    _personal_data(engine, instance.id, records[0].changed)

    echo()
    echo(out.bold("Look around") + out.dim(" (the database stays where it is)"))
    for command in (
        f"show {instance.id}",
        f"history {ids[VISIT]}",
        "list --workflow recommendation",
        f"triggers {ids[VISIT]} --role head",
        "report complaints --by institution,theme",
        "list --workflow place",
        "audit verify",
    ):
        echo(f"  opcatflow --db {path} {command}")

    echo()
    echo(out.bold("Audit chain"))
    report = engine.verify_audit()
    if not report.ok:
        raise fail(f"audit chain broken at {report.first_break}", AUDIT_BROKEN)
    echo(
        f"  {out.green('✓')} {out.plural(report.records, 'record')} over "
        f"{out.plural(report.instances, 'instance')}, every hash and link recomputed: "
        f"{out.green('sound')}, unanchored (`audit checkpoint` signs one to verify against)"
    )


def _family(engine: Engine, roots: list[str]) -> list[str]:
    """The ids of ``roots`` and of every instance they opened, directly or not."""
    found: list[str] = []
    pending = list(roots)
    while pending:
        current = pending.pop(0)
        found.append(current)
        pending.extend(c.id for c in engine.children(current))
    return found


def _resolve(data: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    """Step data with ``@workflow`` placeholders replaced by that instance's id."""

    def one(value: Any) -> Any:
        if isinstance(value, list):
            return [one(v) for v in value]
        if isinstance(value, dict):  # a records entry
            return {k: one(v) for k, v in value.items()}
        if isinstance(value, str) and value.startswith("@"):
            return ids[value[1:]]
        return value

    return {name: one(value) for name, value in data.items()}


def _personal_data(engine: Engine, instance_id: str, first_changes: dict[str, Any]) -> None:
    wf = engine.workflow(WORKFLOW)
    stored = engine.get(instance_id).data
    personal = sorted(wf.schema.personal & stored.keys() & first_changes.keys())
    width = max(len(n) for n in personal)
    out.echo()
    out.echo(
        out.bold("Personal data") + out.dim(f" (fields marked personal: {', '.join(personal)})")
    )
    out.echo("  the instance keeps what the case needs:")
    for name in personal:
        out.echo(f"    {name.ljust(width)}  {out.value_text(stored[name], 60)}")
    out.echo("  the audit trail keeps only keyed hashes:")
    for name in personal:
        out.echo(f"    {name.ljust(width)}  {_hashed(first_changes[name])}")
    buffer = io.StringIO()
    count = engine.export_audit(buffer)
    exported = buffer.getvalue()
    parts = wf.schema.personal_parts
    values = [v for name in personal for v in _texts(stored[name], parts.get(name))]
    leaked = [v for v in values if v in exported or json.dumps(v) in exported]
    if leaked:
        raise fail(f"personal values appear in the audit export: {leaked}", UNEXPECTED)
    out.echo(
        f"  {out.green('✓')} none of these values appears in the exported audit trail "
        f"({count} records, JSON Lines)"
    )


def _hashed(change: Any) -> str:
    """A field's first change as the audit trail keeps it: the new value, or for records
    each entry's personal sub-fields."""
    if isinstance(change, dict):  # records: {key: {sub-field: [old, new]}}
        return ", ".join(
            f"[{key}].{sub}={pair[1]}"
            for key, subs in change.items()
            for sub, pair in subs.items()
            if isinstance(pair[1], str) and pair[1].startswith("hmac-")
        )
    return str(change[1])


def _texts(value: Any, parts: frozenset[str] | None = None) -> list[str]:
    if parts is not None and isinstance(value, list):  # records: the personal sub-fields
        return [str(e[p]) for e in value for p in parts if isinstance(e, dict) and p in e]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
