"""Safe YAML loading that remembers where every value came from.

PyYAML's composer gives a node tree with marks; we build plain Python values from it
ourselves, so no constructor (and no custom tag) ever runs, alias expansion is counted and
bounded, and every key path maps to its line and column for error messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from opcatflow.engine.errors import DefinitionError, Problem
from opcatflow.engine.limits import YAML_BYTES, YAML_DEPTH, YAML_NODES

MAX_BYTES = YAML_BYTES.maximum
MAX_NODES = YAML_NODES.maximum

Path = tuple[str | int, ...]

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
}
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


@dataclass
class Located:
    """A YAML document as plain values, plus the position of every key path in it."""

    path: str
    value: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def where(self, loc: Path) -> tuple[int, int]:
        """Line and column (1-based) of ``loc``, or of its nearest located ancestor."""
        while loc not in self.positions and loc:
            loc = loc[:-1]
        return self.positions.get(loc, (1, 1))

    def problem(self, loc: Path, message: str) -> Problem:
        line, column = self.where(loc)
        return Problem(self.path, line, column, message)


class _Composer(Composer, Resolver):
    """PyYAML's composer, refusing collections nested deeper than the limit as it meets them
    (it recurses once per level: 50,000 levels would be a RecursionError). No constructor runs:
    values are built by _Builder. The events come from a parser mixed in below."""

    peek_event: Callable[[], yaml.Event | None]

    def __init__(self, path: str) -> None:
        Composer.__init__(self)
        Resolver.__init__(self)
        self.path = path
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        nested = isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent)
        if nested:
            self.depth += 1
            if self.depth > YAML_DEPTH.maximum:
                mark = event.start_mark  # type: ignore[union-attr]  # nested: not None
                line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
                message = f"collections nested too deep: over the {YAML_DEPTH.describe()}"
                raise DefinitionError([Problem(self.path, line, column, message)])
        try:
            return super().compose_node(parent, index)
        finally:
            if nested:
                self.depth -= 1


class _PythonLoader(_Composer, Reader, Scanner, Parser):
    def __init__(self, text: str, path: str) -> None:
        Reader.__init__(self, text)  # refuses control characters before any parsing
        Scanner.__init__(self)
        Parser.__init__(self)
        _Composer.__init__(self, path)


if yaml.__with_libyaml__:
    from yaml.cyaml import CParser  # type: ignore[attr-defined]

    class _LibyamlLoader(_Composer, CParser):
        """libyaml's scanner and parser: about 18x the pure-Python ones on our definitions."""

        def __init__(self, text: str, path: str) -> None:
            CParser.__init__(self, text)
            _Composer.__init__(self, path)

    _Loader: type[_Composer] = _LibyamlLoader
else:  # pragma: no cover - PyYAML built without libyaml
    _Loader = _PythonLoader


class _Builder:
    def __init__(self, located: Located) -> None:
        self.located = located
        self.count = 0
        self.constructor = yaml.SafeLoader.__new__(yaml.SafeLoader)
        yaml.SafeLoader.__init__(self.constructor, "")

    def build(self, node: yaml.Node, loc: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise DefinitionError(
                [self.located.problem(loc, f"document expands to more than {MAX_NODES} nodes")]
            )
        mark = node.start_mark
        self.located.positions.setdefault(loc, (mark.line + 1, mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            self._check_tag(node, _MAP_TAG, loc)
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                # Keys are names: read them as written, so YAML 1.1 does not turn `on` or `no`
                # into booleans.
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, str):
                    raise DefinitionError(
                        [self._problem(key_node, f"keys must be strings, not {key!r}")]
                    )
                if key in result:
                    raise DefinitionError([self._problem(key_node, f"duplicate key {key!r}")])
                # Point at a scalar or flow value itself; at the key for a block collection,
                # whose first item is on another line.
                block = not isinstance(value_node, yaml.ScalarNode) and not value_node.flow_style
                mark = key_node.start_mark if block else value_node.start_mark
                self.located.positions[(*loc, key)] = (mark.line + 1, mark.column + 1)
                result[key] = self.build(value_node, (*loc, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, _SEQ_TAG, loc)
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        if node.tag not in _SCALAR_TAGS:
            raise DefinitionError([self._problem(node, f"tag {node.tag} is not allowed")])
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value  # dates stay text; the schema layer parses them with context
        if node.tag == "tag:yaml.org,2002:bool" and node.value.lower() not in ("true", "false"):
            return node.value  # YAML 1.2 booleans only: `no` (Norway) and `on` stay text
        return self.constructor.construct_object(node, deep=True)

    def _check_tag(self, node: yaml.Node, tag: str, loc: Path) -> None:
        if node.tag != tag:
            raise DefinitionError([self._problem(node, f"tag {node.tag} is not allowed")])

    def _problem(self, node: yaml.Node, message: str) -> Problem:
        m = node.start_mark
        return Problem(self.located.path, m.line + 1, m.column + 1, message)


def load_yaml(text: str, path: str) -> Located:
    """Parse one YAML document safely.

    Raises:
        DefinitionError: on a syntax error, a disallowed tag, a document too large or nested
            too deep, or an alias bomb; the single problem names the position.
    """
    located = Located(path, None)
    if len(text.encode()) > MAX_BYTES:
        raise DefinitionError([Problem(path, 1, 1, f"file is larger than {MAX_BYTES} bytes")])
    try:
        node = _compose(_Loader, text, path)
    except _NotYaml:
        # The pure-Python parser reads a broken file again, for its messages: they say what
        # it expected and found ("expected ',' or ']', but got '<stream end>'") where
        # libyaml's do not, and it names the first level over our nesting limit where libyaml
        # stops at its own (1000) while scanning ahead. Only a broken file pays for this.
        node = _compose(_PythonLoader, text, path)
    if node is None:
        raise DefinitionError([Problem(path, 1, 1, "file is empty")])
    located.value = _Builder(located).build(node, ())
    return located


class _NotYaml(Exception):
    """libyaml found the text is not YAML."""


def _compose(loader_class: type[_Composer], text: str, path: str) -> yaml.Node | None:
    try:
        loader = loader_class(text, path)  # type: ignore[call-arg]
    except yaml.YAMLError as err:
        message = " ".join(str(err).split())
        raise DefinitionError([Problem(path, 1, 1, f"YAML: {message}")]) from err
    try:
        return loader.get_single_node()
    except yaml.YAMLError as err:
        if loader_class is not _PythonLoader:
            raise _NotYaml from err
        if not isinstance(err, yaml.MarkedYAMLError):
            raise DefinitionError([Problem(path, 1, 1, f"YAML: {err}")]) from err
        mark = err.problem_mark or err.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise DefinitionError([Problem(path, line, column, f"YAML: {err.problem}")]) from err
    finally:
        loader.dispose()  # type: ignore[attr-defined]
