"""The recipients directory: who holds which role, how to reach them, and webhook endpoints.

A YAML file (see ``config/recipients.example.yaml``), validated with every problem located as
``path:line:column``. :class:`DirectoryFile` re-reads it when it changes on disk; a changed
file that is invalid is reported and ignored, so the last good directory stays in force.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from structlog.typing import FilteringBoundLogger

from opcatflow.engine.errors import DefinitionError, OpcatflowError, Problem
from opcatflow.engine.logs import default_logger
from opcatflow.engine.validation import pydantic_problems
from opcatflow.engine.yamlsource import Located, load_yaml
from opcatflow.notifications.redaction import Audience

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$", max_length=200)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
RoleRef = Annotated[str, Field(pattern=r"^([a-z][a-z0-9_]*\.)?[a-z][a-z0-9_]*$", max_length=129)]
Locale = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
PERSON_CHANNELS = ("email", "log", "file")
EVENT_TYPES = ("started", "transition", "deadline")


class ConfigError(OpcatflowError):
    """A notifications configuration file is invalid; ``problems`` lists every problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_email(value: str | None) -> str | None:
    if value is not None and not EMAIL.match(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


class Person(_Model):
    """Someone who receives notifications."""

    id: Id
    name: str = Field(min_length=1, max_length=200)
    email: str | None = None
    locale: Locale | None = Field(None, description="Default: the directory's default locale.")
    channel: Literal["email", "log", "file"] | None = Field(
        None, description="Preferred channel. Default: the directory's default channel."
    )
    roles: list[RoleRef] = Field(
        default_factory=list, description="'role' (in every workflow) or 'workflow.role'."
    )
    body: str | None = Field(None, max_length=200, description="Organisation, for do-no-harm.")
    consent_uses: list[Name] = Field(
        default_factory=list, description="Consent uses that cover sending personal data here."
    )
    active: bool = True

    _email = field_validator("email")(check_email)


class Webhook(_Model):
    """An endpoint that receives every matching event as a signed CloudEvent."""

    id: Id
    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2000)
    secret: str | None = Field(None, description="'whsec_' + base64, as Standard Webhooks says.")
    secret_env: str | None = Field(None, description="Read the secret from this variable.")
    workflows: list[Name] | None = Field(None, description="Only these workflows; default all.")
    events: list[Literal["started", "transition", "deadline"]] | None = Field(
        None, description="Only these kinds of event; default all."
    )

    @model_validator(mode="after")
    def _secret(self) -> Self:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError("give exactly one of 'secret' and 'secret_env'")
        return self


class Defaults(_Model):
    locale: Locale = "en"
    channel: Literal["email", "log", "file"] = "email"


class DirectorySpec(_Model):
    """The file's shape."""

    defaults: Defaults = Field(default_factory=Defaults)
    people: list[Person] = Field(default_factory=list)
    webhooks: list[Webhook] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Target:
    """One resolved recipient of one message.

    Attributes:
        key: stable identity (person id, ``address:...``, endpoint id) for idempotency keys.
        channel: ``email``, ``log``, ``file`` or ``webhook``.
        address: the email address, when the channel is email.
    """

    key: str
    channel: str
    name: str
    address: str | None
    locale: str
    audience: Audience


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    url: str
    secret: bytes
    workflows: frozenset[str] | None
    events: frozenset[str] | None

    def wants(self, workflow: str, kind: str) -> bool:
        return (self.workflows is None or workflow in self.workflows) and (
            self.events is None or kind in self.events
        )


def decode_secret(secret: str) -> bytes:
    """The key of a Standard Webhooks secret (``whsec_`` + base64).

    Raises:
        ValueError: not base64, or shorter than 24 bytes.
    """
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    if len(key) < 24:
        raise ValueError("a webhook secret needs at least 24 bytes of key (32 recommended)")
    return key


class Directory:
    """A validated recipients directory."""

    def __init__(self, spec: DirectorySpec, endpoints: Sequence[Endpoint]) -> None:
        self.spec = spec
        self.defaults = spec.defaults
        self.people = {p.id: p for p in spec.people}
        self.endpoints = {e.id: e for e in endpoints}

    def current(self) -> Directory:
        return self

    def person_target(self, person: Person) -> Target | None:
        channel = person.channel or self.defaults.channel
        if channel == "email" and person.email is None:
            return None
        return Target(
            key=person.id,
            channel=channel,
            name=person.name,
            address=person.email if channel == "email" else None,
            locale=person.locale or self.defaults.locale,
            audience=Audience(person.body, frozenset(person.consent_uses)),
        )

    def with_role(self, workflow: str, role: str) -> list[Target]:
        """Every active person who holds ``role`` in ``workflow``."""
        wanted = {role, f"{workflow}.{role}"}
        found = []
        for person in self.people.values():
            if person.active and wanted & set(person.roles):
                target = self.person_target(person)
                if target is not None:
                    found.append(target)
        return found

    def by_ids(self, ids: Iterable[str]) -> tuple[list[Target], list[str]]:
        """The people with these ids, and the ids that are unknown or unreachable."""
        found, missing = [], []
        for pid in ids:
            person = self.people.get(pid)
            target = self.person_target(person) if person and person.active else None
            if target is None:
                missing.append(pid)
            else:
                found.append(target)
        return found, missing

    def subscribers(self, workflow: str, kind: str) -> list[Endpoint]:
        return [e for e in self.endpoints.values() if e.wants(workflow, kind)]


EMPTY = Directory(DirectorySpec(), ())


class DirectorySource(Protocol):
    """Where the current directory comes from (a :class:`Directory` is its own source)."""

    def current(self) -> Directory: ...


def parse_directory(
    text: str, path: str, environ: Callable[[str], str | None] = os.environ.get
) -> Directory:
    """Parse and validate directory text.

    Raises:
        ConfigError: every problem, located.
    """
    try:
        doc = load_yaml(text, path)
    except DefinitionError as err:
        raise ConfigError(err.problems) from None
    if not isinstance(doc.value, dict):
        raise ConfigError([Problem(path, 1, 1, "the recipients directory must be a mapping")])
    try:
        spec = DirectorySpec.model_validate(doc.value)
    except ValidationError as err:
        raise ConfigError(pydantic_problems(doc, err)) from None
    problems, endpoints = _check(doc, spec, environ)
    if problems:
        raise ConfigError(problems)
    return Directory(spec, endpoints)


def _check(
    doc: Located, spec: DirectorySpec, environ: Callable[[str], str | None]
) -> tuple[list[Problem], list[Endpoint]]:
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, person in enumerate(spec.people):
        if person.id in seen:
            problems.append(
                doc.problem(("people", i, "id"), f"person id {person.id!r} is used twice")
            )
        seen[person.id] = i
        channel = person.channel or spec.defaults.channel
        if channel == "email" and person.email is None:
            problems.append(
                doc.problem(("people", i), f"{person.id!r} is reached by email but has no 'email'")
            )
    endpoints = []
    ids: set[str] = set()
    for i, hook in enumerate(spec.webhooks):
        at = ("webhooks", i)
        if hook.id in ids:
            problems.append(doc.problem((*at, "id"), f"webhook id {hook.id!r} is used twice"))
        ids.add(hook.id)
        secret = hook.secret
        if hook.secret_env is not None:
            secret = environ(hook.secret_env)
            if not secret:
                problems.append(
                    doc.problem(
                        (*at, "secret_env"), f"environment variable {hook.secret_env} is not set"
                    )
                )
                continue
        assert secret is not None
        try:
            key = decode_secret(secret)
        except ValueError as err:
            loc = (*at, "secret" if hook.secret is not None else "secret_env")
            problems.append(doc.problem(loc, str(err)))
            continue
        endpoints.append(
            Endpoint(
                hook.id,
                hook.url,
                key,
                frozenset(hook.workflows) if hook.workflows is not None else None,
                frozenset(hook.events) if hook.events is not None else None,
            )
        )
    return problems, endpoints


def load_directory(path: str | Path) -> Directory:
    """Read and validate a directory file. Raises: ConfigError."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([Problem(str(path), 1, 1, f"cannot read: {err}")]) from None
    return parse_directory(text, str(path))


class DirectoryFile:
    """A directory file, re-read when it changes (checked at most every ``interval`` seconds).

    Args:
        path: the YAML file.
        interval: seconds between checks of the file's modification time and size.
        logger: where a changed but invalid file is reported.
        timer: monotonic seconds.

    Raises:
        ConfigError: the file is invalid when first read.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        interval: float = 1.0,
        logger: FilteringBoundLogger | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.interval = interval
        self.log = logger or default_logger("opcatflow.notifications")
        self.timer = timer
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._directory = load_directory(self.path)
        self._checked = timer()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def current(self) -> Directory:
        """The directory, re-read first if the file changed since the last look."""
        now = self.timer()
        if now - self._checked < self.interval:
            return self._directory
        with self._lock:
            self._checked = now
            stamp = self._stat()
            if stamp != self._stamp:
                self._stamp = stamp
                self.reload()
            return self._directory

    def reload(self) -> bool:
        """Re-read the file now; on a problem keep the last good directory and log it."""
        try:
            directory = load_directory(self.path)
        except ConfigError as err:
            self.log.error(
                "recipients_directory_invalid",
                path=str(self.path),
                problems=[str(p) for p in err.problems],
                kept="the last valid directory",
            )
            return False
        self._directory = directory
        self.log.info(
            "recipients_directory_loaded", path=str(self.path), people=len(directory.people)
        )
        return True
