"""``validate`` checks of a transition's ``merge:`` (docs/definitions.md, "Merging
duplicates"): what it names exists and has the right type, it closes the duplicate, and the
survivor's trigger takes what the merge hands over, under the roles that merge."""

from __future__ import annotations

from opcatflow.engine.contract import transition_writes
from opcatflow.engine.definition import FieldType, WorkflowDefinition
from opcatflow.engine.errors import Problem
from opcatflow.engine.suggest import did_you_mean
from opcatflow.engine.yamlsource import Located


def merge_problems(doc: Located, wf: WorkflowDefinition) -> list[Problem]:
    problems: list[Problem] = []
    for i, t in enumerate(wf.transitions):
        merge = t.merge
        if merge is None:
            continue
        at = ("transitions", i, "merge")

        def add(loc: tuple[str | int, ...], message: str, at: tuple[str | int, ...] = at) -> None:
            problems.append(doc.problem((*at, *loc), message))

        into = wf.fields.get(merge.into)
        if into is None:
            add(("into",), f"unknown field {merge.into!r}{did_you_mean(merge.into, wf.fields)}")
        elif into.type is not FieldType.STRING or into.personal:
            add(("into",), f"field {merge.into!r} must be a string field that is not personal "
                "(it holds the id of the case merged into)")  # fmt: skip
        elif merge.into not in t.requires:
            add(("into",), f"{t.trigger} must require {merge.into!r}: a merge names its survivor")
        if t.dest is None or t.dest not in wf.states or not wf.states[t.dest].final:
            add((), f"{t.trigger} merges a duplicate: its dest must be a final state (merged)")
        targets = [s for s in wf.transitions if s.trigger == merge.trigger]
        if not targets:
            triggers = {s.trigger for s in wf.transitions}
            add(("trigger",), f"unknown trigger {merge.trigger!r}"
                f"{did_you_mean(merge.trigger, triggers)}")  # fmt: skip
            continue
        if any(s.merge is not None for s in targets) or merge.trigger == t.trigger:
            add(("trigger",), f"{merge.trigger} merges too: a survivor's trigger takes a "
                "duplicate in, it does not merge it on")  # fmt: skip
        for role in t.roles:
            if not any(role in s.roles for s in targets):
                add(("trigger",), f"role {role!r} may merge with {t.trigger} but may not fire "
                    f"{merge.trigger} on the survivor")  # fmt: skip
        written = [transition_writes(s) for s in targets]
        if merge.link is not None:
            link = wf.fields.get(merge.link)
            if link is None:
                add(("link",), f"unknown field {merge.link!r}{did_you_mean(merge.link, wf.fields)}")
            elif link.type is not FieldType.LIST or link.items is not FieldType.STRING:
                add(("link",), f"field {merge.link!r} must be a list of string (the ids merged in)")
            elif any(merge.link not in w for w in written):
                add(("link",), f"{merge.trigger} must write {merge.link!r}")
        for j, name in enumerate(merge.copies):
            spec = wf.fields.get(name)
            if spec is None:
                add(("copies", j), f"unknown field {name!r}{did_you_mean(name, wf.fields)}")
            elif spec.type is not FieldType.RECORDS:
                add(("copies", j), f"field {name!r} is {spec.type.value}: only records are copied")
            elif any(name not in w for w in written):
                add(("copies", j), f"{merge.trigger} must write {name!r}")
    return problems
