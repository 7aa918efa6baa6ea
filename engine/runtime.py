"""``Engine``: the Python API for embedding opcatflow.

Every write is one unit of work the engine opens and closes: read (and lock) the instance,
decide in memory, write the instance and its audit record, commit. Refusals are committed as
audit records too, then raised. Callers that must write in the same transaction pass
``also``; nobody else ever holds a transaction.
"""

from __future__ import annotations

import json
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from structlog.typing import FilteringBoundLogger

from opcatflow.engine.audit import (
    GENESIS,
    LEGACY_FORMAT,
    AuditRecord,
    ChainCheck,
    VerifyReport,
)
from opcatflow.engine.bulk import NewInstance, check_rows, store_problems
from opcatflow.engine.catalogue import (
    CatalogCheck,
    ReloadReport,
    assemble,
    changes,
    digest,
    retired,
    stored_conflicts,
)
from opcatflow.engine.checkpoint import (
    Checkpoint,
    root_at,
    verify_trail,
)
from opcatflow.engine.clock import Clock, SystemClock
from opcatflow.engine.compiled import CompiledWorkflow, Cursor
from opcatflow.engine.crypto.cipher import ERASED, is_sealed_text, reason_place
from opcatflow.engine.crypto.keyring import SUBJECT_OWNER, Keyring
from opcatflow.engine.crypto.providers import KeyProvider, LocalKeys, load_provider
from opcatflow.engine.crypto.store import SealedStore, SealedUnitOfWork
from opcatflow.engine.deadlines import condition_refusal
from opcatflow.engine.definition import MergeSpec
from opcatflow.engine.errors import (
    ConcurrentUpdate,
    DefinitionError,
    InstanceErased,
    InstanceNotFound,
    InvalidData,
    KeyUnavailable,
    RowsRefused,
    StoreError,
    TransitionRefused,
    VersionRetired,
)
from opcatflow.engine.events import TransactionHook
from opcatflow.engine.firing import Applied, Refused, decide
from opcatflow.engine.identity import resolve_id
from opcatflow.engine.inputs import check_call, check_data
from opcatflow.engine.instance import Instance, TriggerOption
from opcatflow.engine.loader import Catalog, compile_stored, load_catalog, same_content
from opcatflow.engine.logs import default_logger
from opcatflow.engine.memory import MemoryStore
from opcatflow.engine.merging import merge_in
from opcatflow.engine.obligations import ObligationHook
from opcatflow.engine.periods import below_minimum
from opcatflow.engine.ports import Store, UnitOfWork
from opcatflow.engine.projection import Projector, instance_pages
from opcatflow.engine.readlog_root import check_read_log, read_root_at
from opcatflow.engine.refs import ENTRY_ID, ref_refusal
from opcatflow.engine.register_bodies import RegisterBodies
from opcatflow.engine.registers import Registers, retired_words, retirement_refusal
from opcatflow.engine.registry import Lookup, Registry, RuleContext
from opcatflow.engine.results import FireDecision, FireResult
from opcatflow.engine.rows import Obligation, StoredDefinition
from opcatflow.engine.settings import Settings
from opcatflow.engine.sharing import Policy
from opcatflow.engine.stores import open_store
from opcatflow.engine.waivers import EXTEND, WAIVE, apply_change
from opcatflow.engine.writes import (
    START,
    Child,
    Writes,
    enter_initial,
    start_data,
    start_refusal,
)


@dataclass(frozen=True, slots=True)
class Started:
    """A new instance, and the notices its start produced (see :class:`FireResult`)."""

    instance: Instance
    notices: tuple[str, ...] = ()


class Engine:
    """Runs workflow instances against a store.

    Args:
        store: where instances and the audit trail live.
        catalog: the compiled workflows this engine may start. Versions that instances are
            pinned to but that are no longer in the catalog are compiled from the copy the
            store kept when they were first registered.
        registry: the guards and actions the definitions name.
        clock: the only source of time the engine uses.
        logger: a structlog logger; the engine logs events, never configures logging.
        keys: where the key-encryption keys are (:mod:`opcatflow.engine.crypto.providers`):
            personal and confidential values are stored sealed with a data key per
            instance, wrapped with them. Default: ``$OPCATFLOW_KEK`` if set, else the key
            file (``$OPCATFLOW_KEY_FILE``, else ``~/.config/opcatflow/keys``, made on first
            use for a new database); for a :class:`MemoryStore`, a key held in memory.
        hooks: participants that write in the transaction of every applied change (the
            notification outbox). The deadline timers' hook always comes first.
        settings: the NPM's calendar and deadline durations (default: the shipped ones).
        register: store every catalog definition now, failing at once if one has the id and
            version of a stored definition with different content. Without it (read-only
            tools), a definition is stored when its first instance starts, and the conflict
            is raised then.
        sources: the files and folders ``catalog`` was loaded from: :meth:`reload` reads
            them again (without them, it keeps ``catalog`` and reads only the database).
        checks: more checks every load of the catalogue must pass (notification templates).

    The catalog in use (``engine.catalog``) is ``catalog`` with the versions deployed to the
    database added (``workflows deploy``) and those retired there marked.

    Raises:
        DefinitionError: with ``register``, a catalog workflow has the id and version of a
            stored definition with different content; or a deployed version does not load.
    """

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        registry: Registry,
        *,
        clock: Clock | None = None,
        logger: FilteringBoundLogger | None = None,
        keys: KeyProvider | None = None,
        hooks: Sequence[TransactionHook] = (),
        settings: Settings | None = None,
        register: bool = True,
        sources: Sequence[str | Path] = (),
        checks: Sequence[CatalogCheck] = (),
    ) -> None:
        if keys is None:
            keys = _memory_keys(store) if isinstance(store, MemoryStore) else load_provider(None)
        self.keyring = Keyring(keys)
        # The report projection's rows are written with every write of an instance.
        self.projector = Projector(registry.projections, self.workflow)
        # Every value goes through the keyring: the store below holds only ciphertext.
        self.store = SealedStore(
            store, self.keyring, self._sealed_fields, self._subject_field, self.projector
        )
        self.registry = registry
        self._base = catalog
        self._sources = tuple(sources)
        self._checks = tuple(checks)
        self._reloading = threading.Lock()
        rows = self._stored_definitions()
        catalog = assemble(catalog, rows, registry)
        self.catalog = catalog
        self._catalogue = digest(rows)
        self._refused: str | None = None  # the catalogue digest a reload last refused
        self.clock = clock or SystemClock()
        self.log = logger or default_logger("opcatflow")
        self._times_ordered_from = store.audit_times_ordered_from()
        self.settings = settings or Settings.default()
        self.timers = ObligationHook(self.settings)
        self.timers.check(catalog)  # a definition naming an unknown config: key fails here
        self.hooks: tuple[TransactionHook, ...] = (self.timers, *hooks)
        self._writes = Writes(catalog, self.hooks, registry)
        self.registers = Registers(self)  # register entries, by id and by day
        self._pinned: dict[tuple[str, int], CompiledWorkflow] = {}
        if register:
            self._register(catalog)
            self._fill_projection()

    @classmethod
    def open(
        cls,
        url: str,
        workflows: Iterable[str | Path],
        registry: Registry,
        *,
        clock: Clock | None = None,
        logger: FilteringBoundLogger | None = None,
        synchronous: str = "FULL",
        create: bool = True,
        settings: Settings | None = None,
        hooks: Sequence[TransactionHook] = (),
        register: bool = True,
        keys: KeyProvider | None = None,
    ) -> Engine:
        """Open a store at ``url`` (creating the schema in an empty database) and load the
        definitions found under ``workflows``. ``memory:`` opens a new in-memory store
        (:class:`~opcatflow.engine.memory.MemoryStore`: nothing outlives the engine).

        Raises:
            SchemaMismatch: the database is at another schema revision.
            DefinitionError: a definition is invalid.
        """
        sources = tuple(workflows)
        catalog = load_catalog(sources, registry)
        store = open_store(url, synchronous=synchronous, logger=logger)
        try:
            store.ensure_schema(create=create)
            return cls(
                store,
                catalog,
                registry,
                clock=clock,
                logger=logger,
                hooks=hooks,
                settings=settings,
                register=register,
                sources=sources,
                keys=keys,
            )
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def projection_current(self) -> bool:
        """Whether the report projection was built with this registry's projections."""
        with self.store.read() as uow:
            return uow.reports.digest() == self.projector.digest

    def _fill_projection(self) -> None:
        # Opening must not fail for the projection (a key out of reach, say): the first
        # report builds it then, or says why it cannot.
        try:
            self.ensure_projection()
        except (KeyUnavailable, InstanceErased, StoreError) as err:
            self.log.warning("report_projection_not_built", error=str(err))

    def ensure_projection(self) -> int | None:
        """Rebuild the report projection if it was built with other projections (or never,
        as after migration 0012); returns how many instances were projected, or ``None``
        when it was current."""
        return None if self.projection_current() else self.rebuild_projection()

    def rebuild_projection(self) -> int:
        """Build the report projection again from every instance, in one transaction (a new
        database revision, a release that projects other fields); returns how many
        instances were projected. Writers wait for it (on PostgreSQL, those of the instances
        it has read): run it when the NPM is quiet."""
        count = 0
        with self.store.write() as uow:
            uow.reports.clear()
            for workflow in sorted(self.projector.projections):
                for page in instance_pages(uow, workflow):
                    for instance in page:
                        self.projector(uow, instance)
                    count += len(page)
            uow.reports.set_digest(self.projector.digest)
        self.log.info("report_projection_rebuilt", instances=count)
        return count

    def _sealed_fields(self, workflow: str, version: int) -> frozenset[str]:
        return self.workflow(workflow, version).schema.sealed

    def _subject_field(self, workflow: str, version: int) -> str | None:
        return self.workflow(workflow, version).definition.subject

    # -- definitions -----------------------------------------------------------------------

    def _stored_definitions(self) -> list[StoredDefinition]:
        with self.store.read() as uow:
            return uow.definitions.listing()

    def reload(self) -> ReloadReport:
        """Load the catalogue again: the files of ``sources`` and the versions deployed to
        (and retired in) the database. Safe while requests run: the new catalog replaces the
        old one at once, and instances keep the definition their version pins.

        If the new set is invalid (a file that does not validate, a version changed without
        a new number, a deployed version that does not load here), the engine keeps the old
        set and logs ``definitions_reload_refused`` with every problem as
        ``path:line:col: message``; the report carries them.
        """
        with self._reloading:
            rows = self._stored_definitions()
            try:
                base = load_catalog(self._sources, self.registry) if self._sources else self._base
                problems = stored_conflicts(base, rows, self.registry)
                if problems:
                    raise DefinitionError(problems)
                catalog = assemble(base, rows, self.registry, self._checks)
                self.timers.check(catalog)
            except DefinitionError as err:
                self._refused = digest(rows)
                self.log.error(
                    "definitions_reload_refused",
                    problems=[str(p) for p in err.problems],
                    kept=[f"{wf.id} v{wf.version}" for wf in self.catalog.latest()],
                )
                return ReloadReport(False, problems=err.problems)
            report = changes(self.catalog, catalog)
            self.catalog = catalog
            self._writes.catalog = catalog
            self._catalogue = digest(rows)
            self._refused = None
        self.log.info("definitions_reloaded", **report.as_json())
        return report

    def _take_statuses(self) -> bool:
        """Mark the versions the database says are retired; whether anything changed."""
        with self._reloading:
            now_retired = retired(self._stored_definitions())
            if now_retired == self.catalog.retired:
                return False
            catalog = self.catalog.with_retired(now_retired)
            self.catalog = catalog
            self._writes.catalog = catalog
        return True

    def refresh(self) -> ReloadReport | None:
        """The periodic check: :meth:`reload` if the database's catalogue changed since the
        last load (a deploy, a retirement) and this state was not already refused; else
        ``None``. One small read when nothing changed."""
        current = digest(self._stored_definitions())
        if current in (self._catalogue, self._refused):
            return None
        return self.reload()

    def _register(self, catalog: Catalog) -> None:
        with self.store.write() as uow:
            for wf in catalog:
                self._writes.ensure_registered(uow, wf, self.clock.now())
                self._pinned[(wf.id, wf.version)] = wf
            if any(wf.definition.subject for wf in catalog):
                # Made (and committed) now rather than in a batch of starts that might roll
                # back after another start of the batch read it: the index's key never changes.
                uow.ensure_keys(SUBJECT_OWNER, self.clock.now())

    def today(self, now: datetime | None = None) -> date:
        """The NPM's current day (or the day of ``now``): the engine's clock in the NPM's
        time zone (the settings' calendar). Register entries read "now" hold the values of
        this day."""
        return self.settings.calendar.local_date(self.clock.now() if now is None else now)

    def workflow(self, workflow: str, version: int | None = None) -> CompiledWorkflow:
        """The latest loaded version of a workflow, or the given version as stored.

        An instance runs on the definition stored for its version. When the loaded file of
        that version differs from the stored copy (edited without a new version), the stored
        copy wins: an instance never changes rules under its feet.

        Raises:
            WorkflowNotFound
        """
        if version is None:
            return self.catalog.get(workflow)
        key = (workflow, version)
        pinned = self._pinned.get(key)
        if pinned is not None:
            return pinned
        found = self.catalog.find(workflow, version)
        with self.store.read() as uow:
            stored = uow.definitions.get(workflow, version)
        if stored is None:
            pinned = found or self.catalog.get(workflow, version)  # raises WorkflowNotFound
            return pinned  # not stored yet: checked again once an instance pins it
        if found is not None and same_content(
            found, stored.fingerprint, stored.source, self.registry
        ):
            pinned = found
        else:
            if found is not None:
                self.log.warning(
                    "definition_differs_from_stored",
                    workflow=workflow,
                    version=version,
                    using="stored",
                )
            pinned = compile_stored(stored.source, workflow, version, self.registry)
            if pinned.compat_problems:
                self.log.info(
                    "stored_definition_compat",
                    workflow=workflow,
                    version=version,
                    tolerated=[str(p) for p in pinned.compat_problems],
                )
        self._pinned[key] = pinned
        return pinned

    # -- writes ----------------------------------------------------------------------------

    def start(
        self,
        workflow: str,
        *,
        actor: str,
        role: str,
        data: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        reason: str | None = None,
        version: int | None = None,
        also: Callable[[UnitOfWork, Instance], None] | None = None,
        instance_id: str | None = None,
    ) -> Instance:
        """Start a new instance of the latest (or given) version of ``workflow``, in one
        unit of work (:meth:`start_result` also returns the notices).

        Args:
            instance_id: for an entry of a register only (a workflow declaring
                ``register:``): the id it is known by (``ombudsperson``; lowercase letters,
                digits, ``_.-``, at most 64), instead of a new uuid.
            also: called with the unit of work and the new instance before the commit, to
                write something that must be stored with the start or not at all (the HTTP
                API's idempotency record). If it raises, nothing is stored and the exception
                propagates.

        Raises:
            WorkflowNotFound: no such workflow.
            TransitionRefused: the role may not start it, the data holds a field outside the
                start write set or one the role may not write, a reference to a register
                entry that is missing, retired or merged, or a chosen ``instance_id`` that
                is taken (kind ``data``), or an on_enter action of the initial state failed
                (nothing is stored: there is no instance to audit it on).
            InvalidData: the data does not fit the schema or misses required fields; an
                ``instance_id`` for a workflow that is no register, or not a valid id.
            InstanceNotFound: ``parent_id`` does not exist.
            LimitExceeded, InvalidText: an input past a limit (docs/limits.md), or text that
                is not valid Unicode; raised before any transaction.
        """
        return self.start_result(
            workflow,
            actor=actor,
            role=role,
            data=data,
            parent_id=parent_id,
            reason=reason,
            version=version,
            also=None if also is None else lambda uow, started: also(uow, started.instance),
            instance_id=instance_id,
        ).instance

    def start_result(
        self,
        workflow: str,
        *,
        actor: str,
        role: str,
        data: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        reason: str | None = None,
        version: int | None = None,
        also: Callable[[UnitOfWork, Started], None] | None = None,
        instance_id: str | None = None,
    ) -> Started:
        """:meth:`start`, returning the notices too (e.g. a deadline already overdue because
        the case was entered late); ``also`` receives them with the instance. Raises what
        :meth:`start` raises."""
        check_call(actor=actor, role=role, reason=reason)
        check_data(data or {})
        call: dict[str, Any] = {
            "actor": actor,
            "role": role,
            "data": data,
            "parent_id": parent_id,
            "reason": reason,
            "version": version,
            "also": also,
            "instance_id": instance_id,
        }
        try:
            return self._start(workflow, **call)
        except VersionRetired:
            # Retired by another process since this one loaded the catalogue: take the
            # statuses from the database (the periodic check loads the rest), and start on
            # the version now latest, if another one is.
            if version is not None or not self._take_statuses():
                raise
            return self._start(workflow, **call)

    def _start(
        self,
        workflow: str,
        *,
        actor: str,
        role: str,
        data: Mapping[str, Any] | None,
        parent_id: str | None,
        reason: str | None,
        version: int | None,
        also: Callable[[UnitOfWork, Started], None] | None,
        instance_id: str | None,
        within: SealedUnitOfWork | None = None,
    ) -> Started:
        # within: a unit of work a batch already holds (engine/batch.py), else one of its own
        wf = self.workflow(workflow, version)
        if instance_id is not None:
            chosen_id_problem = _chosen_id_problem(wf, instance_id)
            if chosen_id_problem is not None:
                raise InvalidData(wf.id, [chosen_id_problem])
        if self.catalog.is_retired(wf.id, wf.version):
            raise VersionRetired(wf.id, wf.version, _newer(self.catalog, wf))
        if role not in wf.start_roles:
            allowed = ", ".join(sorted(wf.start_roles))
            raise TransitionRefused(
                "(new)", START, "role", f"role {role!r} may not start {wf.id} (allowed: {allowed})"
            )
        clean, errors = start_data(wf, data or {})
        errors = errors or below_minimum(self.settings, wf, clean)
        if errors:
            raise InvalidData(wf.id, errors)
        barred = start_refusal(wf, role, clean)
        if barred is not None:
            raise TransitionRefused("(new)", START, "data", barred)

        def work(uow: SealedUnitOfWork) -> Started:
            notices: list[str] = []  # one list per run: group commit may run work twice
            if parent_id is not None:
                uow.instances.lock(parent_id)  # raises InstanceNotFound
            now = self.clock.now()  # after the parent's lock, like every write
            lookup = _lookup(uow)
            if instance_id is not None and lookup(instance_id) is not None:
                raise TransitionRefused(
                    "(new)", START, "data", f"{wf.id} {instance_id!r} exists already"
                )
            new_id = instance_id or str(uuid.uuid4())
            try:
                initial = enter_initial(
                    wf,
                    clean,
                    instance_id=new_id,
                    actor=actor,
                    role=role,
                    now=now,
                    reason=reason,
                    lookup=lookup,
                    policy=self._policy(lookup, now),
                )
            except Exception as err:  # nothing is stored: there is no instance to audit it on
                raise TransitionRefused(
                    "(new)", START, "action", f"action failed: {err!r}"
                ) from err
            problem = condition_refusal(wf, wf.initial, initial)
            if problem is not None:
                raise TransitionRefused("(new)", START, "guard", problem)
            dangling = self._ref_refusal(wf, {}, initial, lookup)
            if dangling is not None:
                raise TransitionRefused("(new)", START, "data", dangling)
            instance = self._writes.insert_new(
                uow,
                wf,
                initial,
                actor=actor,
                role=role,
                now=now,
                parent_id=parent_id,
                reason=reason,
                instance_id=new_id,
                notices=notices,
            )
            if also is not None:
                also(uow, Started(instance, tuple(notices)))
            return Started(instance, tuple(notices))

        if within is not None:
            return work(within)
        started = self.store.submit(work)
        instance = started.instance
        self.log.info(
            "instance_started",
            instance_id=instance.id,
            workflow=instance.workflow_id,
            workflow_version=instance.workflow_version,
            state=instance.state,
            actor=actor,
            role=role,
            parent_id=instance.parent_id,
        )
        return started

    def start_many(
        self,
        workflow: str,
        rows: Sequence[NewInstance],
        *,
        actor: str,
        role: str,
        reason: str | None = None,
    ) -> list[Instance]:
        """Start one instance per row, all in one unit of work or none (an import).

        Every row is checked first, as :meth:`start` checks its data, and against the
        store in the same transaction (chosen ids free, register entries it names active
        or added by another row); a register's rows may not give one id, or one title
        spelt alike, twice. Any problem in any row refuses the whole batch, naming every
        problem of every row.

        Raises:
            RowsRefused: with every ``(row index, problem)``; nothing is stored.
            TransitionRefused: the role may not start the workflow (kind ``role``).
            InvalidData: chosen ids for a workflow that is no register.
            LimitExceeded, InvalidText: an input past a limit, or text that is not valid
                Unicode.
        """
        check_call(actor=actor, role=role, reason=reason)
        wf = self.workflow(workflow)
        if self.catalog.is_retired(wf.id, wf.version):
            raise VersionRetired(wf.id, wf.version, _newer(self.catalog, wf))
        if role not in wf.start_roles:
            allowed = ", ".join(sorted(wf.start_roles))
            raise TransitionRefused(
                "(new)", START, "role", f"role {role!r} may not start {wf.id} (allowed: {allowed})"
            )
        if wf.definition.as_register is None and any(r.instance_id for r in rows):
            raise InvalidData(wf.id, [_chosen_id_problem(wf, "") or ""])
        for each in rows:
            check_data(each.data)
        checked, problems = check_rows(
            wf, rows, role, lambda data: below_minimum(self.settings, wf, data)
        )
        started: list[Instance] = []
        with self.store.write() as uow:
            lookup = _lookup(uow)
            problems += store_problems(wf, checked, lookup, retired_words(self.catalog))
            if problems:
                raise RowsRefused(wf.id, sorted(problems, key=lambda p: p[0]))
            now = self.clock.now()
            for row in checked:
                new_id = row.instance_id or str(uuid.uuid4())
                initial = enter_initial(
                    wf, row.data, instance_id=new_id, actor=actor, role=role, now=now,
                    reason=reason, lookup=lookup, policy=self._policy(lookup, now),
                )  # fmt: skip
                problem = condition_refusal(wf, wf.initial, initial)
                if problem is not None:
                    raise RowsRefused(wf.id, [(row.index, problem)])
                started.append(
                    self._writes.insert_new(
                        uow,
                        wf,
                        initial,
                        actor=actor,
                        role=role,
                        now=now,
                        parent_id=None,
                        reason=reason,
                        instance_id=new_id,
                    )
                )
        self.log.info(
            "instances_started", workflow=wf.id, count=len(started), actor=actor, role=role
        )
        return started

    def fire(
        self,
        instance_id: str,
        trigger: str,
        *,
        actor: str,
        role: str | None = None,
        roles: Sequence[str] | None = None,
        data: Mapping[str, Any] | None = None,
        reason: str | None = None,
        expected_version: int | None = None,
        also: Callable[[UnitOfWork, FireResult], None] | None = None,
    ) -> Instance:
        """Fire ``trigger`` on an instance, in one unit of work.

        Args:
            role: the role the actor acts in; or
            roles: every role the actor holds: the trigger applies under the first of them,
                in the order of the workflow's ``roles:`` mapping, whose role, data (write
                set, field rules) and guard checks pass, and the audit record names it. If
                none passes, one refusal is audited, under the first of them allowed to fire
                the trigger (else the first), with its reason. Give ``role`` or ``roles``.
            data: fields to set (validated against the schema; unknown fields are refused;
                ``None`` clears a field).
            reason: why, in the actor's words; kept in the audit record.
            expected_version: the version the caller last saw; a newer stored version raises
                :class:`ConcurrentUpdate` instead of acting on stale information.
            also: called with the unit of work and the outcome (applied or refused) before
                the commit, to write something that must be stored with it or not at all (the
                HTTP API's idempotency record). If it raises, nothing is stored (not even the
                refusal) and the exception propagates.

        Returns:
            The instance as stored after the transition (children it opened are linked to
            it: see :meth:`children`).

        Raises:
            InstanceNotFound: no such instance.
            ConcurrentUpdate: ``expected_version`` is stale (nothing is stored).
            TransitionRefused: unknown trigger, wrong state or role, bad data, a guard said
                no, an action failed, or a child could not be opened. The refusal is stored
                in the audit trail first.
            LimitExceeded, InvalidText: an input past a limit (docs/limits.md), or text that
                is not valid Unicode; raised before any transaction, so nothing is stored.
            ValueError: both or neither of ``role`` and ``roles`` given, or ``roles`` empty.
        """
        result = self.fire_result(
            instance_id,
            trigger,
            actor=actor,
            role=role,
            roles=roles,
            data=data,
            reason=reason,
            expected_version=expected_version,
            also=also,
        )
        assert result.instance is not None
        return result.instance

    def fire_result(
        self,
        instance_id: str,
        trigger: str,
        *,
        actor: str,
        role: str | None = None,
        roles: Sequence[str] | None = None,
        data: Mapping[str, Any] | None = None,
        reason: str | None = None,
        expected_version: int | None = None,
        also: Callable[[UnitOfWork, FireResult], None] | None = None,
    ) -> FireResult:
        """:meth:`fire`, returning the whole :class:`FireResult` of an applied trigger: the
        instance, the role it applied under, the children opened and the notices (what the
        caller should be told, e.g. a deadline recorded as already overdue). Raises what
        :meth:`fire` raises."""
        work = self._fire_work(
            instance_id, trigger, actor=actor, role=role, roles=roles, data=data, reason=reason,
            expected_version=expected_version, also=also,
        )  # fmt: skip
        # Shared with concurrent fires and starts (group commit): a refusal is stored and
        # committed like a change, and raised here once the commit is durable.
        return self._committed(self.store.submit(work))

    def fire_soon(
        self,
        instance_id: str,
        trigger: str,
        *,
        actor: str,
        role: str | None = None,
        roles: Sequence[str] | None = None,
        data: Mapping[str, Any] | None = None,
        reason: str | None = None,
        expected_version: int | None = None,
        also: Callable[[UnitOfWork, FireResult], None] | None = None,
    ) -> Future[FireResult]:
        """:meth:`fire_result` for a caller that must not block (an event loop): returns at
        once a future that gets the :class:`FireResult`, or what :meth:`fire` raises (a
        refusal once it is stored), when the commit is durable. The fire joins the next group
        commit like any other; the store's own thread runs it.

        Raises:
            ValueError, InvalidText, LimitExceeded: as :meth:`fire`, before anything is queued.
        """
        work = self._fire_work(
            instance_id, trigger, actor=actor, role=role, roles=roles, data=data, reason=reason,
            expected_version=expected_version, also=also,
        )  # fmt: skip
        done: Future[FireResult] = Future()

        def settle(stored: Future[FireResult]) -> None:
            try:
                done.set_result(self._committed(stored.result()))
            except BaseException as err:  # the fire's own error, or its stored refusal
                done.set_exception(err)

        self.store.submit_soon(work).add_done_callback(settle)
        return done

    def _fire_work(
        self,
        instance_id: str,
        trigger: str,
        *,
        actor: str,
        role: str | None,
        roles: Sequence[str] | None,
        data: Mapping[str, Any] | None,
        reason: str | None,
        expected_version: int | None,
        also: Callable[[UnitOfWork, FireResult], None] | None,
    ) -> Callable[[SealedUnitOfWork], FireResult]:
        # The caller's input checked, and the fire as work for a unit of work.
        if (role is None) == (roles is None) or roles == []:
            raise ValueError("give role or a non-empty roles")
        candidates = (role,) if role is not None else tuple(dict.fromkeys(roles or ()))
        for each in candidates:
            check_call(actor=actor, role=each, reason=reason, trigger=trigger)
        if data:  # most fires supply nothing, and no data has nothing to check
            check_data(data)

        merging = self._merging(trigger)

        def work(uow: SealedUnitOfWork) -> FireResult:
            merge = self._merge_of(uow, instance_id, trigger) if merging else None
            if merge is not None:  # both instances in this unit of work, or neither
                result = merge_in(
                    self, uow, merge, instance_id, trigger, actor=actor, roles=candidates,
                    data=data or {}, reason=reason, expected_version=expected_version,
                )  # fmt: skip
            else:
                result = self._fire_in(
                    uow,
                    instance_id,
                    trigger,
                    actor=actor,
                    roles=candidates,
                    data=data,
                    reason=reason,
                    expected_version=expected_version,
                )
            if also is not None:
                also(uow, result)
            return result

        return work

    def _committed(self, result: FireResult) -> FireResult:
        # After the commit, so the log never runs ahead; a refusal is raised only now, once
        # it is stored.
        self._log_result(result)
        if result.refusal is not None:
            raise result.refusal
        return result

    def _merging(self, trigger: str) -> bool:
        """Whether some loaded workflow merges with ``trigger`` (most fires: no, with no read)."""
        return self.catalog.merges_with(trigger)

    def _merge_of(self, uow: SealedUnitOfWork, instance_id: str, trigger: str) -> MergeSpec | None:
        """How ``trigger`` merges the instance into another, if its workflow says it does."""
        try:
            found = uow.instances.get(instance_id)
        except InstanceNotFound:
            return None  # the fire says so, under the lock
        return self.workflow(found.workflow_id, found.workflow_version).merges.get(trigger)

    def _fire_in(
        self,
        uow: SealedUnitOfWork,
        instance_id: str,
        trigger: str,
        *,
        actor: str,
        roles: Sequence[str],
        data: Mapping[str, Any] | None = None,
        reason: str | None = None,
        expected_version: int | None = None,
        merging: bool = False,
    ) -> FireResult:
        # A fire inside a unit of work the engine opened (fire, the scheduler's batch).
        # ``merging``: a merge fires the survivor's trigger (engine/merging.py).
        current, now = self.lock_for_record(uow, instance_id)
        if expected_version is not None and current.version != expected_version:
            raise ConcurrentUpdate(instance_id, expected_version, current.version)
        decision = self.decide_fire(
            uow,
            current,
            trigger,
            actor=actor,
            roles=roles,
            data=data,
            reason=reason,
            now=now,
            merging=merging,
        )
        role, outcome = decision.role, decision.outcome
        if isinstance(outcome, Refused):
            self._writes.store_refusal(
                uow, current, trigger=trigger, actor=actor, role=role, now=now, refusal=outcome
            )
            error = TransitionRefused(instance_id, trigger, outcome.kind, outcome.reason)
            return FireResult(current, None, error, trigger, actor, role, ())
        children = decision.children
        plan = self._writes.plan_applied(
            uow,
            decision.workflow,
            current,
            outcome,
            children,
            trigger=trigger,
            actor=actor,
            role=role,
            now=now,
            reason=reason,
        )
        updated = self._writes.store_applied(uow, plan)
        opened = tuple(c.instance_id for c in children)
        notices = tuple(outcome.ctx.notes)
        return FireResult(current, updated, None, trigger, actor, role, opened, notices)

    def decide_fire(
        self,
        uow: SealedUnitOfWork,
        current: Instance,
        trigger: str,
        *,
        actor: str,
        roles: Sequence[str],
        now: datetime,
        data: Mapping[str, Any] | None = None,
        reason: str | None = None,
        merging: bool = False,
    ) -> FireDecision:
        """Whether ``trigger`` applies to ``current`` and how: the role it applies under, the
        outcome (the new state and data, or the refusal with its most specific reason) and
        the children it opens. Reads through ``uow`` (other instances a rule or a register
        reference names, the children's definitions) and writes nothing: :meth:`_fire_in`
        stores what this decides."""
        wf = self.workflow(current.workflow_id, current.workflow_version)
        lookup = _lookup(uow)
        role, outcome = _choose(
            wf,
            current,
            roles,
            trigger=trigger,
            actor=actor,
            supplied=data or {},
            now=now,
            reason=reason,
            lookup=lookup,
            policy=self._policy(lookup, now),
        )
        if isinstance(outcome, Refused):
            return FireDecision(wf, role, outcome)
        if trigger in wf.merged_by and not merging:
            # what a merge hands over (links, copied entries) is never a caller's to write
            which = ", ".join(sorted(t for t, m in wf.merges.items() if m.trigger == trigger))
            refused = Refused(
                "trigger", f"{trigger!r} is applied only by a merge ({which} on the duplicate)"
            )
            return FireDecision(wf, role, refused)
        short = below_minimum(self.settings, wf, outcome.data, current.data)
        if short:  # a period shorter than the law allows
            return FireDecision(wf, role, Refused("data", "; ".join(short)))
        early = self.timers.early_refusal(wf, current, trigger, outcome.data, now)
        if early is not None:  # a minimum with on_early: refuse
            return FireDecision(wf, role, Refused("guard", f"too early: {early}"))
        dangling = self._ref_refusal(wf, current.data, outcome.data, lookup) or (
            retirement_refusal(wf, outcome.state, outcome.data, lambda: self.today(now))
        )
        if dangling is not None:  # a missing, retired or merged register entry
            return FireDecision(wf, role, Refused("data", dangling))
        planned = self._writes.plan_children(outcome)
        if isinstance(planned, Refused):
            return FireDecision(wf, role, planned)
        refused_child = self._writes.retired_child(uow, planned) or self._child_refs(
            planned, lookup
        )
        if refused_child is not None:
            return FireDecision(wf, role, refused_child)
        return FireDecision(wf, role, outcome, tuple(planned))

    def _policy(self, lookup: Lookup, now: datetime) -> Policy:
        """The settings' policy, with the bodies of the authority register as this
        transaction reads them on the NPM's day of ``now``."""
        return self.settings.policy.with_bodies(RegisterBodies(lookup, now, self.settings.calendar))

    def _ref_refusal(
        self,
        wf: CompiledWorkflow,
        before: Mapping[str, Any],
        after: Mapping[str, Any],
        lookup: Lookup,
    ) -> str | None:
        """Why the register entries a write adds may not be referred to (engine/refs.py)."""
        if not wf.refs:
            return None
        return ref_refusal(wf.refs, before, after, lookup, retired_words(self.catalog))

    def _child_refs(self, children: Sequence[Child], lookup: Lookup) -> Refused | None:
        """The refusal of an ``opens`` whose child data names an entry it may not."""
        for child in children:
            problem = self._ref_refusal(child.workflow, {}, child.data, lookup)
            if problem is not None:
                return Refused("data", f"cannot open {child.workflow.id!r}: {problem}")
        return None

    def lock_for_record(self, uow: SealedUnitOfWork, instance_id: str) -> tuple[Instance, datetime]:
        """Lock an instance to append to its audit chain; returns it and the time to stamp
        the new record with (for the engine's own writers, such as the scheduler).

        The clock is read once the lock is held: a writer that waited for the lock must not
        stamp its record with the time it started waiting, before the record of the writer
        it waited for. If the clock is behind the chain's last record (a clock set back, or
        another server's clock), the new record takes that record's time, and the engine
        logs ``clock_behind_audit_chain``.

        Raises:
            InstanceNotFound
        """
        current, last = uow.instances.lock_for_append(instance_id)
        now = self.clock.now()
        if last is not None and now < last:
            self.log.warning(
                "clock_behind_audit_chain",
                instance_id=instance_id,
                clock=now.isoformat(),
                last_record=last.isoformat(),
            )
            return current, last
        return current, now

    def _log_result(self, result: FireResult) -> None:
        # After the commit, so the log never runs ahead.
        previous = result.previous
        if result.refusal is not None:
            self.log.info(
                "transition_refused",
                instance_id=previous.id,
                workflow=previous.workflow_id,
                trigger=result.trigger,
                state=previous.state,
                actor=result.actor,
                role=result.role,
                kind=result.refusal.kind,
                reason=result.refusal.reason,
            )
            return
        assert result.instance is not None
        self.log.info(
            "transition_applied",
            instance_id=previous.id,
            workflow=previous.workflow_id,
            trigger=result.trigger,
            from_state=previous.state,
            to_state=result.instance.state,
            actor=result.actor,
            role=result.role,
            version=result.instance.version,
            opened=list(result.opened),
        )

    # -- obligations -----------------------------------------------------------------------

    def waive(
        self,
        instance_id: str,
        deadline: str,
        *,
        actor: str,
        role: str,
        reason: str,
        occurrence: int | None = None,
    ) -> Obligation:
        """Waive the open occurrence of ``deadline`` (a role of its ``waivable_by``, with a
        reason): it is no longer owed, listed or alerted. Audited.

        Raises:
            TransitionRefused: audited first (see :func:`.waivers.apply_change`).
            InstanceNotFound
        """
        return self._change_obligation(
            instance_id, deadline, action=WAIVE, actor=actor, role=role, reason=reason,
            occurrence=occurrence,
        )  # fmt: skip

    def extend(
        self,
        instance_id: str,
        deadline: str,
        *,
        actor: str,
        role: str,
        reason: str,
        last_day: date,
        occurrence: int | None = None,
    ) -> Obligation:
        """Grant the open occurrence of ``deadline`` a later last day (a role of its
        ``extendable_by``, with a reason): its alerts stop, and it falls due again at the end
        of ``last_day``. Audited.

        Raises:
            TransitionRefused: audited first (see :func:`.waivers.apply_change`).
            InstanceNotFound
        """
        return self._change_obligation(
            instance_id, deadline, action=EXTEND, actor=actor, role=role, reason=reason,
            last_day=last_day, occurrence=occurrence,
        )  # fmt: skip

    def _change_obligation(
        self,
        instance_id: str,
        deadline: str,
        *,
        action: str,
        actor: str,
        role: str,
        reason: str | None,
        last_day: date | None = None,
        occurrence: int | None = None,
    ) -> Obligation:
        # One unit of work: the change and its record, or the refusal's record, then raised.
        check_call(actor=actor, role=role, reason=reason)
        trigger = f"{action}:{deadline}"[:64]
        with self.store.write() as uow:
            current, at = self.lock_for_record(uow, instance_id)
            wf = self.workflow(current.workflow_id, current.workflow_version)
            outcome = apply_change(
                uow, wf, current, self.timers.planner, deadline, at=at, action=action,
                actor=actor, role=role, reason=reason, last_day=last_day, occurrence=occurrence,
            )  # fmt: skip
            if isinstance(outcome, Refused):
                self._writes.store_refusal(
                    uow, current, trigger=trigger, actor=actor, role=role, now=at,
                    refusal=outcome,
                )  # fmt: skip
        if isinstance(outcome, Refused):
            self.log.info(
                "obligation_change_refused", instance_id=instance_id, deadline=deadline,
                action=action, role=role, kind=outcome.kind, reason=outcome.reason,
            )  # fmt: skip
            raise TransitionRefused(instance_id, trigger, outcome.kind, outcome.reason)
        self.log.info(
            "obligation_changed", instance_id=instance_id, deadline=deadline, action=action,
            role=role, occurrence=outcome.occurrence, status=str(outcome.status),
        )  # fmt: skip
        return outcome

    def obligations(self, instance_id: str) -> list[Obligation]:
        """Every obligation of one instance, open or closed, by deadline and occurrence.

        Raises: InstanceNotFound."""
        with self.store.read() as uow:
            uow.instances.get(instance_id)
            return uow.obligations.of_instance(instance_id)

    # -- reads -----------------------------------------------------------------------------

    def get(self, instance_id: str) -> Instance:
        """Raises: InstanceNotFound."""
        with self.store.read() as uow:
            return uow.instances.get(instance_id)

    def query(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        where: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        after: Instance | ListKey | None = None,
        limit: int = 100,
    ) -> list[Instance]:
        """Instances by workflow, state, parent and data field values, oldest first.

        Pass the last instance of a page (or its :func:`list_key`) as ``after`` to get the
        next page: keyset paging on ``(created_at, id)``, so a page never skips or repeats
        an instance, whatever is started meanwhile.

        Raises:
            InvalidData: ``where`` names a personal or confidential field of a workflow:
                those are stored sealed, so the database cannot compare them.
        """
        if where:
            for wf in self.catalog:  # every version: an instance may run on any of them
                if workflow is not None and wf.id != workflow:
                    continue
                sealed = sorted(wf.schema.sealed.intersection(where))
                if sealed:
                    raise InvalidData(
                        wf.id,
                        [
                            f"{name}: personal or confidential, stored encrypted: it cannot "
                            "be a filter"
                            for name in sealed
                        ],
                    )
        with self.store.read() as uow:
            return uow.instances.query(
                workflow=workflow,
                state=state,
                where=where,
                parent_id=parent_id,
                after=_key(after),
                limit=limit,
            )

    def count(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        where: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        after: Instance | ListKey | None = None,
    ) -> int:
        """How many instances :meth:`query` would list with no limit (after a page: how
        many more there are)."""
        with self.store.read() as uow:
            return uow.instances.count(
                workflow=workflow,
                state=state,
                where=where,
                parent_id=parent_id,
                after=_key(after),
            )

    def resolve_id(self, text: str) -> str:
        """The instance id ``text`` is, or the one id it is a prefix of (at least 8
        characters), resolved by the store from the id's index.

        Raises:
            IdTooShort, InstanceNotFound, AmbiguousId (naming the candidates).
        """
        with self.store.read() as uow:
            return resolve_id(uow.instances, text)

    def children(self, instance_id: str) -> list[Instance]:
        """Instances started with ``parent_id=instance_id``."""
        return self.query(parent_id=instance_id, limit=10_000)

    def history(self, instance_id: str) -> list[AuditRecord]:
        """Every audit record of one instance, oldest first. Raises: InstanceNotFound."""
        with self.store.read() as uow:
            uow.instances.get(instance_id)
            # Read once, not trusted to this process's key cache: another may have erased it.
            erased = bool(uow.data_keys.erased_among([instance_id]))
            return [self._opened(uow, r, erased) for r in uow.audit.records(instance_id)]

    def _opened(
        self, uow: SealedUnitOfWork, record: AuditRecord, erased: bool = False
    ) -> AuditRecord:
        # A record as read: its reason opened (display only: its hash covers the sealed form).
        if record.format == LEGACY_FORMAT or not is_sealed_text(record.reason):
            return record
        if erased:
            return record._replace(reason=ERASED)
        assert record.reason is not None
        keys = uow.required_keys(record.instance_id, f"audit record {record.id}")
        reason = keys.open_text(record.reason, reason_place(record.instance_id, record.seq))
        return record._replace(reason=reason)

    def available_triggers(
        self, instance_id: str, role: str, actor: str | None = None
    ) -> list[TriggerOption]:
        """The triggers ``role`` may fire now, each saying whether its guards would pass.

        With ``actor``, an owner role (the definition's ``owner``) gets none on an instance
        that is not the actor's own, as firing would be refused.
        """
        with self.store.read() as uow:
            return self._available_triggers(uow, instance_id, role, actor)

    def _available_triggers(
        self, uow: SealedUnitOfWork, instance_id: str, role: str, actor: str | None
    ) -> list[TriggerOption]:
        instance = uow.instances.get(instance_id)
        wf = self.workflow(instance.workflow_id, instance.workflow_version)
        rules = wf.field_rules
        owner = instance.data.get(rules.owner_field or "")
        if actor is not None and role in rules.owner_roles and owner != actor:
            return []
        now = self.clock.now()
        lookup = _lookup(uow)
        result = []
        for trigger in wf.triggers_from(instance.state):
            options = [o for o in wf.options[(instance.state, trigger)] if role in o.roles]
            if not options or trigger in wf.merged_by:  # a merge applies those, not a caller
                continue
            blocked: list[str] = []
            for option in options:
                ctx = RuleContext(
                    instance_id=instance.id,
                    workflow=wf.id,
                    state=instance.state,
                    trigger=trigger,
                    actor="",
                    role=role,
                    now=now,
                    supplied={},
                    data=dict(instance.data),
                    lookup=lookup,
                    policy=self._policy(lookup, now),
                )
                cursor = Cursor(instance.state, ctx)
                if option.admit(cursor):
                    result.append(TriggerOption(trigger, option.spec.label, option.spec.dest, True))
                    break
                blocked.extend(reason for _, reason in cursor.failures)
            else:
                spec = options[0].spec
                result.append(
                    TriggerOption(trigger, spec.label, spec.dest, False, "; ".join(blocked))
                )
        return result

    # -- audit -----------------------------------------------------------------------------

    def verify_audit(
        self, checkpoints: Sequence[Checkpoint] = (), *, short_ok: bool = False
    ) -> VerifyReport:
        """Recompute every audit chain, compare every instance row with its last record,
        walk the global positions, and check each checkpoint's root; the report names the
        first broken record, instance or position. With no checkpoint its status is
        ``unanchored``: a rewrite of the whole trail cannot be told from the original.

        A record stamped earlier than the record before it is a break if this release wrote
        it, and a warning if it is older data (see
        :meth:`opcatflow.engine.ports.Store.audit_times_ordered_from`).

        With ``short_ok`` (a restored older copy), a checkpoint beyond the trail's end is
        listed in ``report.unreached`` (what the restore lost) rather than as a break.
        """
        with self.store.read() as uow:
            chains = ChainCheck(
                VerifyReport(),
                uow.instances.audit_heads(),
                times_ordered_from=self._times_ordered_from,
                states=uow.instances.state_hashes(),
            )
            # one pass in position order serves the chains and the checkpoints' roots
            report = verify_trail(
                lambda after: uow.audit.after(after, 5000), chains, checkpoints, short_ok=short_ok
            )
            check_read_log(
                lambda after: uow.read_log.after(after, 5000),
                checkpoints,
                report,
                short_ok=short_ok,
            )
            return report

    def audit_root(self, start: tuple[int, str] = (0, GENESIS)) -> tuple[int, str]:
        """The audit trail's size and root now (:mod:`opcatflow.engine.checkpoint`), read
        from ``start``: an earlier checkpoint's size and root."""
        with self.store.read() as uow:
            return root_at(lambda after: uow.audit.after(after, 5000), start)

    def read_log_root(self, start: tuple[int, str] = (0, GENESIS)) -> tuple[int, str]:
        """The read log's size and root now (:mod:`opcatflow.engine.readlog_root`), from
        ``start``: an earlier checkpoint's read-log size and root."""
        with self.store.read() as uow:
            return read_root_at(lambda after: uow.read_log.after(after, 5000), start)

    def export_audit(self, out: IO[str], instance_id: str | None = None) -> int:
        """Write the audit trail as JSON Lines, as stored (reasons sealed, personal values as
        keyed hashes: verifiable with no key); returns the number of records written."""
        count = 0
        with self.store.read() as uow:
            for record in uow.audit.records(instance_id):
                out.write(json.dumps(record.export_json(), ensure_ascii=False) + "\n")
                count += 1
        return count


ListKey = tuple[datetime, str]
"""Where an instance sorts in a list: ``(created_at, id)``."""


def list_key(instance: Instance) -> ListKey:
    """Where ``instance`` sorts in :meth:`Engine.query`'s order (to page after it)."""
    return (instance.created_at, instance.id)


def _key(after: Instance | ListKey | None) -> ListKey | None:
    return list_key(after) if isinstance(after, Instance) else after


# An in-memory store's key lives as long as the store: every engine over it shares it.
_MEMORY_KEYS: weakref.WeakKeyDictionary[MemoryStore, LocalKeys] = weakref.WeakKeyDictionary()


def _memory_keys(store: MemoryStore) -> LocalKeys:
    keys = _MEMORY_KEYS.get(store)
    if keys is None:
        keys = _MEMORY_KEYS[store] = LocalKeys()
    return keys


# Refusals another role might not get: try the caller's next role.
_ROLE_DEPENDENT = frozenset({"role", "data", "guard"})


def _lookup(uow: SealedUnitOfWork) -> Lookup:
    # Rules read other instances through the unit of work, so what they see is what the
    # transaction sees; they get no way to write.
    def lookup(instance_id: str) -> Instance | None:
        try:
            return uow.instances.get(instance_id)
        except InstanceNotFound:
            return None

    return lookup


def _choose(
    wf: CompiledWorkflow,
    current: Instance,
    roles: Sequence[str],
    *,
    trigger: str,
    actor: str,
    supplied: Mapping[str, Any],
    now: datetime,
    reason: str | None,
    lookup: Lookup,
    policy: Policy,
) -> tuple[str, Applied | Refused]:
    # The caller's roles in the order of the workflow's `roles:` mapping (roles it does
    # not declare last: they can only be refused, as "role").
    declared = wf.definition.roles
    ordered = [r for r in declared if r in roles] + [
        r for r in roles if r not in declared and _fires_any(wf, r)
    ]
    if not ordered:
        # No role of the workflow: refuse before anything about the instance (its state,
        # its triggers) can show in the reason.
        return roles[0], Refused("role", f"no role of {wf.id!r} among {', '.join(roles)}")
    refusals: list[tuple[str, Refused]] = []
    for role in ordered:
        outcome = decide(
            wf,
            instance_id=current.id,
            state=current.state,
            data=current.data,
            trigger=trigger,
            actor=actor,
            role=role,
            supplied=supplied,
            now=now,
            reason=reason,
            lookup=lookup,
            policy=policy,
        )
        if isinstance(outcome, Applied) or outcome.kind not in _ROLE_DEPENDENT:
            return role, outcome  # applied, or refused whatever the role
        refusals.append((role, outcome))
    # Refused under every role: the first role allowed to fire the trigger says the
    # most (its data or guard failure), else the first role's "may not".
    allowed = [(r, o) for r, o in refusals if o.kind != "role"]
    return (allowed or refusals)[0]


def _chosen_id_problem(wf: CompiledWorkflow, instance_id: str) -> str | None:
    if wf.definition.as_register is None:
        return f"instance_id: only a register's entries take a chosen id ({wf.id!r} is no register)"
    if ENTRY_ID.fullmatch(instance_id) is None:
        return (
            f"instance_id: {instance_id!r} is not an entry id (lowercase letters, digits, "
            "'_', '.', '-'; at most 64, starting with a letter or digit)"
        )
    return None


def _newer(catalog: Catalog, wf: CompiledWorkflow) -> str:
    latest = catalog.get(wf.id)
    if latest.version == wf.version or catalog.is_retired(latest.id, latest.version):
        return ""
    return f" (version {latest.version} does)"


def _fires_any(wf: CompiledWorkflow, role: str) -> bool:
    # A role the `roles:` mapping leaves out may still fire (the scheduler's escalations).
    return any(role in o.roles for options in wf.options.values() for o in options)
