"""Notifications assembled from a settings file: the outbox hook engines write through, the
channels, the dispatcher, and :func:`run_dispatcher` for a worker process.

The settings file is ``$OPCATFLOW_NOTIFICATIONS`` (or a path given explicitly); see
``config/notifications.example.yaml``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from structlog.typing import FilteringBoundLogger

from opcatflow.adapters.channels import FileChannel, LogChannel, SmtpChannel, WebhookChannel
from opcatflow.engine.clock import Clock, SystemClock
from opcatflow.engine.errors import DefinitionError, Problem
from opcatflow.engine.loader import Catalog, load_catalog
from opcatflow.engine.logs import default_logger
from opcatflow.engine.ports import Store
from opcatflow.engine.registry import Registry
from opcatflow.engine.runtime import Engine
from opcatflow.engine.sharing import Policy
from opcatflow.engine.sql import SQLAlchemyStore
from opcatflow.engine.worker import PeriodicJob
from opcatflow.notifications.channel import Channel
from opcatflow.notifications.check import check_catalog
from opcatflow.notifications.directory import ConfigError, DirectoryFile, DirectorySource
from opcatflow.notifications.dispatcher import Dispatcher
from opcatflow.notifications.outbox import OutboxWriter
from opcatflow.notifications.people import PersonRegister, PersonRegisterDirectory
from opcatflow.notifications.settings import ENV, NotificationSettings, load_settings
from opcatflow.notifications.templates import TemplateSet
from opcatflow.notifications.titles import title_fields


@dataclass
class Notifications:
    """The pieces one settings file describes."""

    settings: NotificationSettings
    directory: DirectorySource
    templates: TemplateSet
    logger: FilteringBoundLogger

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        logger: FilteringBoundLogger | None = None,
        register: PersonRegister | None = None,
    ) -> Notifications:
        """Read the settings, the recipients directory and the template folders; with
        ``register``, the directory's people come from the person register first, as it
        holds on the NPM's current day (:mod:`opcatflow.notifications.people`).

        Raises:
            ConfigError: the settings or the directory are invalid (every problem located).
        """
        log = logger or default_logger("opcatflow.notifications")
        settings = load_settings(path)
        directory: DirectorySource = DirectoryFile(settings.directory_path, logger=log)
        if register is not None:
            directory = PersonRegisterDirectory(register, directory)
        templates = TemplateSet(settings.template_folders, limits=settings.render.limits())
        return cls(settings, directory, templates, log)

    def writer(self, policy: Policy | None = None, catalog: Catalog | None = None) -> OutboxWriter:
        """The outbox hook; ``policy`` is the NPM's bodies (``Settings.policy``); the
        registers of ``catalog`` give templates the titles of the entries cases refer to."""
        titles = title_fields(catalog) if catalog is not None else None
        return OutboxWriter(self.directory, policy=policy, logger=self.logger, titles=titles)

    def check(self, catalog: Catalog) -> None:
        """Raises: DefinitionError when a definition's notifications name a missing template or
        read a variable that does not exist."""
        problems = check_catalog(catalog, self.templates, self.settings.languages)
        if problems:
            raise DefinitionError(problems)

    def channel_names(self) -> list[str]:
        """The channels :meth:`channels` builds."""
        s = self.settings
        names = ["log", "webhook"] + ["email"] * (s.smtp is not None)
        return sorted(names + ["file"] * (s.file is not None))

    def channels(self, *, clock: Clock | None = None) -> dict[str, Channel]:
        """Every channel the settings configure (``log`` always; ``webhook`` always, for the
        directory's endpoints; ``email`` with ``smtp``; ``file`` with ``file``)."""
        s = self.settings
        channels: dict[str, Channel] = {
            "log": LogChannel(self.logger),
            "webhook": WebhookChannel(self.directory, timeout=s.webhook.timeout, clock=clock),
        }
        if s.smtp is not None:
            password = os.environ.get(s.smtp.password_env) if s.smtp.password_env else None
            channels["email"] = SmtpChannel(
                s.smtp.host,
                s.smtp.port,
                sender=s.smtp.sender,
                starttls=s.smtp.starttls,
                use_ssl=s.smtp.ssl,
                username=s.smtp.username,
                password=password,
                timeout=s.smtp.timeout,
            )
        if s.file is not None:
            channels["file"] = FileChannel(s.path(s.file.path))
        return channels

    def dispatcher(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        channels: Mapping[str, Channel] | None = None,
        sharing: Policy | None = None,
    ) -> Dispatcher:
        return Dispatcher(
            store,
            channels if channels is not None else self.channels(clock=clock),
            templates=self.templates,
            directory=self.directory,
            policy=self.settings.dispatch.policy(),
            clock=clock,
            logger=self.logger,
            sharing=sharing,
        )


def settings_path(explicit: str | Path | None = None) -> Path | None:
    """The settings file: the one given, else ``$OPCATFLOW_NOTIFICATIONS``, else none."""
    if explicit is not None:
        return Path(explicit)
    value = os.environ.get(ENV)
    return Path(value) if value else None


def engine_hooks(
    workflows: Iterable[str | Path],
    registry: Registry,
    *,
    logger: FilteringBoundLogger | None = None,
    policy: Policy | None = None,
    register: PersonRegister | None = None,
) -> list[OutboxWriter]:
    """The hooks an application edge gives the engines it builds: the outbox writer when
    ``$OPCATFLOW_NOTIFICATIONS`` names a settings file, else none.

    Raises:
        ConfigError, DefinitionError: invalid settings, or templates the definitions need.
    """
    path = settings_path()
    if path is None:
        return []
    notifications = Notifications.load(path, logger=logger, register=register)
    catalog = load_catalog(workflows, registry)
    notifications.check(catalog)
    return [notifications.writer(policy, catalog)]


def template_problems(catalog: Catalog) -> list[Problem]:
    """What ``opcatflow validate`` adds: templates missing, broken, or reading unknown
    variables, from the operator's folders (when settings are configured) and the bundled
    ones."""
    path = settings_path()
    if path is None:
        return check_catalog(catalog, TemplateSet([]))
    settings = load_settings(path)
    return check_catalog(catalog, TemplateSet(settings.template_folders), settings.languages)


def worker_jobs(engine: Engine, *, logger: FilteringBoundLogger | None = None) -> list[PeriodicJob]:
    """The notification dispatcher as a job of ``opcatflow worker`` (every ``dispatch.idle``
    seconds it delivers what is due), when ``$OPCATFLOW_NOTIFICATIONS`` is set.

    Raises:
        ConfigError: invalid settings or directory.
    """
    path = settings_path()
    if path is None:
        return []
    register = PersonRegister(engine.store, engine.today)
    notifications = Notifications.load(path, logger=logger or engine.log, register=register)
    dispatcher = notifications.dispatcher(
        engine.store, clock=engine.clock, sharing=engine.settings.policy
    )
    return [PeriodicJob("notifications", dispatcher.drain, notifications.settings.dispatch.idle)]


def run_dispatcher(
    db_url: str,
    settings: str | Path | None = None,
    *,
    stop: threading.Event | None = None,
    clock: Clock | None = None,
    logger: FilteringBoundLogger | None = None,
    sharing: Policy | None = None,
) -> None:
    """Deliver the outbox of ``db_url`` until ``stop`` is set (for a worker process or
    thread). Several may run against one PostgreSQL database.

    Raises:
        ConfigError: no settings file, or an invalid one.
    """
    path = settings_path(settings)
    if path is None:
        raise ConfigError(
            [Problem("<environment>", 1, 1, f"no notifications settings: set {ENV}=FILE")]
        )
    store = SQLAlchemyStore(db_url)
    try:
        store.ensure_schema(create=False)
        policy, timer = sharing or Policy(), clock or SystemClock()
        register = PersonRegister(store, lambda: policy.today(timer.now()))
        notifications = Notifications.load(path, logger=logger, register=register)
        dispatcher = notifications.dispatcher(store, clock=clock, sharing=sharing)
        dispatcher.run(stop or threading.Event(), idle=notifications.settings.dispatch.idle)
    finally:
        store.close()
