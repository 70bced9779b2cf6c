"""The node plan: declared nodes file + live nodes + live services -> changes or refusals.

Guard rails (each a refusal that blocks the whole plan, so a refused plan changes no node):

- ``unknown-node``: a hostname under ``nodes:`` is not in the swarm (typo guard), unless the
  entry says ``optional: true``;
- ``node-down``: a change to a node whose state is not ``ready`` (a group match on such a
  node is skipped with a note instead);
- ``self-demote``: demoting the node Keelson's Engine runs on (``Info.Swarm.NodeID``);
- ``quorum``: a demotion that lowers the managers' fault tolerance ((N-1)/2 lost managers for
  N managers; 3 -> 2 tolerates none), unless the entry says ``force: true``. Source:
  https://docs.docker.com/engine/swarm/admin_guide/#add-manager-nodes-for-fault-tolerance
- ``nowhere-to-go``: after the plan, a service that wants tasks and can run somewhere now
  would have no ready, active node meeting its constraints (a drain, pause or label removal).

Labels: a node gets the labels of every group it matches (later groups win) and then its own
entry's. Keelson prunes only the keys it set, listed in the node label ``io.keelson.node-labels``
(with ``io.keelson.instance``); a label set by hand under another key stays.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from controller.model import labels as L
from controller.model.node import LiveNode, Placement
from controller.model.status import Availability, NodeRole
from controller.nodes.constraints import can_run
from controller.nodes.spec import NodeEntry, NodesSpec


@dataclass(frozen=True)
class Declared:
    """What the nodes file asks of one node, groups and entry merged.

    Attributes:
        labels: label -> value. availability / role: None when not declared.
        entry: the node's own entry under ``nodes:`` (None: groups only).
    """

    labels: Mapping[str, str] = field(default_factory=dict)
    availability: Optional[str] = None
    role: Optional[str] = None
    entry: Optional[NodeEntry] = None


@dataclass(frozen=True)
class NodeChange:
    """One node update.

    Attributes:
        node_id, hostname, version: the node and the ``Version.Index`` the update must send.
        add: labels set or changed (label -> new value). remove: label keys removed.
        availability / role: (from, to), or None when unchanged.
        spec: the full NodeSpec to send (the live spec with these changes and the
            ``io.keelson.node-labels`` bookkeeping).
    """

    node_id: str
    hostname: str
    version: int
    add: Mapping[str, str] = field(default_factory=dict)
    remove: Tuple[str, ...] = ()
    availability: Optional[Tuple[str, str]] = None
    role: Optional[Tuple[str, str]] = None
    spec: Mapping = field(default_factory=dict)

    @property
    def drains(self) -> bool:
        """True when this change drains the node (its tasks move away)."""
        return bool(self.availability) and self.availability[1] == Availability.DRAIN

    def describe(self) -> str:
        """One line: ``node w1: +mem=max -old availability active->drain role worker->manager``
        (``labels only bookkeeping`` when only Keelson's own labels change)."""
        parts = [f"+{k}={v}" for k, v in sorted(self.add.items())]
        parts += [f"-{k}" for k in self.remove]
        if self.availability:
            parts.append(f"availability {self.availability[0]}->{self.availability[1]}")
        if self.role:
            parts.append(f"role {self.role[0]}->{self.role[1]}")
        return f"node {self.hostname}: {' '.join(parts) or 'bookkeeping labels'}"


@dataclass(frozen=True)
class Refusal:
    """Why the node plan is refused. rule: ``unknown-node``, ``node-down``, ``self-demote``,
    ``quorum`` or ``nowhere-to-go``. hostname: the node at fault ("" for several)."""

    rule: str
    hostname: str
    message: str


@dataclass(frozen=True)
class NodePlan:
    """The node part of a pass.

    Attributes:
        file: the nodes file as messages show it. changes: in apply order (promotions and
            activations first, drains and demotions last). refusals: empty when the plan may
            be applied. notes: skipped optional nodes, services a drain would leave short.
        declared: hostname -> Declared, for every live or declared node.
    """

    file: str
    changes: Tuple[NodeChange, ...] = ()
    refusals: Tuple[Refusal, ...] = ()
    notes: Tuple[str, ...] = ()
    declared: Mapping[str, Declared] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        """True when a guard refused the plan (nothing may be applied)."""
        return bool(self.refusals)


def managed_keys(node: LiveNode, instance: str) -> Tuple[str, ...]:
    """The label keys Keelson ``instance`` set on ``node`` (from ``io.keelson.node-labels``);
    none when another instance wrote the list."""
    owner = node.labels.get(L.INSTANCE, "")
    if owner and owner != instance:
        return ()
    return tuple(k for k in node.labels.get(L.NODE_LABELS, "").split(",") if k)


def declared_for(spec: NodesSpec, node: LiveNode) -> Declared:
    """Merge the groups ``node`` matches (in order) and its own entry."""
    labels: Dict[str, str] = {}
    availability = None
    for group in spec.groups:
        if group.matches(node.hostname, node.labels):
            labels.update(group.labels)
            availability = group.availability or availability
    entry = spec.nodes.get(node.hostname)
    if entry is not None:
        labels.update(entry.labels)
        availability = entry.availability or availability
    return Declared(labels, availability and str(availability),
                    entry.role and str(entry.role) if entry else None, entry)


def _pick(nodes: Sequence[LiveNode]) -> List[LiveNode]:
    """Nodes to plan for: when a hostname appears twice (a node that left and joined again),
    the ready one(s) only."""
    by_host: Dict[str, List[LiveNode]] = {}
    for n in nodes:
        by_host.setdefault(n.hostname, []).append(n)
    out = []
    for same in by_host.values():
        ready = [n for n in same if n.state == "ready"]
        out.extend(ready if len(same) > 1 and ready else same)
    return sorted(out, key=lambda n: (n.hostname, n.id))


def _change(node: LiveNode, want: Declared, instance: str) -> Optional[NodeChange]:
    """The update that brings ``node`` to ``want`` (None when nothing differs)."""
    managed = set(managed_keys(node, instance))
    labels = dict(node.labels)
    add = {k: v for k, v in want.labels.items() if labels.get(k) != v}
    remove = tuple(sorted(k for k in managed - set(want.labels) if k in labels))
    for k in remove:
        del labels[k]
    labels.update(want.labels)
    keys = ",".join(sorted(want.labels))
    owner = node.labels.get(L.INSTANCE, "")
    if keys or not owner or owner == instance:  # another Keelson's list stays unless we take over
        for k in (L.NODE_LABELS, L.INSTANCE):
            labels.pop(k, None)
    if keys:
        labels[L.NODE_LABELS] = keys
        labels[L.INSTANCE] = instance
    availability = (node.availability, want.availability) if (
        want.availability and want.availability != node.availability) else None
    role = (node.role, want.role) if want.role and want.role != node.role else None
    if labels == dict(node.labels) and not availability and not role:
        return None
    spec = dict(node.spec)
    spec["Labels"] = labels
    if availability:
        spec["Availability"] = availability[1]
    if role:
        spec["Role"] = role[1]
    return NodeChange(node.id, node.hostname, node.version, add, remove, availability, role, spec)


def _after(node: LiveNode, change: Optional[NodeChange]) -> LiveNode:
    """``node`` as it would be once ``change`` is applied."""
    if change is None:
        return node
    availability = change.availability[1] if change.availability else node.availability
    return replace(node, labels=dict(change.spec.get("Labels") or {}), availability=availability,
                   role=change.role[1] if change.role else node.role)


def _order(change: NodeChange) -> Tuple[int, str]:
    """Apply order: promotions and plain label changes first, then pauses, drains, demotions."""
    late = (change.availability and change.availability[1] != Availability.ACTIVE) or (
        change.role and change.role[1] == NodeRole.WORKER)
    return (1 if late else 0, change.hostname)


def tolerance(managers: int) -> int:
    """How many managers a swarm of ``managers`` managers may lose and keep its quorum."""
    return max(0, (managers - 1) // 2)


def plan_nodes(spec: NodesSpec, nodes: Sequence[LiveNode], placements: Iterable[Placement], *,
               instance: str, self_node_id: str = "") -> NodePlan:
    """Plan the node changes of a pass and check them against the guard rails.

    Args:
        spec: the loaded nodes file. nodes: every node of the swarm (``GET /nodes``).
        placements: every service that wants tasks (``constraints.placement_of``).
        instance: this Keelson's instance (``io.keelson.instance``).
        self_node_id: the node Keelson's Engine runs on (``Info.Swarm.NodeID``); "" unknown.
    Returns:
        NodePlan: changes in apply order, or refusals (then the changes are what was refused).
    """
    refusals: List[Refusal] = []
    notes: List[str] = []
    live = _pick(nodes)
    hostnames = {n.hostname for n in live}
    for name, entry in sorted(spec.nodes.items()):
        if name in hostnames:
            continue
        where = f"{spec.file}:{entry.line}" if entry.line else spec.file
        known = ", ".join(sorted(hostnames))
        if entry.optional:
            notes.append(f"node {name} ({where}) is not in the swarm: skipped (optional)")
        else:
            refusals.append(Refusal("unknown-node", name, (
                f"node {name} ({where}) is not in the swarm (nodes: {known}); "
                "fix the hostname, or mark the entry optional: true if it may be absent")))
    declared: Dict[str, Declared] = {}
    changes: List[NodeChange] = []
    after: List[LiveNode] = []
    for node in live:
        want = declared_for(spec, node)
        declared[node.hostname] = want
        change = _change(node, want, instance)
        if change is not None and node.state != "ready":
            if want.entry is None:
                notes.append(f"node {node.hostname} is {node.state}: its group changes wait")
                change = None
            else:
                refusals.append(Refusal("node-down", node.hostname, (
                    f"node {node.hostname} is {node.state}: Keelson never changes a node that is "
                    f"not ready ({change.describe()})")))
        if change is not None:
            changes.append(change)
        after.append(_after(node, change))
    for name, entry in spec.nodes.items():
        if name not in declared:
            declared[name] = Declared(entry.labels, entry.availability and str(entry.availability),
                                      entry.role and str(entry.role), entry)
    refusals += _manager_guards(changes, live, declared, self_node_id)
    placement_refusal, short = _placement_guard(placements, live, after, changes)
    if placement_refusal:
        refusals.append(placement_refusal)
    notes += short
    return NodePlan(spec.file, tuple(sorted(changes, key=_order)), tuple(refusals), tuple(notes),
                    declared)


def _manager_guards(changes: List[NodeChange], live: Sequence[LiveNode],
                    declared: Mapping[str, Declared], self_node_id: str) -> List[Refusal]:
    """``self-demote`` and ``quorum`` refusals for the demotions in ``changes``."""
    out: List[Refusal] = []
    demoted = [c for c in changes if c.role and c.role[1] == NodeRole.WORKER]
    promoted = [c for c in changes if c.role and c.role[1] == NodeRole.MANAGER]
    if not demoted:
        return out
    for c in demoted:
        if self_node_id and c.node_id == self_node_id:
            out.append(Refusal("self-demote", c.hostname, (
                f"node {c.hostname} is the node Keelson runs on: Keelson never demotes it "
                "(demote it by hand, or run Keelson on another manager first)")))
    before = sum(1 for n in live if n.role == NodeRole.MANAGER)
    after = before - len(demoted) + len(promoted)
    forced = all(declared[c.hostname].entry is not None and declared[c.hostname].entry.force
                 for c in demoted)
    if tolerance(after) < tolerance(before) and not forced:
        names = ", ".join(c.hostname for c in demoted)
        out.append(Refusal("quorum", names, (
            f"demoting {names} leaves {after} manager(s), which tolerate {tolerance(after)} lost "
            f"manager(s) instead of {tolerance(before)} with {before}; keep an odd number of "
            "managers (3 or 5), or set force: true on the entry to demote anyway")))
    return out


def _placement_guard(placements: Iterable[Placement], live: Sequence[LiveNode],
                     after: Sequence[LiveNode], changes: Sequence[NodeChange]
                     ) -> Tuple[Optional[Refusal], List[str]]:
    """The ``nowhere-to-go`` refusal, and notes on services the plan would leave short."""
    if not changes:
        return None, []
    stranded: List[str] = []
    short: List[str] = []
    for p in sorted(placements, key=lambda p: p.service):
        now = [n for n in live if can_run(n, p)]
        then = [n for n in after if can_run(n, p)]
        if now and not then:
            why = f" ({', '.join(p.constraints)})" if p.constraints else ""
            stranded.append(f"{p.service}{why}")
        elif p.replicas and p.max_per_node and len(then) * p.max_per_node < p.replicas <= (
                len(now) * p.max_per_node):
            short.append(f"service {p.service} would be short: {p.replicas} replicas, at most "
                         f"{p.max_per_node} per node, {len(then)} eligible node(s) left")
    if not stranded:
        return None, short
    touched = ", ".join(c.describe() for c in changes
                        if c.availability or c.remove or c.role)
    return Refusal("nowhere-to-go", "", (
        f"after this node plan ({touched}) no ready, active node could run: "
        f"{'; '.join(stranded)}")), short
