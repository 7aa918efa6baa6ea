"""The opcatflow engine: definitions, compiled machines, the runtime, the store and the audit.

Embed it with :meth:`Engine.open`; see README.md for an example.
"""

from __future__ import annotations

from opcatflow.engine.audit import AuditRecord, ChainBreak, VerifyReport
from opcatflow.engine.clock import Clock, FrozenClock, SystemClock
from opcatflow.engine.compiled import CompiledWorkflow
from opcatflow.engine.definition import WorkflowDefinition
from opcatflow.engine.errors import (
    AmbiguousId,
    ConcurrentUpdate,
    DefinitionError,
    IdTooShort,
    InstanceErased,
    InstanceNotFound,
    InvalidData,
    InvalidFilter,
    InvalidText,
    KeyUnavailable,
    LimitExceeded,
    NotFound,
    OpcatflowError,
    Problem,
    RowsRefused,
    SchemaLocked,
    SchemaMismatch,
    StoreError,
    TransitionRefused,
    VersionRetired,
    WorkflowNotFound,
)
from opcatflow.engine.events import DeadlineEvent, TransactionHook, TransitionEvent
from opcatflow.engine.instance import Instance, TriggerOption
from opcatflow.engine.loader import Catalog, compile_text, load_catalog
from opcatflow.engine.memory import MemoryStore
from opcatflow.engine.ports import DuplicateKey, Store, UnitOfWork
from opcatflow.engine.registry import GuardRefusal, Registry, RuleContext
from opcatflow.engine.runtime import Engine, FireResult, Started
from opcatflow.engine.sql import SQLAlchemyStore

__all__ = [
    "AmbiguousId",
    "AuditRecord",
    "Catalog",
    "ChainBreak",
    "Clock",
    "CompiledWorkflow",
    "ConcurrentUpdate",
    "DeadlineEvent",
    "DefinitionError",
    "DuplicateKey",
    "Engine",
    "FireResult",
    "FrozenClock",
    "GuardRefusal",
    "IdTooShort",
    "Instance",
    "InstanceErased",
    "InstanceNotFound",
    "InvalidData",
    "InvalidFilter",
    "InvalidText",
    "KeyUnavailable",
    "LimitExceeded",
    "MemoryStore",
    "NotFound",
    "OpcatflowError",
    "Problem",
    "Registry",
    "RowsRefused",
    "RuleContext",
    "SQLAlchemyStore",
    "SchemaLocked",
    "SchemaMismatch",
    "Started",
    "Store",
    "StoreError",
    "SystemClock",
    "TransactionHook",
    "TransitionEvent",
    "TransitionRefused",
    "TriggerOption",
    "UnitOfWork",
    "VerifyReport",
    "VersionRetired",
    "WorkflowDefinition",
    "WorkflowNotFound",
    "compile_text",
    "load_catalog",
]
