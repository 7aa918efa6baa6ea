"""Human output (compact tables and timelines) and stable JSON output.

Styling goes through ``typer.style``; ``typer.echo`` drops it when the output is not a
terminal, so piped output and tests see plain text.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import typer

from opcatflow.engine import AuditRecord, CompiledWorkflow, Instance, TriggerOption
from opcatflow.engine.summary import summary_of

ARROW = "→"


def echo(text: str = "") -> None:
    typer.echo(text)


def notices(lines: Iterable[str], *, as_json: bool = False) -> None:
    """What the engine says the caller should know (a deadline already overdue...), on
    standard error, so standard output stays the command's result: one ``notice:`` line
    each, or one JSON event each when the logs are JSON (``--log-format json``)."""
    for line in lines:
        if as_json:
            typer.echo(
                json.dumps({"event": "notice", "level": "warning", "notice": line}), err=True
            )
        else:
            typer.echo(f"notice: {line}", err=True)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def when(at: datetime) -> str:
    """A UTC time to the minute: ``2026-03-02 09:00``."""
    return at.strftime("%Y-%m-%d %H:%M")


def bold(text: str) -> str:
    return typer.style(text, bold=True)


def dim(text: str) -> str:
    return typer.style(text, dim=True)


def red(text: str) -> str:
    return typer.style(text, fg="red", bold=True)


def yellow(text: str) -> str:
    return typer.style(text, fg="yellow", bold=True)


def green(text: str) -> str:
    return typer.style(text, fg="green", bold=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Left-aligned columns separated by two spaces; the header line is dimmed."""
    body = [list(r) for r in rows]
    widths = [len(h) for h in headers]
    for row in body:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [dim(line(headers)), *(line(r) for r in body)]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def shorten(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def value_text(value: Any, width: int = 60, *, quote: bool = False) -> str:
    """A field value as a reader wants it: text as is (quoted if ``quote`` and it has spaces
    or commas), a keyed hash abbreviated, everything else as JSON."""
    if value is None:
        return "∅"
    if isinstance(value, dict) and value.keys() == {"id", "title"}:
        # a reference to a register entry, as views show it: its title, then its id
        return shorten(f"{value['title']} ({value['id']})", width)
    if isinstance(value, str):
        if value.startswith("hmac-sha256:"):
            return f"<{value[:20]}…>"
        text = shorten(value, width)
        return f'"{text}"' if quote and any(c in text for c in " ,=") else text
    return shorten(json.dumps(value, ensure_ascii=False), width)


def changes_text(changed: Mapping[str, Any]) -> str:
    """``field=new, ...`` for the fields an audit record says changed; for records,
    ``field[key].sub=new`` per entry and sub-field (``field[key]=removed`` for a removal)."""
    parts = []
    for name, change in sorted(changed.items()):
        if not isinstance(change, dict):  # [old, new]
            parts.append(f"{name}={value_text(change[1], 40, quote=True)}")
            continue
        for key, subs in change.items():
            if all(pair[1] is None for pair in subs.values()):
                parts.append(f"{name}[{key}]=removed")
                continue
            parts.extend(
                f"{name}[{key}].{sub}={value_text(pair[1], 40, quote=True)}"
                for sub, pair in subs.items()
                if pair[1] is not None
            )
    return ", ".join(parts)


def paragraph(text: str, indent: int = 2) -> None:
    """Echo prose wrapped to the terminal (at most 90 columns), indented."""
    width = min(90, max(60, shutil.get_terminal_size((100, 24)).columns - 1))
    pad = " " * indent
    typer.echo(textwrap.fill(text, width, initial_indent=pad, subsequent_indent=pad))


def wrapped(label: str, text: str, indent: int, style: Callable[[str], str] = dim) -> list[str]:
    """``label text`` wrapped to the terminal, continuation lines aligned after the label."""
    width = max(60, shutil.get_terminal_size((100, 24)).columns - 1)
    hang = " " * (indent + len(label) + 1)
    lines = textwrap.wrap(
        text, width, initial_indent=hang, subsequent_indent=hang, break_on_hyphens=False
    )
    if not lines:
        return []
    lines[0] = " " * indent + style(label) + " " + lines[0][len(hang) :]
    return lines


# -- instances -----------------------------------------------------------------------------


def state_text(wf: CompiledWorkflow | None, state: str) -> str:
    label = wf.definition.states[state].label if wf and state in wf.definition.states else None
    return f"{bold(state)} ({label})" if label and label != state else bold(state)


def instance_lines(instance: Instance, wf: CompiledWorkflow | None) -> list[str]:
    """A compact card: header, state, timestamps, then the data fields."""
    title = f"{wf.definition.title} v{instance.workflow_version}" if wf else ""
    final = " — finished" if wf and instance.state in wf.finals else ""
    lines = [
        f"{bold(instance.workflow_id)} {instance.id}  {dim(title)}",
        f"  state    {state_text(wf, instance.state)}{final}  "
        f"{dim('since ' + when(instance.state_entered_at))}",
        f"  version  {instance.version}",
        f"  created  {when(instance.created_at)}   updated {when(instance.updated_at)}",
    ]
    summary = summary_of(wf, instance.data) if wf else None
    if summary:
        lines.insert(1, f"  summary  {summary}")
    if instance.parent_id:
        lines.append(f"  parent   {instance.parent_id}")
    if instance.data:
        personal = wf.schema.personal if wf else frozenset()
        width = max(len(name) for name in instance.data)
        lines.append("  data")
        for name, value in instance.data.items():
            mark = dim("  (personal)") if name in personal else ""
            lines.append(f"    {name.ljust(width)}  {value_text(value, 70)}{mark}")
    return lines


def applied_line(before: str, after: Instance, trigger: str) -> str:
    if before == after.state:
        move = f"{bold(after.state)} {dim('(data only)')}"
    else:
        move = f"{before} {ARROW} {bold(after.state)}"
    return f"{trigger}: {move}   {dim(f'{after.id} version {after.version}')}"


def instances_table(
    instances: Sequence[Instance], summaries: Sequence[str | None] | None = None
) -> list[str]:
    """Instances as a table, with full ids (any 8+ characters of which the commands take);
    a SUMMARY column when ``summaries`` has any (a workflow's ``summary_field``)."""
    rows = [
        (
            i.id,
            f"{i.workflow_id} v{i.workflow_version}",
            i.state,
            str(i.version),
            when(i.updated_at),
        )
        for i in instances
    ]
    headers: tuple[str, ...] = ("ID", "WORKFLOW", "STATE", "VERSION", "UPDATED (UTC)")
    if summaries and any(summaries):
        rows = [(*row, s or "") for row, s in zip(rows, summaries, strict=True)]
        headers = (*headers, "SUMMARY")
    return table(headers, rows)


def triggers_lines(options: Sequence[TriggerOption], role: str) -> list[str]:
    if not options:
        return [f"nothing {role!r} can fire in this state"]
    rows = []
    for o in options:
        status = green("ready") if o.ready else red("blocked")
        rows.append(
            (o.trigger, f"{ARROW} {o.dest}" if o.dest else "(data only)", status, o.label or "")
        )
    lines = table(("TRIGGER", "TO", "", "LABEL"), rows)
    for o in options:
        if not o.ready and o.blocked_by:
            lines.append(f"  {o.trigger} is blocked: {o.blocked_by}")
    return lines


# -- the audit trail -----------------------------------------------------------------------


def record_lines(
    record: AuditRecord,
    who_width: int = 0,
    trigger_width: int = 0,
    indent: int = 0,
    workflow_width: int | None = None,
) -> list[str]:
    """One audit record as a timeline entry: a headline, then what changed or why refused.

    ``workflow_width`` adds a column naming the record's workflow (for mixed timelines).
    """
    who = f"{record.actor} ({record.role})".ljust(who_width)
    trigger = record.trigger.ljust(trigger_width)
    changed = record.changed
    if record.outcome == "refused":
        move = red("REFUSED")
    elif record.outcome == "opened":
        workflow, child = changed.get("opened", ["?", "?"])
        move = f"opened {bold(workflow)} {child}"
        changed = {}
    elif record.from_state is None:
        move = f"{ARROW} {bold(record.to_state or '')}"
    elif record.from_state == record.to_state:
        move = f"{record.to_state} {dim('(data only)')}"
    else:
        move = f"{record.from_state} {ARROW} {bold(record.to_state or '')}"
    column = "" if workflow_width is None else record.workflow_id.ljust(workflow_width) + "  "
    lines = [" " * indent + f"{when(record.at)}  {column}{who}  {trigger}  {move}".rstrip()]
    hang = indent + 18 + len(column)
    if record.outcome == "refused":
        lines.extend(wrapped("why: ", record.reason or "", hang, red))
    elif record.reason:
        lines.extend(wrapped("note:", record.reason, hang))
    lines.extend(wrapped("set: ", changes_text(changed), hang))
    return lines


def timeline(
    records: Sequence[AuditRecord], indent: int = 0, *, workflows: bool = False
) -> list[str]:
    """Audit records as aligned timeline entries (with a workflow column if ``workflows``)."""
    who_width = max((len(f"{r.actor} ({r.role})") for r in records), default=0)
    trigger_width = max((len(r.trigger) for r in records), default=0)
    workflow_width = max((len(r.workflow_id) for r in records), default=0) if workflows else None
    lines: list[str] = []
    for r in records:
        lines.extend(record_lines(r, who_width, trigger_width, indent, workflow_width))
    return lines
