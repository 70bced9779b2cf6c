"""Live nodes and services' placement, as the node planner (``controller.nodes``) reads them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple


@dataclass(frozen=True)
class LiveNode:
    """One swarm node as ``GET /nodes`` lists it.

    Attributes:
        id: node ID. hostname: ``Description.Hostname``. version: ``Version.Index`` (a node
            update must send it). role / availability: from ``Spec`` (``manager``/``worker``,
            ``active``/``pause``/``drain``). state: ``Status.State`` (``ready``, ``down``,
            ``unknown``, ``disconnected``). labels: ``Spec.Labels`` (what ``node.labels.*``
            constraints see). engine_labels: ``Description.Engine.Labels``. os / arch:
            ``Description.Platform``. spec: the whole ``Spec`` as read (an update sends it back
            with only the planned fields changed). leader: ``ManagerStatus.Leader``.
    """

    id: str
    hostname: str
    version: int
    role: str
    availability: str
    state: str
    labels: Mapping[str, str] = field(default_factory=dict)
    engine_labels: Mapping[str, str] = field(default_factory=dict)
    os: str = ""
    arch: str = ""
    spec: Mapping = field(default_factory=dict)
    leader: bool = False


@dataclass(frozen=True)
class Placement:
    """Where one service may run, read from its ServiceSpec.

    Attributes:
        service: the service name. constraints: ``TaskTemplate.Placement.Constraints``.
        platforms: ``(os, arch)`` pairs of ``Placement.Platforms`` (empty: any).
        replicas: desired replicas (``Mode.Replicated.Replicas``); None for a global service.
        max_per_node: ``Placement.MaxReplicas`` (0: no limit).
    """

    service: str
    constraints: Tuple[str, ...] = ()
    platforms: Tuple[Tuple[str, str], ...] = ()
    replicas: Optional[int] = None
    max_per_node: int = 0
