"""The nodes file: which labels, availability and role each node should have.

    nodes:                       # hostname -> what that node should be
      w1:
        labels: {mem: max}
        availability: active     # active | pause | drain
        role: worker             # manager | worker (promote / demote)
        optional: false          # true: a node that is not in the swarm is skipped, not refused
        force: false             # true: allow a demotion below a quorum-safe manager count
    groups:                      # many nodes at once, applied in order before `nodes:`
      - match: {hostname: "w*", labels: {zone: a}}   # a hostname glob and/or live labels
        labels: {tier: worker}
        availability: active

Values are read with the stack files' strict YAML loader (YAML 1.2, repeated keys are errors),
through the repo sandbox; every error names the file, line and key.
"""
from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from controller.errors import ManifestError
from controller.model.status import Availability, NodeRole
from controller.render.compose.sandbox import RepoLimits, RepoSandbox
from controller.render.compose.yaml_load import YamlFloat, YamlInt, load_yaml
from controller.render.locate import KeyLocator

RESERVED_PREFIX = "io.keelson."  # label keys Keelson keeps for itself on nodes

_NODE_KEYS = ("labels", "availability", "role", "optional", "force")
_GROUP_KEYS = ("match", "labels", "availability")
_MATCH_KEYS = ("hostname", "labels")


@dataclass(frozen=True)
class NodeEntry:
    """One node under ``nodes:``.

    Attributes:
        hostname: the node's hostname (``docker node ls`` HOSTNAME). labels: label -> value.
        availability / role: None when not declared (left as they are).
        optional: skip (do not refuse) when no such node is in the swarm.
        force: allow a demotion that lowers the managers' fault tolerance.
        line: the line of the entry in the file (0 when unknown).
    """

    hostname: str
    labels: Mapping[str, str] = field(default_factory=dict)
    availability: Optional[Availability] = None
    role: Optional[NodeRole] = None
    optional: bool = False
    force: bool = False
    line: int = 0


@dataclass(frozen=True)
class NodeGroup:
    """One entry of ``groups:``: what every matching node gets.

    Attributes:
        hostname: a glob (``fnmatch``: ``w*``, ``db-[12]``) or "" for any hostname.
        match_labels: live labels a node must all have ("" matches only an empty value).
        labels / availability: as :class:`NodeEntry`.
        index: position in ``groups:`` (for messages).
    """

    hostname: str = ""
    match_labels: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    availability: Optional[Availability] = None
    index: int = 0

    def matches(self, hostname: str, labels: Mapping[str, str]) -> bool:
        """True when a node with ``hostname`` and live ``labels`` is in this group."""
        if self.hostname and not fnmatch.fnmatchcase(hostname, self.hostname):
            return False
        return all(labels.get(k) == v for k, v in self.match_labels.items())


@dataclass(frozen=True)
class NodesSpec:
    """The whole nodes file.

    Attributes:
        file: the file as messages show it (relative to the repo root).
        nodes: hostname -> NodeEntry. groups: in file order.
    """

    file: str
    nodes: Mapping[str, NodeEntry] = field(default_factory=dict)
    groups: Tuple[NodeGroup, ...] = ()


class _Locator(KeyLocator):
    """Lines of the nodes file's keys, for located errors."""

    def __init__(self, positions: Dict[str, int], file: str):
        self.positions = positions
        self.files = {}
        self.base_file = file


def read_nodes_file(root: str, relpath: str, limits: Optional[RepoLimits] = None
                    ) -> Optional[NodesSpec]:
    """Read and validate the nodes file of an exported tree.

    Args:
        root: the repo's top level (``Checkout.root``). relpath: ``KEELSON_NODES_FILE``,
            relative to ``root``. limits: size caps (the stack file cap applies).
    Returns:
        NodesSpec, or None when the file does not exist (nodes are then not managed).
    Raises:
        RepoAccessError: the path leaves the tree or is not a regular file.
        ManifestError: invalid YAML or an invalid entry (file, line and key in the message).
    """
    sandbox = RepoSandbox(root, limits)
    path = sandbox.resolve(sandbox.root, relpath, what="KEELSON_NODES_FILE")
    if not os.path.lexists(path):
        return None
    text = sandbox.read_text(path, what="KEELSON_NODES_FILE",
                             max_bytes=sandbox.limits.stack_file_bytes)
    return parse_nodes(text, relpath)


def parse_nodes(text: str, file: str) -> NodesSpec:
    """Parse and validate a nodes file's text.

    Args:
        text: the YAML document. file: its name as errors show it.
    Returns:
        NodesSpec (an empty document declares nothing).
    Raises:
        ManifestError: with ``file``, line and key of the first problem.
    """
    try:
        data, positions = load_yaml(text)
    except ManifestError as exc:
        raise exc.located(file=file)
    at = _Locator(positions, file)
    if data is None:
        return NodesSpec(file)
    _mapping(data, "", at, ("nodes", "groups"))
    nodes: Dict[str, NodeEntry] = {}
    for hostname, entry in (_mapping(data.get("nodes"), "nodes", at) or {}).items():
        path = f"nodes.{hostname}"
        if not str(hostname).strip():
            at.fail(path, "a node needs a hostname")
        entry = _mapping(entry, path, at, _NODE_KEYS) or {}
        nodes[str(hostname)] = NodeEntry(
            hostname=str(hostname), labels=_labels(entry.get("labels"), f"{path}.labels", at),
            availability=_word(entry.get("availability"), f"{path}.availability", at, Availability),
            role=_word(entry.get("role"), f"{path}.role", at, NodeRole),
            optional=_flag(entry.get("optional"), f"{path}.optional", at),
            force=_flag(entry.get("force"), f"{path}.force", at), line=at.line(path) or 0)
    groups = []
    raw_groups = data.get("groups")
    if raw_groups is not None and not isinstance(raw_groups, list):
        at.fail("groups", "must be a list of {match, labels, availability}")
    for i, group in enumerate(raw_groups or []):
        path = f"groups.{i}"
        group = _mapping(group, path, at, _GROUP_KEYS) or {}
        match = _mapping(group.get("match"), f"{path}.match", at, _MATCH_KEYS)
        if not match:
            at.fail(f"{path}.match", "a group needs match: {hostname: GLOB} and/or "
                                     "{labels: {KEY: VALUE}}")
        hostname = match.get("hostname")
        if hostname is not None and (not isinstance(hostname, str) or not hostname):
            at.fail(f"{path}.match.hostname", "must be a hostname or a glob such as 'w*'")
        groups.append(NodeGroup(
            hostname=hostname or "",
            match_labels=_labels(match.get("labels"), f"{path}.match.labels", at, reserved=True),
            labels=_labels(group.get("labels"), f"{path}.labels", at),
            availability=_word(group.get("availability"), f"{path}.availability", at,
                               Availability), index=i))
    return NodesSpec(file, nodes, tuple(groups))


def _mapping(value: Any, path: str, at: _Locator, keys: Tuple[str, ...] = ()) -> Optional[dict]:
    """``value`` as a mapping (None stays None); unknown keys are errors when ``keys`` given."""
    if value is None:
        return None
    if not isinstance(value, dict):
        at.fail(path, f"must be a mapping, not {_kind(value)}")
    for key in value if keys else ():
        if key not in keys:
            at.fail(f"{path}.{key}" if path else str(key),
                    f"unknown key {key!r} (allowed: {', '.join(keys)})")
    return value


def _labels(value: Any, path: str, at: _Locator, reserved: bool = False) -> Dict[str, str]:
    """A ``{key: value}`` label map; values become strings as Docker stores them."""
    out: Dict[str, str] = {}
    for key, val in (_mapping(value, path, at) or {}).items():
        key = str(key)
        where = f"{path}.{key}"
        if not key.strip() or "=" in key or any(c.isspace() for c in key):
            at.fail(where, f"invalid label key {key!r} (no spaces, no '=')")
        if key.startswith(RESERVED_PREFIX) and not reserved:
            at.fail(where, f"label keys starting with {RESERVED_PREFIX!r} are Keelson's own")
        out[key] = _scalar(val, where, at)
    return out


def _scalar(value: Any, path: str, at: _Locator) -> str:
    """A label value as text: ``true``/``false`` for booleans, a number as written."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (YamlInt, YamlFloat)):
        return value.text
    if isinstance(value, (int, float, str)):
        return str(value)
    at.fail(path, f"a label value must be a string, number or boolean, not {_kind(value)}")


def _word(value: Any, path: str, at: _Locator, enum):
    """``value`` as a member of ``enum`` (None when absent)."""
    if value is None:
        return None
    try:
        return enum(str(value).lower()) if isinstance(value, str) else enum(value)
    except ValueError:
        at.fail(path, f"{value!r} is not one of {', '.join(m.value for m in enum)}")


def _flag(value: Any, path: str, at: _Locator) -> bool:
    """A boolean option (absent: false)."""
    if value is None:
        return False
    if not isinstance(value, bool):
        at.fail(path, f"must be true or false, not {value!r}")
    return value


def _kind(value: Any) -> str:
    """A YAML word for ``value``'s type, for messages."""
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)
