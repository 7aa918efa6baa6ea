"""Safe YAML loading that remembers where every value came from.

PyYAML's composer gives a node tree with marks; we build plain Python values from it
ourselves, so no constructor (and no custom tag) ever runs, alias expansion is counted and
bounded, and every key path maps to its line and column for error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

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


class _Loader(yaml.SafeLoader):
    """PyYAML's safe composer, refusing collections nested deeper than the limit as it meets
    them (its composer recurses once per level: 50,000 levels would be a RecursionError)."""

    def __init__(self, text: str, path: str) -> None:
        super().__init__(text)
        self.path = path
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        nested = isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent)
        if nested:
            self.depth += 1
            if self.depth > YAML_DEPTH.maximum:
                mark = event.start_mark
                message = f"collections nested too deep: over the {YAML_DEPTH.describe()}"
                raise DefinitionError([Problem(self.path, mark.line + 1, mark.column + 1, message)])
        try:
            return super().compose_node(parent, index)
        finally:
            if nested:
                self.depth -= 1


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
        # The reader refuses control characters as it is built, before any parsing.
        loader = _Loader(text, path)
    except yaml.YAMLError as err:
        message = " ".join(str(err).split())
        raise DefinitionError([Problem(path, 1, 1, f"YAML: {message}")]) from err
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise DefinitionError([Problem(path, line, column, f"YAML: {err.problem}")]) from err
    except yaml.YAMLError as err:
        raise DefinitionError([Problem(path, 1, 1, f"YAML: {err}")]) from err
    finally:
        loader.dispose()
    if node is None:
        raise DefinitionError([Problem(path, 1, 1, "file is empty")])
    located.value = _Builder(located).build(node, ())
    return located
