"""Subject access: everything the NPM holds about one person, as JSON.

The person is found by the blind index of the workflows' ``subject:`` fields (no value is
opened to search); each case is exported as read (its values opened), with its audit trail
(reasons opened, personal values in its changes as keyed hashes, as the trail keeps them) and
the ids of the cases it opened. An erased case is no longer indexed, so it is not found.
The export is itself a read: one entry per case in the read log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opcatflow.engine.erasure import subject_instances
from opcatflow.engine.readlog import HISTORY_FIELDS, record_reads, visible_personal
from opcatflow.engine.runtime import Engine


def export_subject(
    engine: Engine,
    subject: str,
    *,
    actor: str,
    role: str,
    channel: str = "api",
    reason: str | None = None,
) -> dict[str, Any]:
    """Every case concerning ``subject``, decrypted (see the module's notes). A read of
    each case in the read log (what ``subject-export``), and logged as ``subject_exported``
    with who asked and how many cases, never the subject."""
    now: datetime = engine.clock.now()
    cases = []
    reads: list[tuple[str | None, tuple[str, ...]]] = []
    for instance_id in subject_instances(engine, subject):
        instance = engine.get(instance_id)
        wf = engine.workflow(instance.workflow_id, instance.workflow_version)
        cases.append(
            {
                "workflow_title": wf.definition.title,
                "subject_field": wf.definition.subject,
                "instance": instance.as_json(),
                "history": [r.as_json() for r in engine.history(instance_id)],
                "children": [c.id for c in engine.children(instance_id)],
            }
        )
        reads.append((instance_id, (*visible_personal(wf, frozenset()), *HISTORY_FIELDS)))
    record_reads(
        engine, actor=actor, role=role, channel=channel, what="subject-export", reads=reads,
        reason=reason,
    )  # fmt: skip
    engine.log.info("subject_exported", actor=actor, role=role, instances=len(cases))
    return {"exported_at": now.isoformat(), "exported_by": actor, "role": role, "cases": cases}
