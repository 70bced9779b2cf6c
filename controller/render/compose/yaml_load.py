"""Read a stack file's YAML into plain Python data, strictly, with the line of every key.

Why not ``yaml.safe_load``: PyYAML implements YAML 1.1, where ``on``/``yes``/``no`` are booleans,
``8080:80`` is a base-60 integer and ``1e3`` is a string, and a repeated key silently replaces the
first. docker's compose loader is YAML 1.2-like (go-yaml v3) and its users expect that. So we let
PyYAML *compose* the node graph (a SafeLoader subclass that leaves plain scalars unresolved) and
build the data ourselves:

- plain scalars follow the YAML 1.2 core schema: ``null ~`` and empty -> None; ``true/false`` (3
  casings) -> bool; decimal, ``0x``, ``0o`` ints; 1.2 floats incl. ``1e3``, ``.inf``, ``.nan``.
  Everything else (``yes``, ``on``, ``1:30``) stays a string, and so does ``0755`` (octal in
  1.1, decimal in 1.2: the field decides, see ``schema.Mode``). Numbers come back as
  :class:`YamlInt` / :class:`YamlFloat`, which remember their source text so a value used as a
  string (``VERSION: 1.10``) keeps its spelling; the schema pass turns them into plain numbers;
- merge keys ``<<`` (one mapping or a list of them; explicit keys win, earlier maps win);
- a key repeated in one mapping (including two ``<<``) is an error at the line of the repeat;
- every key and list item gets a dotted path (``services.web.ports.0``) -> 1-based line;
- Compose's override tags (compose-spec ``merge.md``): ``!reset`` gives :data:`RESET` and
  ``!override`` wraps its value in :class:`Override`; ``controller.render.compose.merge`` applies and
  removes them.
"""
from __future__ import annotations

import math
import re
from typing import Any, Dict, List, Tuple

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from controller.errors import ManifestError

# Guards against alias bombs ("billion laughs") and deep nesting: a real stack file builds a few
# thousand values, nested less than 10 deep. Both are checked on the composed node graph before
# anything is built, so a bomb costs a walk of its distinct nodes, not its expansion (issue 7).
MAX_VALUES = 200_000
MAX_DEPTH = 64

_PLAIN = "!keelson/plain"  # tag we give plain scalars so we resolve them ourselves
_STR, _INT, _FLOAT, _BOOL, _NULL, _MERGE = (
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "merge"))
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")
_TRUE_RE = re.compile(r"^(?:true|True|TRUE)$")
_FALSE_RE = re.compile(r"^(?:false|False|FALSE)$")
_INT_DEC_RE = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")
_LEADING_ZERO_RE = re.compile(r"^[-+]?0[0-9]+$")
_INT_HEX_RE = re.compile(r"^0x[0-9a-fA-F]+$")
_INT_OCT_RE = re.compile(r"^0o[0-7]+$")
_FLOAT_RE = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF_RE = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN_RE = re.compile(r"^\.(?:nan|NaN|NAN)$")


class YamlInt(int):
    """An int read from YAML that remembers its source ``text`` (``0x1F``, ``+3``)."""

    text: str

    def __new__(cls, value: int, text: str) -> "YamlInt":
        obj = super().__new__(cls, value)
        obj.text = text
        return obj


class YamlFloat(float):
    """A float read from YAML that remembers its source ``text`` (``0.50``, ``1e3``)."""

    text: str

    def __new__(cls, value: float, text: str) -> "YamlFloat":
        obj = super().__new__(cls, value)
        obj.text = text
        return obj


class PlainText(str):
    """A plain (unquoted) scalar kept as a string that YAML 1.1 would read as a number
    (``0755``: octal 493 there); ``docker_numbers`` warns where docker would differ."""


class _Reset:
    """The value of a ``!reset`` node: the key (or list item) is removed when files merge."""

    def __repr__(self) -> str:
        return "RESET"


RESET = _Reset()
_RESET_TAG, _OVERRIDE_TAG = "!reset", "!override"


class Override:
    """The value of an ``!override`` node: it replaces the earlier file's value, unmerged.

    Attributes:
        value: the node's value, built as if it had no tag.
    """

    def __init__(self, value: Any):
        self.value = value

    def __repr__(self) -> str:
        return f"Override({self.value!r})"


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that composes nodes but does not resolve plain scalars (we do, as YAML 1.2),
    and refuses nesting deeper than ``MAX_DEPTH`` while composing (PyYAML's composer recurses,
    so a deep document would otherwise end in RecursionError)."""

    _depth = 0

    def compose_node(self, parent, index):  # noqa: D401 - PyYAML hook
        """Compose one node, counting how deep the document nests."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ManifestError(f"the document nests more than {MAX_DEPTH} levels deep",
                                    line=mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def resolve(self, kind, value, implicit):  # noqa: D401 - PyYAML hook
        """Tag plain scalars with a private tag; keep PyYAML's choice for everything else."""
        if kind is ScalarNode and implicit[0]:
            return _PLAIN
        return super().resolve(kind, value, implicit)


def resolve_plain(text: str) -> Any:
    """Give a plain (unquoted) scalar its YAML 1.2 core-schema value.

    Args:
        text: the scalar as written.
    Returns:
        None, bool, YamlInt, YamlFloat, or ``text`` itself (str) when it is none of those.
    Raises:
        nothing.
    """
    if _NULL_RE.match(text):
        return None
    if _TRUE_RE.match(text):
        return True
    if _FALSE_RE.match(text):
        return False
    if _LEADING_ZERO_RE.match(text):
        # ``0755``: octal in YAML 1.1, decimal in 1.2; the field decides (mode)
        return PlainText(text)
    if _INT_DEC_RE.match(text):
        return YamlInt(int(text, 10), text)
    if _INT_HEX_RE.match(text):
        return YamlInt(int(text[2:], 16), text)
    if _INT_OCT_RE.match(text):
        return YamlInt(int(text[2:], 8), text)
    if _FLOAT_RE.match(text) and any(c.isdigit() for c in text):
        return YamlFloat(float(text), text)
    if _INF_RE.match(text):
        return YamlFloat(math.copysign(math.inf, -1.0 if text.startswith("-") else 1.0), text)
    if _NAN_RE.match(text):
        return YamlFloat(math.nan, text)
    return text


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _children(node: Node) -> List[Node]:
    """The nodes directly inside ``node`` (mapping keys and values, sequence items)."""
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def check_expansion(root: Node) -> None:
    """Refuse a node graph that would build too many values or nest too deeply via aliases.

    Walks each distinct node once (aliases share nodes), iteratively, computing how many
    values it expands to and how deep it nests once aliases are followed.

    Args:
        root: the composed document.
    Raises:
        ManifestError: more than ``MAX_VALUES`` values (an alias bomb), deeper than
            ``MAX_DEPTH`` once aliases are followed, or an alias inside the node it names.
    """
    cost: Dict[int, int] = {}
    depth: Dict[int, int] = {}
    on_path = set()
    todo: List[Tuple[Node, bool]] = [(root, False)]
    while todo:
        node, done = todo.pop()
        nid = id(node)
        if done:
            on_path.discard(nid)
            kids = _children(node)
            cost[nid] = 1 + sum(cost[id(k)] for k in kids)
            depth[nid] = 1 + max((depth[id(k)] for k in kids), default=0)
            if cost[nid] > MAX_VALUES:
                raise ManifestError(f"document expands to more than {MAX_VALUES} values "
                                    "(alias bomb?)", line=_line(node))
            if depth[nid] > MAX_DEPTH:
                raise ManifestError(f"the document nests more than {MAX_DEPTH} levels deep "
                                    "once aliases are followed", line=_line(node))
            continue
        if nid in cost:
            continue
        if nid in on_path:
            raise ManifestError("an alias refers to a node that contains it (recursive)",
                                line=_line(node))
        on_path.add(nid)
        todo.append((node, True))
        todo.extend((k, False) for k in _children(node) if id(k) not in cost)


def _join(path: str, part: Any) -> str:
    return f"{path}.{part}" if path else str(part)


class _Builder:
    """Turns a composed node graph into dicts/lists/scalars, filling ``positions``."""

    def __init__(self) -> None:
        self.positions: Dict[str, int] = {}
        self.count = 0
        self.active: List[int] = []  # ids of nodes being built, to catch recursive aliases

    def build(self, node: Node, path: str) -> Any:
        """Build the value of ``node`` at dotted ``path``.

        Raises:
            ManifestError: too many values (alias bomb), a recursive alias, or a bad node.
        """
        self.count += 1
        if self.count > MAX_VALUES:
            raise ManifestError(f"document expands to more than {MAX_VALUES} values "
                                "(alias bomb?)", line=_line(node), key=path or None)
        if id(node) in self.active:
            raise ManifestError("an alias refers to a node that contains it (recursive)",
                                line=_line(node), key=path or None)
        self.active.append(id(node))
        try:
            if node.tag == _RESET_TAG:
                return RESET
            if node.tag == _OVERRIDE_TAG:
                return Override(self._untagged(node, path))
            if isinstance(node, ScalarNode):
                return self.scalar(node, path)
            if isinstance(node, SequenceNode):
                return self.sequence(node, path)
            return self.mapping(node, path)
        finally:
            self.active.pop()

    def _untagged(self, node: Node, path: str) -> Any:
        """The value of a tagged node as if it had no tag (a quoted scalar stays a string)."""
        if isinstance(node, ScalarNode):
            return resolve_plain(node.value) if node.style is None else node.value
        if isinstance(node, SequenceNode):
            return self.sequence(node, path, check_tag=False)
        return self.mapping(node, path, check_tag=False)

    def scalar(self, node: ScalarNode, path: str) -> Any:
        """A scalar node's value (str, int, YamlFloat, bool or None); ManifestError on a bad tag."""
        tag, text = node.tag, node.value
        if tag == _PLAIN:
            return resolve_plain(text)
        if tag == _STR:
            return text
        if tag in (_INT, _FLOAT, _BOOL, _NULL):
            value = resolve_plain(text)
            kinds = {_INT: (int,), _FLOAT: (float, int), _BOOL: (bool,), _NULL: (type(None),)}
            if not isinstance(value, kinds[tag]) or (tag == _INT and isinstance(value, bool)):
                raise ManifestError(f"{text!r} is not a valid {tag.rsplit(':', 1)[1]}",
                                    line=_line(node), key=path or None)
            return YamlFloat(float(value), text) if tag == _FLOAT else value
        raise ManifestError(f"unsupported YAML tag {tag}", line=_line(node), key=path or None)

    def sequence(self, node: SequenceNode, path: str, check_tag: bool = True) -> list:
        """A sequence node as a list, recording each item's line in ``positions``."""
        if check_tag and node.tag not in (_SEQ,):
            raise ManifestError(f"unsupported YAML tag {node.tag}", line=_line(node),
                                key=path or None)
        out = []
        for i, item in enumerate(node.value):
            p = _join(path, i)
            self.positions.setdefault(p, _line(item))
            out.append(self.build(item, p))
        return out

    def _key(self, node: Node, path: str) -> str:
        if not isinstance(node, ScalarNode):
            raise ManifestError("mapping keys must be plain strings, not lists or mappings",
                                line=_line(node), key=path or None)
        return node.value

    def mapping(self, node: MappingNode, path: str, check_tag: bool = True) -> dict:
        """A mapping node as a dict (merge keys applied); ManifestError on a repeat or bad tag."""
        if check_tag and node.tag != _MAP:
            raise ManifestError(f"unsupported YAML tag {node.tag}", line=_line(node),
                                key=path or None)
        pairs: List[Tuple[str, Node, Node]] = []
        seen: Dict[str, int] = {}
        merge_nodes: List[MappingNode] = []
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            is_merge = key == "<<" and key_node.tag in (_PLAIN, _MERGE)
            label = "<<" if is_merge else key
            if label in seen:
                raise ManifestError(
                    f"key {label!r} is repeated (first at line {seen[label]}); "
                    "a mapping must not repeat a key", line=_line(key_node),
                    key=_join(path, label))
            seen[label] = _line(key_node)
            if is_merge:
                merge_nodes = self._merge_sources(value_node, path, _line(key_node))
            else:
                pairs.append((key, key_node, value_node))
        out: Dict[str, Any] = {}
        # Earlier sources win over later ones; explicit keys win over all (YAML merge key spec).
        # Built before the explicit keys so that their positions are the ones kept.
        for source in reversed(merge_nodes):
            out.update(self.mapping(source, path))
        for key, key_node, value_node in pairs:
            p = _join(path, key)
            self.positions[p] = _line(key_node)
            out[key] = self.build(value_node, p)
        return out

    def _merge_sources(self, value: Node, path: str, line: int) -> List[MappingNode]:
        nodes = value.value if isinstance(value, SequenceNode) else [value]
        for n in nodes:
            if not isinstance(n, MappingNode):
                raise ManifestError("'<<' merges mappings only (one or a list of them)",
                                    line=line, key=_join(path, "<<"))
        return list(nodes)


def load_yaml(text: str) -> Tuple[Any, Dict[str, int]]:
    """Parse one YAML document strictly (see the module docstring for the rules).

    Args:
        text: the document's text.
    Returns:
        (data, positions): data of dict/list/str/bool/None/YamlInt/YamlFloat (None for an empty
        document); positions maps dotted key paths (list items by index) to 1-based lines.
    Raises:
        ManifestError: a syntax error, a repeated key, a bad merge, an unknown tag, several
            documents in one file, nesting deeper than ``MAX_DEPTH`` or an expansion over
            ``MAX_VALUES`` values; ``line`` and ``key`` set where known (``stack``/``file`` not).
    """
    loader = StrictLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = " ".join(p for p in (exc.context, exc.problem) if p)
            raise ManifestError(f"invalid YAML: {problem}",
                                line=mark.line + 1 if mark else None) from exc
        except yaml.YAMLError as exc:
            raise ManifestError(f"invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if root is None:
        return None, {}
    check_expansion(root)
    builder = _Builder()
    data = builder.build(root, "")
    return data, builder.positions
