"""Diagrams of a compiled workflow: Mermaid ``stateDiagram-v2``, Graphviz DOT, a Markdown page.

Pure functions of the definition: the same workflow always gives the same text, so generated
documentation can be compared with what is committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.definition import TransitionSpec

__all__ = ["ANY", "doc_pages", "dot", "edge_label", "edges", "markdown", "mermaid"]


ANY = "_any"
"""Diagram node standing for "any non-final state" (the ``*`` source); no state name starts
with ``_``, so it cannot collide with one."""
ANY_LABEL = "any non-final state"


def edges(wf: CompiledWorkflow) -> Iterator[tuple[str, str, TransitionSpec]]:
    """Every (source, dest, transition) edge, in declaration order.

    A transition from ``*`` is one edge from :data:`ANY` rather than one from every non-final
    state. An internal transition (no ``dest``: it changes data only) is a loop on its source.
    """
    for spec in wf.definition.transitions:
        sources = (ANY,) if spec.source == "*" else spec.sources
        for src in sources:
            yield src, spec.dest or src, spec


def _has_any(wf: CompiledWorkflow) -> bool:
    return any(spec.source == "*" for spec in wf.definition.transitions)


def edge_label(spec: TransitionSpec) -> str:
    """``trigger (role, role)``, then ``[guard, ...]`` when the transition is guarded, then
    ``/ opens workflow`` when it opens child instances (UML's ``trigger [guard] / effect``).

    An expression guard shows as ``condition``; its text is in the Markdown page.
    """
    label = f"{spec.trigger} ({', '.join(spec.roles)})"
    shares = [f"shares for {spec.shares.use}"] if spec.shares else []
    guards = [*spec.guards, *(["condition"] if spec.when else []), *shares]
    if guards:
        label += f" [{', '.join(guards)}]"
    if spec.opens:
        label += f" / opens {', '.join(_opened(spec))}"
    return label


def _opened(spec: TransitionSpec) -> list[str]:
    return [f"{o.workflow} per {o.for_each}" if o.for_each else o.workflow for o in spec.opens]


def _title(wf: CompiledWorkflow) -> str:
    return f"{wf.definition.title} ({wf.id} v{wf.version})"


def _mermaid_text(text: str) -> str:
    # Mermaid's state grammar ends a description at ':' or ';' (and at a newline), so a
    # colon is written as the look-alike U+A789 and a semicolon as a comma.
    return " ".join(text.split()).replace(":", "\ua789").replace(";", ",")


def mermaid(wf: CompiledWorkflow) -> str:
    """A Mermaid ``stateDiagram-v2`` of the workflow.

    The initial state has an arrow from ``[*]``, final states an arrow to ``[*]``; each
    transition is labelled by :func:`edge_label`.
    """
    lines = [
        "---",
        f"title: {_mermaid_text(_title(wf))}",
        "---",
        "stateDiagram-v2",
        f"    [*] --> {wf.initial}",
    ]
    for name, state in wf.definition.states.items():
        lines.append(f"    {name} : {_mermaid_text(state.label or name)}")
    if _has_any(wf):
        lines.append(f'    state "{ANY_LABEL}" as {ANY}')
    for src, dest, spec in edges(wf):
        lines.append(f"    {src} --> {dest} : {_mermaid_text(edge_label(spec))}")
    lines.extend(f"    {name} --> [*]" for name in wf.definition.states if name in wf.finals)
    return "\n".join(lines) + "\n"


def _dot_string(text: str) -> str:
    escaped = " ".join(text.split()).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def dot(wf: CompiledWorkflow) -> str:
    """A Graphviz DOT digraph of the workflow.

    Final states have a double border; guarded transitions are dashed.
    """
    lines = [
        f"digraph {_dot_string(wf.id)} {{",
        f"    label={_dot_string(_title(wf))};",
        "    labelloc=t;",
        "    rankdir=LR;",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
        '    "__start__" [shape=point, width=0.15, label=""];',
    ]
    for name, state in wf.definition.states.items():
        attrs = [f"label={_dot_string(state.label or name)}"]
        if name in wf.finals:
            attrs.append("peripheries=2")
        lines.append(f"    {_dot_string(name)} [{', '.join(attrs)}];")
    if _has_any(wf):
        lines.append(f"    {_dot_string(ANY)} [label={_dot_string(ANY_LABEL)}, style=dashed];")
    lines.append(f'    "__start__" -> {_dot_string(wf.initial)};')
    for src, dest, spec in edges(wf):
        attrs = [f"label={_dot_string(edge_label(spec))}"]
        if spec.guards or spec.when or spec.shares:
            attrs.append("style=dashed")
        lines.append(f"    {_dot_string(src)} -> {_dot_string(dest)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _codes(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def markdown(wf: CompiledWorkflow) -> str:
    """A Markdown page documenting the workflow: the Mermaid diagram and its tables."""
    d = wf.definition
    out = [
        "<!-- Generated by `opcatflow diagram --write-docs docs/diagrams`; do not edit. -->",
        "",
        f"# {d.title} (`{wf.id}` v{wf.version})",
        "",
    ]
    if d.description:
        out += [" ".join(d.description.split()), ""]
    out += ["```mermaid", mermaid(wf).rstrip("\n"), "```", ""]
    out += ["## Roles", "", "| Role | Who |", "| --- | --- |"]
    out += [f"| `{name}` | {_cell(what)} |" for name, what in d.roles.items()]
    out += [
        "",
        "## States",
        "",
        "| State | Label | Kind | Deadlines |",
        "| --- | --- | --- | --- |",
    ]
    for name, state in d.states.items():
        kind = "initial" if state.initial else "final" if state.final else ""
        deadlines = "; ".join(
            f"`{x.id}`: {x.due or f'not before {x.not_before}'}" for x in state.deadlines
        )
        out.append(f"| `{name}` | {_cell(state.label or '')} | {kind} | {_cell(deadlines)} |")
    opens = any(spec.opens for spec in d.transitions)
    out += [
        "",
        "## Transitions",
        "",
        "| Trigger | Label | From | To | Roles | Requires | Guards |"
        + (" Opens |" if opens else ""),
        "| --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if opens else ""),
    ]
    for spec in d.transitions:
        source = "any non-final state" if spec.source == "*" else _codes(spec.sources)
        dest = f"`{spec.dest}`" if spec.dest else "(stays; data only)"
        guards = [f"`{g}`" for g in spec.guards]
        if spec.when:
            guards.append(f"`{spec.when}`")
        if spec.shares:
            guards.append(f"shares {', '.join(spec.shares.fields)} for `{spec.shares.use}`")
        row = (
            f"| `{spec.trigger}` | {_cell(spec.label or '')} | {source} | {dest} "
            f"| {_codes(spec.roles)} | {_cell(_codes(spec.requires))} "
            f"| {_cell(', '.join(guards))} |"
        )
        if opens:
            row += f" {_cell(', '.join(_opened(spec)))} |"
        out.append(row)
    return "\n".join(out) + "\n"


def doc_pages(workflows: Iterable[CompiledWorkflow]) -> dict[str, str]:
    """File name -> content of the Markdown page of each workflow (``<id>.md``)."""
    return {f"{wf.id}.md": markdown(wf) for wf in workflows}
