"""From YAML files to compiled workflows, with every problem located."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from weakref import WeakKeyDictionary

from pydantic import ValidationError

from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.contract_checks import catalog_problems
from opcatflow.engine.definition import WorkflowDefinition
from opcatflow.engine.errors import DefinitionError, Problem, WorkflowNotFound
from opcatflow.engine.register_checks import ref_problems
from opcatflow.engine.registry import Registry
from opcatflow.engine.suggest import did_you_mean
from opcatflow.engine.validation import (
    check_definition,
    check_stored_definition,
    pydantic_problems,
)
from opcatflow.engine.yamlsource import load_yaml

# Compiling is pure: the same text, place, mode and registry give the same workflow, and a
# CompiledWorkflow is immutable and shared by every engine that runs its version. A process
# that opens engines again and again (an embedding application, a test suite, the CLI run in
# process) so compiles each definition once. The registry's size is in the key because
# guards and actions may be registered after a first compile (names are never replaced).
_COMPILED: WeakKeyDictionary[Registry, dict[tuple[str, str, bool, int], CompiledWorkflow]] = (
    WeakKeyDictionary()
)
_COMPILED_PER_REGISTRY = 512


def compile_text(
    text: str, path: str, registry: Registry, *, compat: bool = False
) -> CompiledWorkflow:
    """Parse, validate and compile one definition.

    Args:
        compat: compatibility mode, for a definition the database kept (the version running
            instances are pinned to): only problems it cannot run with are errors; the
            others (rules added to the format after it was stored) are kept in
            ``compat_problems`` of the result, which has ``compat`` set, and the write rules
            it was written under hold (see :class:`CompiledWorkflow`).

    Raises:
        DefinitionError: listing every problem as ``path:line:column: message``.
    """
    compiled = _COMPILED.setdefault(registry, {})
    key = (text, path, compat, registry.size)
    wf = compiled.get(key)
    if wf is None:
        wf = _compile_text(text, path, registry, compat=compat)
        if len(compiled) >= _COMPILED_PER_REGISTRY:
            compiled.clear()
        compiled[key] = wf
    return wf


def _compile_text(text: str, path: str, registry: Registry, *, compat: bool) -> CompiledWorkflow:
    doc = load_yaml(text, path)
    if not isinstance(doc.value, dict):
        raise DefinitionError([Problem(path, 1, 1, "a definition must be a mapping")])
    try:
        definition = WorkflowDefinition.model_validate(doc.value)
    except ValidationError as err:
        raise DefinitionError(pydantic_problems(doc, err)) from None
    if not compat:
        problems = check_definition(doc, definition, registry)
        if problems:
            raise DefinitionError(problems)
        return CompiledWorkflow(definition, registry, text, doc)
    errors, tolerated = check_stored_definition(doc, definition, registry)
    if errors:
        raise DefinitionError(errors)
    return CompiledWorkflow(
        definition, registry, text, doc, compat=True, compat_problems=tuple(tolerated)
    )


def compile_stored(
    source: str, workflow: str, version: int, registry: Registry
) -> CompiledWorkflow:
    """Compile the copy of a definition the database kept, in compatibility mode.

    Raises:
        DefinitionError: it cannot run with the current registry or format.
    """
    return compile_text(source, f"<stored {workflow} v{version}>", registry, compat=True)


def same_content(
    wf: CompiledWorkflow, stored_fingerprint: str, stored_source: str, registry: Registry
) -> bool:
    """Whether a stored definition is ``wf``: equal fingerprints, or (for one stored with an
    earlier fingerprint formula) the stored source compiles to ``wf``'s fingerprint."""
    if stored_fingerprint == wf.fingerprint:
        return True
    try:
        stored = compile_stored(stored_source, wf.id, wf.version, registry)
    except DefinitionError:
        return False
    return stored.fingerprint == wf.fingerprint


def definition_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The .yaml/.yml files named, or found directly inside named folders, sorted."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        else:
            yield path


class Catalog:
    """Compiled workflows by id and version, and which versions are retired.

    The latest version of a workflow (``get(workflow)``, :meth:`latest`) is its highest
    version that is not retired (its highest version when every one is).
    """

    def __init__(
        self, workflows: Iterable[CompiledWorkflow] = (), retired: Iterable[tuple[str, int]] = ()
    ) -> None:
        self._by_key: dict[tuple[str, int], CompiledWorkflow] = {}
        self._latest: dict[str, CompiledWorkflow] = {}
        self._retired = frozenset(retired)
        self._merge_triggers: set[str] = set()
        for wf in workflows:
            self.add(wf)

    def add(self, wf: CompiledWorkflow) -> None:
        """Add a workflow; the same id and version with the same content is a no-op.

        Raises:
            DefinitionError: when the id and version exist with different content.
        """
        known = self._by_key.get((wf.id, wf.version))
        if known is not None:
            if known.fingerprint != wf.fingerprint:
                raise DefinitionError([_duplicate(wf)])
            return
        self._by_key[(wf.id, wf.version)] = wf
        self._merge_triggers.update(wf.merges)
        versions = self.versions(wf.id)
        active = [v for v in versions if (v.id, v.version) not in self._retired]
        self._latest[wf.id] = (active or versions)[-1]

    def merges_with(self, trigger: str) -> bool:
        """Whether some workflow here merges with ``trigger`` (asked on every fire)."""
        return trigger in self._merge_triggers

    def with_retired(self, retired: Iterable[tuple[str, int]]) -> Catalog:
        """The same workflows, with these versions (and only these) retired."""
        return Catalog(self, retired)

    def is_retired(self, workflow: str, version: int) -> bool:
        return (workflow, version) in self._retired

    @property
    def retired(self) -> frozenset[tuple[str, int]]:
        return self._retired

    def versions(self, workflow: str) -> list[CompiledWorkflow]:
        """Every version of a workflow, oldest first."""
        found = [wf for (wid, _), wf in self._by_key.items() if wid == workflow]
        return sorted(found, key=lambda wf: wf.version)

    def get(self, workflow: str, version: int | None = None) -> CompiledWorkflow:
        """The given version, or the latest one.

        Raises:
            WorkflowNotFound: with a hint at the closest known id.
        """
        found = (
            self._latest.get(workflow) if version is None else self._by_key.get((workflow, version))
        )
        if found is None:
            raise WorkflowNotFound(workflow, version, did_you_mean(workflow, self._latest))
        return found

    def find(self, workflow: str, version: int) -> CompiledWorkflow | None:
        return self._by_key.get((workflow, version))

    def latest(self) -> list[CompiledWorkflow]:
        return [self._latest[k] for k in sorted(self._latest)]

    def __iter__(self) -> Iterator[CompiledWorkflow]:
        return iter(list(self._by_key.values()))


def _duplicate(wf: CompiledWorkflow) -> Problem:
    return Problem(
        "<definitions>",
        1,
        1,
        f"workflow {wf.id!r} version {wf.version} is already defined with different content: "
        "give the changed definition a new version",
    )


def load_catalog(
    paths: Iterable[str | Path],
    registry: Registry,
    *,
    context: Catalog | None = None,
    extra: Iterable[tuple[str, str]] = (),
) -> Catalog:
    """Load every definition under ``paths``, and those of ``extra``.

    Args:
        context: other workflows that ``opens`` entries may name (when validating one file
            that opens bundled workflows, say); they are not added to the result.
        extra: more definitions as ``(source text, where it comes from)``: the versions
            deployed to the database, named ``<database ID vN>`` in problems.

    Raises:
        DefinitionError: with the problems of every file at once, including two files that
            define the same id and version differently (naming both).
    """
    problems: list[Problem] = []
    catalog = Catalog()
    origin: dict[tuple[str, int], str] = {}
    for path, text in _sources(paths, extra, problems):
        try:
            wf = compile_text(text, path, registry)
        except DefinitionError as err:
            problems.extend(err.problems)
            continue
        key = (wf.id, wf.version)
        known = catalog.find(*key)
        if known is not None and known.fingerprint != wf.fingerprint:
            message = (
                f"workflow {wf.id!r} version {wf.version} is already defined differently "
                f"in {origin[key]}: give the changed definition a new version"
            )
            problems.append(_located(wf, ("version",), message))
            continue
        origin.setdefault(key, path)
        catalog.add(wf)
    problems.extend(check_links(catalog, context))
    everyone = [*catalog, *(context or ())]
    problems.extend(catalog_problems(catalog.latest(), everyone, registry))
    problems.extend(ref_problems(catalog.latest(), everyone))
    if problems:
        raise DefinitionError(problems)
    return catalog


def _sources(
    paths: Iterable[str | Path], extra: Iterable[tuple[str, str]], problems: list[Problem]
) -> Iterator[tuple[str, str]]:
    for path in definition_files(paths):
        try:
            yield str(path), path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            problems.append(Problem(str(path), 1, 1, f"cannot read: {err}"))
    for text, where in extra:
        yield where, text


def check_links(catalog: Catalog, context: Catalog | None = None) -> list[Problem]:
    """Problems with ``opens`` entries that name other workflows: the workflow, its fields,
    the role it is started under."""
    problems = []
    for wf in catalog.latest():
        for i, t in enumerate(wf.definition.transitions):
            for j, spec in enumerate(t.opens):
                loc = ("transitions", i, "opens", j)
                try:
                    child = _resolve(spec.workflow, catalog, context)
                except WorkflowNotFound as err:
                    message = str(err).replace("no workflow", "unknown workflow", 1)
                    problems.append(_located(wf, (*loc, "workflow"), message))
                    continue
                fields = child.definition.fields
                for name in spec.data:
                    if name not in fields:
                        message = f"workflow {child.id!r} has no field {name!r}"
                        message += did_you_mean(name, fields)
                        problems.append(_located(wf, (*loc, "data", name), message))
                if spec.role is not None and spec.role not in child.start_roles:
                    message = f"role {spec.role!r} may not start {child.id!r}"
                    problems.append(_located(wf, (*loc, "role"), message))
    return problems


def _resolve(workflow: str, catalog: Catalog, context: Catalog | None) -> CompiledWorkflow:
    try:
        return catalog.get(workflow)
    except WorkflowNotFound:
        if context is None:
            raise
        return context.get(workflow)


def _located(wf: CompiledWorkflow, loc: tuple[str | int, ...], message: str) -> Problem:
    if wf.doc is None:
        return Problem(f"<{wf.id} v{wf.version}>", 1, 1, message)
    return wf.doc.problem(loc, message)
