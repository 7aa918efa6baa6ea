"""Message templates: one file per message and locale, rendered in a bounded sandbox.

A template is ``<message>.<locale>.jinja`` with three blocks: ``subject`` (one line), ``text``
(the plain-text body) and ``html`` (the HTML body; optional). The HTML block is rendered with
autoescaping on, the others with it off, from the same file. Operators' folders are searched
before the bundled ``templates/`` folder, so a file there overrides the bundled one; edited
files are picked up on the next render.

What a template sees (every key is always present; StrictUndefined makes anything else an
error): see :data:`CONTEXT`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    nodes,
)
from jinja2 import meta as jinja_meta
from jinja2.environment import Template

from opcatflow.engine.sandbox import BoundedSandbox, Limits, budget

BUNDLED_TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_LOCALE = "en"
SUFFIX = ".jinja"
BLOCKS = ("subject", "text", "html")
SUBJECT_MAX = 250

#: The variables a template may read, and the keys of each (``data`` has the workflow's fields).
CONTEXT: dict[str, frozenset[str] | None] = {
    "workflow": frozenset({"id", "version", "title"}),
    "instance": frozenset({"id", "state", "state_label", "version", "parent_id", "created_at"}),
    "event": frozenset(
        {
            "kind",
            "trigger",
            "trigger_label",
            "from_state",
            "from_label",
            "to_state",
            "to_label",
            "deadline",
            "deadline_label",
            "due_at",
            "due_on",
            "at",
            "actor",
            "role",
        }
    ),
    "recipient": frozenset({"name", "locale"}),
    "data": None,  # the workflow's fields
    "labels": None,  # field -> label
    "titles": None,  # field -> the title of the register entry it refers to
    "withheld": None,  # names of the personal fields withheld from this recipient
    "reason": None,  # the actor's reason, or None (withheld like a personal field)
}
_MAPPING_METHODS = frozenset({"items", "keys", "values", "get"})


class TemplateProblem(Exception):
    """A template is missing, does not compile, or failed to render (with the reason).

    ``missing`` says the file was not found (it may be on its way: a deployment), as opposed
    to a template that is broken.
    """

    def __init__(self, message: str, *, missing: bool = False) -> None:
        self.missing = missing
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Rendered:
    """One rendered message."""

    subject: str
    text: str
    html: str | None
    locale: str


class TemplateSet:
    """The templates in the operator's folders and the bundled folder, by message and locale.

    Args:
        folders: operator folders, searched in order before the bundled one.
        limits: the budget of one render.
        timer: the monotonic clock renders are timed with.
        include_bundled: also search the bundled templates (tests turn it off).
    """

    def __init__(
        self,
        folders: Sequence[str | Path] = (),
        *,
        limits: Limits | None = None,
        timer: Callable[[], float] = time.monotonic,
        include_bundled: bool = True,
    ) -> None:
        self.folders = [Path(f) for f in folders]
        if include_bundled:
            self.folders.append(BUNDLED_TEMPLATES)
        self.limits = limits or Limits()
        self.timer = timer
        loader = FileSystemLoader([str(f) for f in self.folders])
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": StrictUndefined,
            "auto_reload": True,
            "keep_trailing_newline": False,
            "trim_blocks": True,
            "lstrip_blocks": True,
        }
        self._catalogue: tuple[tuple[int, ...], dict[str, dict[str, Path]]] | None = None
        self._plain = BoundedSandbox(autoescape=False, **common)
        self._html = BoundedSandbox(autoescape=True, **common)

    # -- what there is -------------------------------------------------------------------

    def _files(self) -> Iterable[tuple[str, str, Path]]:
        for folder in self.folders:
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob(f"*{SUFFIX}")):
                parts = path.name[: -len(SUFFIX)].split(".")
                if len(parts) == 2:
                    yield parts[0], parts[1], path

    def catalogue(self) -> dict[str, dict[str, Path]]:
        """Message name -> locale -> the file used (operator folders first).

        Listed again only when a folder changes (a file added, removed or renamed).
        """
        stamp = tuple(_mtime(f) for f in self.folders)
        cached = self._catalogue
        if cached is not None and cached[0] == stamp:
            return cached[1]
        found: dict[str, dict[str, Path]] = {}
        for name, locale, path in self._files():
            found.setdefault(name, {}).setdefault(locale, path)
        self._catalogue = (stamp, found)
        return found

    def names(self) -> set[str]:
        """Messages that have an English (fallback) file."""
        return {n for n, locales in self.catalogue().items() if DEFAULT_LOCALE in locales}

    def resolve_locale(self, name: str, locale: str | None) -> str:
        """The locale whose file is used: ``fr-CA`` -> ``fr-CA``, ``fr``, then English."""
        locales = self.catalogue().get(name, {})
        wanted = (locale or DEFAULT_LOCALE).replace("_", "-")
        for candidate in (wanted, wanted.split("-")[0].lower(), DEFAULT_LOCALE):
            if candidate in locales:
                return candidate
        raise TemplateProblem(
            f"no template {name!r} (looked for {name}.{DEFAULT_LOCALE}{SUFFIX})", missing=True
        )

    # -- rendering ------------------------------------------------------------------------

    def _template(self, env: BoundedSandbox, name: str, locale: str) -> Template:
        try:
            return env.get_template(f"{name}.{locale}{SUFFIX}")
        except TemplateSyntaxError as err:
            raise TemplateProblem(f"{err.filename}:{err.lineno}: {err.message}") from err
        except TemplateNotFound as err:
            raise TemplateProblem(f"template {name}.{locale}{SUFFIX}: {err}", missing=True) from err
        except TemplateError as err:
            raise TemplateProblem(f"template {name}.{locale}{SUFFIX}: {err}") from err

    def render(self, name: str, locale: str | None, context: Mapping[str, Any]) -> Rendered:
        """Render a message for a recipient's locale (falling back to English).

        Raises:
            TemplateProblem: missing or broken template, an undefined variable, a sandbox
                refusal, or the render went past its budget.
        """
        used = self.resolve_locale(name, locale)
        plain = self._template(self._plain, name, used)
        html = self._template(self._html, name, used)
        try:
            with budget(self.limits, self.timer) as spent:
                subject = self._block(plain, "subject", context, spent)
                text = self._block(plain, "text", context, spent)
                body = self._block(html, "html", context, spent) if "html" in html.blocks else None
        except TemplateProblem:
            raise
        except Exception as err:  # StrictUndefined, SecurityError, limits, a filter's TypeError
            where = f"{name}.{used}{SUFFIX}"
            raise TemplateProblem(f"{where}: {type(err).__name__}: {err}") from err
        subject = " ".join(subject.split())
        if len(subject) > SUBJECT_MAX:
            subject = subject[: SUBJECT_MAX - 1] + "…"
        return Rendered(subject, text.strip() + "\n", body.strip() + "\n" if body else None, used)

    @staticmethod
    def _block(template: Template, block: str, context: Mapping[str, Any], spent: Any) -> str:
        render = template.blocks.get(block)
        if render is None:
            raise TemplateProblem(f"template {template.name} has no {{% block {block} %}}")
        out = []
        for chunk in render(template.new_context(dict(context))):
            spent.emit(len(chunk))
            out.append(chunk)
        return "".join(out)

    # -- checking -------------------------------------------------------------------------

    def check(self, name: str, fields: Iterable[str]) -> list[str]:
        """Problems of every locale's file of one message, for a workflow with ``fields``:
        missing, does not compile, lacks a block, or reads a variable or field that does not
        exist."""
        locales = self.catalogue().get(name, {})
        if DEFAULT_LOCALE not in locales:
            known = sorted(self.names())
            hint = f" (known: {', '.join(known)})" if known else ""
            return [f"unknown template {name!r}: no {name}.{DEFAULT_LOCALE}{SUFFIX}{hint}"]
        problems = []
        field_names = frozenset(fields)
        for _, path in sorted(locales.items()):
            problems += [f"{path.name}: {p}" for p in self._check_file(path, field_names)]
        return problems

    def _check_file(self, path: Path, fields: frozenset[str]) -> list[str]:
        try:
            source = path.read_text("utf-8")
            ast = self._plain.parse(source, path.name, str(path))
            self._plain.compile(source, path.name, str(path))
            self._html.compile(source, path.name, str(path))
        except TemplateSyntaxError as err:
            return [f"line {err.lineno}: {err.message}"]
        except (OSError, UnicodeDecodeError) as err:
            return [f"cannot read: {err}"]
        problems = []
        blocks = {b.name for b in ast.find_all(nodes.Block)}
        for block in ("subject", "text"):
            if block not in blocks:
                problems.append(f"no {{% block {block} %}}")
        problems += [f"unknown block {b!r} (use {', '.join(BLOCKS)})" for b in blocks - set(BLOCKS)]
        known = set(CONTEXT) | set(self._plain.globals)
        for name in sorted(jinja_meta.find_undeclared_variables(ast) - known):
            problems.append(f"unknown variable {name!r}")
        problems += _attribute_problems(ast, fields)
        return problems


def _mtime(folder: Path) -> int:
    try:
        return folder.stat().st_mtime_ns
    except OSError:
        return -1


def _attribute_problems(ast: nodes.Template, fields: frozenset[str]) -> list[str]:
    problems: list[str] = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        target = node.node
        if not isinstance(target, nodes.Name) or target.name not in CONTEXT:
            continue
        if isinstance(node, nodes.Getattr):
            key: object = node.attr
        elif isinstance(node.arg, nodes.Const):
            key = node.arg.value
        else:
            continue
        allowed = CONTEXT[target.name]
        if target.name in ("data", "labels", "titles"):
            if key in fields or key in _MAPPING_METHODS:
                continue
            problems.append(f"line {node.lineno}: {target.name}.{key} is not a field")
        elif allowed is not None and key not in allowed:
            known = ", ".join(sorted(allowed))
            problems.append(f"line {node.lineno}: {target.name} has no {key!r} (it has {known})")
    return problems
