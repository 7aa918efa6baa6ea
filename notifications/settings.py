"""The notifications settings file: where the directory and templates are, how to reach the
SMTP server, the file channel's path, the dispatcher's policy and the render budget.

See ``config/notifications.example.yaml``. Relative paths are read from the file's folder.
Passwords are never written in the file: ``password_env`` names an environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from opcatflow.engine.errors import DefinitionError, Problem
from opcatflow.engine.limits import TEMPLATE_OUTPUT, TEMPLATE_SECONDS
from opcatflow.engine.sandbox import Limits
from opcatflow.engine.validation import pydantic_problems
from opcatflow.engine.yamlsource import load_yaml
from opcatflow.notifications.directory import ConfigError, check_email
from opcatflow.notifications.dispatcher import DispatchPolicy

ENV = "OPCATFLOW_NOTIFICATIONS"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmtpSettings(_Model):
    host: str = "localhost"
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = Field(False, description="Upgrade the connection with STARTTLS.")
    ssl: bool = Field(False, description="Connect over TLS from the start (port 465).")
    username: str | None = None
    password_env: str | None = Field(None, description="Environment variable with the password.")
    sender: str = Field(description="The From address, e.g. 'NPM <noreply@npm.example>'.")
    timeout: float = Field(10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _tls(self) -> Self:
        if self.ssl and self.starttls:
            raise ValueError("choose 'ssl' or 'starttls', not both")
        if (self.username is None) != (self.password_env is None):
            raise ValueError("give both 'username' and 'password_env', or neither")
        return self

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        check_email(value.rsplit("<", 1)[-1].rstrip(">").strip())
        return value


class WebhookSettings(_Model):
    timeout: float = Field(10.0, gt=0, le=120, description="Seconds for connect, read and write.")


class FileSettings(_Model):
    path: str = Field(description="JSON Lines file the file channel appends to.")


class DispatchSettings(_Model):
    max_attempts: int = Field(8, ge=1, le=100)
    backoff_base: float = Field(30.0, gt=0, description="Seconds before the second attempt.")
    backoff_max: float = Field(3600.0, gt=0)
    lease: float = Field(300.0, gt=0, description="Seconds a claimed message stays reserved.")
    batch_size: int = Field(50, ge=1, le=10_000)
    idle: float = Field(2.0, gt=0, description="Seconds to wait when nothing is due.")

    def policy(self) -> DispatchPolicy:
        return DispatchPolicy(
            max_attempts=self.max_attempts,
            backoff_base=self.backoff_base,
            backoff_max=max(self.backoff_max, self.backoff_base),
            lease=self.lease,
            batch_size=self.batch_size,
        )


class RenderSettings(_Model):
    seconds: float = Field(TEMPLATE_SECONDS, gt=0, le=30)
    output: int = Field(TEMPLATE_OUTPUT, ge=1_000, le=10_000_000)

    def limits(self) -> Limits:
        return Limits(seconds=self.seconds, size=self.output)


class NotificationSettings(_Model):
    """The whole file."""

    directory: str = Field(description="The recipients directory file.")
    templates: list[str] = Field(
        default_factory=list, description="Folders searched before the bundled templates."
    )
    languages: list[str] = Field(
        default_factory=lambda: ["en"],
        min_length=1,
        description="The languages the NPM writes to people in: 'validate' requires every "
        "template a workflow names (notifications and overdue alerts) in each of them.",
    )
    smtp: SmtpSettings | None = None
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    file: FileSettings | None = None
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    render: RenderSettings = Field(default_factory=RenderSettings)

    _base: Path = PrivateAttr(default_factory=Path)  # relative paths are read from here

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self._base / p

    @property
    def directory_path(self) -> Path:
        return self.path(self.directory)

    @property
    def template_folders(self) -> list[Path]:
        return [self.path(t) for t in self.templates]


def load_settings(
    path: str | Path, environ: Callable[[str], str | None] = os.environ.get
) -> NotificationSettings:
    """Read and validate a settings file.

    Raises:
        ConfigError: every problem, located.
    """
    path = Path(path)
    try:
        text = path.read_text("utf-8")
        doc = load_yaml(text, str(path))
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([Problem(str(path), 1, 1, f"cannot read: {err}")]) from None
    except DefinitionError as err:
        raise ConfigError(err.problems) from None
    if not isinstance(doc.value, dict):
        raise ConfigError([Problem(str(path), 1, 1, "the settings must be a mapping")])
    try:
        settings = NotificationSettings.model_validate(doc.value)
    except ValidationError as err:
        raise ConfigError(pydantic_problems(doc, err)) from None
    settings._base = path.resolve().parent
    problems = []
    smtp = settings.smtp
    if smtp is not None and smtp.password_env is not None and not environ(smtp.password_env):
        problems.append(
            doc.problem(
                ("smtp", "password_env"), f"environment variable {smtp.password_env} is not set"
            )
        )
    for i, folder in enumerate(settings.template_folders):
        if not folder.is_dir():
            problems.append(doc.problem(("templates", i), f"no such folder: {folder}"))
    if problems:
        raise ConfigError(problems)
    return settings
