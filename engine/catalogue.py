"""The catalogue of definitions an engine runs: the files it was given, and the versions
deployed to the database, with the versions retired there.

The database is the catalogue every process on it shares: ``workflows deploy`` stores a
version with the origin ``deploy``, and every engine loads those beside its own files (on
open, and on :meth:`~opcatflow.engine.runtime.Engine.reload`). A version retired there
starts nothing, whichever process is asked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.contract_checks import catalog_problems
from opcatflow.engine.errors import DefinitionError, Problem
from opcatflow.engine.loader import Catalog, check_links, compile_text, same_content
from opcatflow.engine.registry import Registry
from opcatflow.engine.rows import DefinitionOrigin, DefinitionStatus, StoredDefinition

CatalogCheck = Callable[[Catalog], list[Problem]]
"""A check an edge adds to every load of the catalogue (notification templates)."""


def stored_label(workflow: str, version: int) -> str:
    """How problems name a definition the database holds."""
    return f"<database {workflow} v{version}>"


def digest(rows: Iterable[StoredDefinition]) -> str:
    """A fingerprint of what the catalogue takes from the database (the deployed versions'
    content, the retired versions): the periodic check reloads only when it changes, not
    when a process stores the copy of a file it started an instance on."""
    h = hashlib.sha256()
    for row in sorted(rows, key=lambda r: (r.workflow_id, r.version)):
        deployed = row.origin is DefinitionOrigin.DEPLOY
        if deployed or row.status is DefinitionStatus.RETIRED:
            h.update(f"{row.workflow_id}\0{row.version}\0{row.status}\0".encode())
            h.update(f"{row.fingerprint if deployed else ''}\n".encode())
    return h.hexdigest()


def retired(rows: Iterable[StoredDefinition]) -> set[tuple[str, int]]:
    return {(r.workflow_id, r.version) for r in rows if r.status is DefinitionStatus.RETIRED}


def assemble(
    base: Catalog,
    rows: Sequence[StoredDefinition],
    registry: Registry,
    checks: Sequence[CatalogCheck] = (),
) -> Catalog:
    """``base`` (the files) with the versions deployed to the database added and the
    retired ones marked.

    Raises:
        DefinitionError: a deployed version does not compile here, has the id and version
            of a file with other content, or the whole fails a check (links between
            workflows, ``checks``).
    """
    problems: list[Problem] = []
    merged = Catalog(base)
    added = False
    for row in rows:
        if row.origin is not DefinitionOrigin.DEPLOY:
            continue
        known = base.find(row.workflow_id, row.version)
        if known is not None and known.fingerprint == row.fingerprint:
            continue  # the same content: the file's copy serves
        where = stored_label(row.workflow_id, row.version)
        try:
            wf = compile_text(row.source, where, registry)
        except DefinitionError as err:
            problems.extend(err.problems)
            continue
        if known is not None and known.fingerprint != wf.fingerprint:
            message = (
                f"workflow {wf.id!r} version {wf.version} is deployed with other content than "
                f"{_where(known)}: give the changed definition a new version"
            )
            problems.append(_at_version(known, message))
            continue
        merged.add(wf)
        added = True
    if added and not problems:
        problems.extend(check_links(merged))
        problems.extend(catalog_problems(merged.latest(), list(merged), registry))
    for check in checks:
        problems.extend(check(merged))
    if problems:
        raise DefinitionError(problems)
    return merged.with_retired(retired(rows))


def stored_conflicts(
    workflows: Iterable[CompiledWorkflow],
    rows: Iterable[StoredDefinition],
    registry: Registry,
) -> list[Problem]:
    """Definitions whose id and version the database already holds with other content,
    each located at its ``version:`` and saying which version to bump it to."""
    stored: Mapping[tuple[str, int], StoredDefinition] = {
        (r.workflow_id, r.version): r for r in rows
    }
    problems = []
    for wf in workflows:
        row = stored.get((wf.id, wf.version))
        if row is None or same_content(wf, row.fingerprint, row.source, registry):
            continue
        taken = [v for (w, v) in stored if w == wf.id]
        message = (
            f"workflow {wf.id!r} version {wf.version} is already stored in the database with "
            f"different content: bump it (version: {max(taken) + 1} is free); instances "
            f"running on version {wf.version} keep the stored copy"
        )
        problems.append(_at_version(wf, message))
    return problems


@dataclass(frozen=True)
class ReloadReport:
    """What one reload did.

    Attributes:
        reloaded: the new set is in use (``False``: the old one is kept; ``problems`` say
            why, each ``path:line:col: message``).
        added: versions newly loaded (``complaint v4``).
        retired: versions retired since the last load; ``activated``: made active again.
    """

    reloaded: bool
    added: tuple[str, ...] = ()
    retired: tuple[str, ...] = ()
    activated: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, object]:
        return {
            "reloaded": self.reloaded,
            "added": list(self.added),
            "retired": list(self.retired),
            "activated": list(self.activated),
            "problems": [str(p) for p in self.problems],
        }


def changes(old: Catalog, new: Catalog) -> ReloadReport:
    """The report of replacing ``old`` with ``new``."""
    added = [f"{wf.id} v{wf.version}" for wf in new if old.find(wf.id, wf.version) is None]
    retired_now = sorted(new.retired - old.retired)
    activated = sorted(old.retired - new.retired)
    return ReloadReport(
        True,
        tuple(sorted(added)),
        tuple(f"{w} v{v}" for w, v in retired_now),
        tuple(f"{w} v{v}" for w, v in activated),
    )


def _where(wf: CompiledWorkflow) -> str:
    return wf.doc.path if wf.doc is not None else f"<{wf.id} v{wf.version}>"


def _at_version(wf: CompiledWorkflow, message: str) -> Problem:
    if wf.doc is None:
        return Problem(_where(wf), 1, 1, message)
    return wf.doc.problem(("version",), message)
