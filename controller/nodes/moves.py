"""What a drain did: which tasks moved where, and which services it left short."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from controller.model.live import LiveTask


@dataclass(frozen=True)
class Move:
    """One task of a drained node. service: service name. slot: replica slot (None: global).
    source / target: hostnames ("" target: no running replacement yet). stuck: the
    replacement is pending because no node is suitable (the scheduler said so)."""

    service: str
    slot: Optional[int]
    source: str
    target: str
    stuck: bool = False

    def describe(self) -> str:
        """``web.2: w2 -> w1`` (``-> nowhere`` when no replacement runs)."""
        task = f"{self.service}.{self.slot}" if self.slot is not None else self.service
        return f"{task}: {self.source} -> {self.target or 'nowhere'}"


@dataclass(frozen=True)
class DrainReport:
    """Moves of the drained nodes' tasks, and services left short (name, running, desired)."""

    moves: Tuple[Move, ...] = ()
    short: Tuple[Tuple[str, int, int], ...] = ()

    @property
    def degraded(self) -> bool:
        """True when a service runs fewer replicas than it wants."""
        return bool(self.short)

    @property
    def settled(self) -> bool:
        """True when every moved replicated task has a running replacement, or one the
        scheduler cannot place (then waiting longer changes nothing)."""
        return all(m.target or m.stuck or m.slot is None for m in self.moves)


def drain_report(before: Iterable[LiveTask], now: Iterable[LiveTask], drained: Iterable[str],
                 hostnames: Mapping[str, str], services: Mapping[str, str],
                 replicas: Mapping[str, Optional[int]]) -> DrainReport:
    """Follow the tasks that ran on drained nodes to their replacements.

    Args:
        before: running tasks (all services) listed just before the drain.
        now: tasks whose desired state is running, listed now.
        drained: IDs of the nodes drained. hostnames: node ID -> hostname.
        services: service ID -> name. replicas: service ID -> desired replicas (None: global).
    Returns:
        DrainReport: one Move per task that ran on a drained node (replicated: the running
        task of the same slot elsewhere; global: no replacement), and the replicated
        services among them that run fewer tasks than they want. A replacement is stuck when
        it is pending with swarmkit's "no suitable node" error.
    Source: swarmkit restarts a drained node's replicated task in the same slot
        (``orchestrator/replicated``, ``restart.Supervisor``): after the old task stopped and
        the restart delay, a new task with desired state running appears.
    """
    drained = set(drained)
    running_now = [t for t in now if t.state == "running" and t.desired_state == "running"]
    where: Dict[Tuple[str, Optional[int]], str] = {}
    for t in running_now:
        if t.node_id not in drained:
            where[(t.service_id, t.slot)] = hostnames.get(t.node_id, t.node_id)
    stuck = {(t.service_id, t.slot) for t in now if t.desired_state == "running"
             and t.state == "pending" and "no suitable node" in (t.error or "")}
    moves: List[Move] = []
    touched = set()
    for t in sorted(before, key=lambda t: (services.get(t.service_id, ""), t.slot or 0)):
        if t.node_id not in drained or t.state != "running" or t.service_id not in services:
            continue
        touched.add(t.service_id)
        key = (t.service_id, t.slot)
        target = where.get(key, "") if t.slot is not None else ""
        moves.append(Move(services[t.service_id], t.slot, hostnames.get(t.node_id, t.node_id),
                          target, stuck=not target and key in stuck))
    short = []
    for sid in sorted(touched, key=lambda s: services[s]):
        want = replicas.get(sid)
        if want is None:
            continue
        have = sum(1 for t in running_now if t.service_id == sid)
        if have < want:
            short.append((services[sid], have, want))
    return DrainReport(tuple(moves), tuple(short))
