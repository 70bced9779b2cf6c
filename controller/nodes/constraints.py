"""Does a node satisfy a service's placement? Swarm's own rules, evaluated offline.

Constraints are ``KEY == VALUE`` or ``KEY != VALUE`` with the keys ``node.id``,
``node.hostname``, ``node.role``, ``node.platform.os``, ``node.platform.arch``,
``node.labels.<label>`` and ``engine.labels.<label>``. Values compare case-insensitively; a
label the node lacks compares as "" (so ``node.labels.x != a`` holds on a node without ``x``).
Platforms (``Placement.Platforms``, which Keelson pins from the registry) match a node when
one entry's OS and architecture match (``amd64`` = ``x86_64``, ``arm64`` = ``aarch64``).
Source: swarmkit ``manager/constraint/constraint.go`` (Parse, NodeMatches) and
``manager/scheduler/filter.go`` (PlatformFilter);
https://docs.docker.com/reference/cli/docker/service/create/#constraint
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Optional

from controller.model.node import LiveNode, Placement

_ARCH_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


@dataclass(frozen=True)
class Constraint:
    """One parsed placement constraint.

    Attributes:
        key: lower-cased key (``node.labels.`` keeps the label's own case after the prefix).
        equal: True for ``==``, False for ``!=``. value: the expected value, trimmed.
    """

    key: str
    equal: bool
    value: str


def parse_constraint(text: str) -> Optional[Constraint]:
    """Parse ``KEY==VALUE`` / ``KEY!=VALUE`` (spaces allowed); None when it is neither."""
    for op, equal in (("==", True), ("!=", False)):
        if op in text:
            key, _, value = text.partition(op)
            key = key.strip()
            for prefix in ("node.labels.", "engine.labels."):
                if key.lower().startswith(prefix):
                    return Constraint(prefix + key[len(prefix):], equal, value.strip())
            return Constraint(key.lower(), equal, value.strip())
    return None


def _actual(c: Constraint, node: LiveNode) -> Optional[str]:
    """The node's value for ``c.key``; None for a key this module does not know."""
    if c.key.startswith("node.labels."):
        return node.labels.get(c.key[len("node.labels."):], "")
    if c.key.startswith("engine.labels."):
        return node.engine_labels.get(c.key[len("engine.labels."):], "")
    return {"node.id": node.id, "node.hostname": node.hostname, "node.role": node.role,
            "node.platform.os": node.os, "node.platform.arch": node.arch}.get(c.key)


def satisfies(node: LiveNode, constraints: Iterable[str]) -> bool:
    """True when ``node`` meets every constraint.

    Args:
        node: the node, with the labels/role it would have. constraints: as in the ServiceSpec.
    Returns:
        bool. A constraint this module cannot read or evaluate (``node.ip``, a typo) counts
        as met: the guard then errs towards allowing, never towards a false refusal.
    """
    for text in constraints:
        c = parse_constraint(text)
        actual = _actual(c, node) if c else None
        if c is None or actual is None:
            continue
        if (actual.lower() == c.value.lower()) != c.equal:
            return False
    return True


def platform_fits(node: LiveNode, platforms: Iterable) -> bool:
    """True when ``node``'s OS/architecture is one of ``platforms`` ((os, arch) pairs; none:
    any)."""
    pairs: List = list(platforms)
    if not pairs or not (node.os or node.arch):
        return True
    arch = _ARCH_ALIASES.get(node.arch.lower(), node.arch.lower())
    for os_name, want in pairs:
        want = _ARCH_ALIASES.get((want or "").lower(), (want or "").lower())
        if (not os_name or os_name.lower() == node.os.lower()) and (not want or want == arch):
            return True
    return False


def can_run(node: LiveNode, placement: Placement) -> bool:
    """True when ``node`` may receive new tasks of the service: ready, active, and its
    constraints and platforms fit."""
    return (node.state == "ready" and node.availability == "active"
            and satisfies(node, placement.constraints)
            and platform_fits(node, placement.platforms))


def placement_of(name: str, spec: dict) -> Optional[Placement]:
    """A service's Placement from its ServiceSpec; None when it wants no tasks (0 replicas,
    or a job)."""
    mode = spec.get("Mode") or {}
    if "Global" in mode:
        replicas = None
    elif "Replicated" in mode or not mode:
        replicas = int((mode.get("Replicated") or {}).get("Replicas", 1) if mode else 1)
        if replicas <= 0:
            return None
    else:  # ReplicatedJob / GlobalJob: run to completion, nothing to keep placed
        return None
    placement = (spec.get("TaskTemplate") or {}).get("Placement") or {}
    return Placement(
        service=name, constraints=tuple(placement.get("Constraints") or ()),
        platforms=tuple((p.get("OS", ""), p.get("Architecture", ""))
                        for p in placement.get("Platforms") or ()),
        replicas=replicas, max_per_node=int(placement.get("MaxReplicas") or 0))
