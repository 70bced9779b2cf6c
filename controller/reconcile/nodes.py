"""The node step of a pass (issue 11): nodes file -> plan -> guards -> apply -> watch drains.

Runs before the stack fan-out, so a constraint that needs a new label finds it in the same
pass. A missing nodes file means nodes are not managed; an invalid file, a refused plan or a
failed update is reported (status, log, ``keelson_node_changes_total{result}``) and the stacks
still reconcile. A refused plan changes no node.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from controller.config import Settings
from controller.errors import KeelsonError, ManifestError
from controller.model import Checkout
from controller.model.live import LiveTask
from controller.model.node import LiveNode
from controller.model.status import HealthStatus, NodePassResult
from controller.nodes.constraints import placement_of
from controller.nodes.moves import DrainReport, drain_report
from controller.nodes.plan import NodePlan, plan_nodes
from controller.nodes.spec import NodesSpec, read_nodes_file
from controller.render.compose.sandbox import RepoLimits

log = logging.getLogger("keelson.nodes")

DRAIN_POLL_S = 1.0  # seconds between looks at the tasks a drain moves


@dataclass(frozen=True)
class NodeOutcome:
    """The node part of one pass.

    Attributes:
        result: applied / noop / planned / refused / invalid / failed.
        plan: the node plan (None when the file or the listing failed).
        error: what went wrong ("" when nothing did).
        drain: which tasks the drains moved where (None: no drain).
        health: Healthy, or Degraded when a drain left services short of replicas.
        applied: the changes written, as ``NodeChange.describe()`` lines.
        live: the nodes as listed after the step (for the status's declared vs live view).
    """

    result: NodePassResult
    plan: Optional[NodePlan] = None
    error: str = ""
    drain: Optional[DrainReport] = None
    health: HealthStatus = HealthStatus.HEALTHY
    applied: Tuple[str, ...] = ()
    live: Tuple[LiveNode, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> bool:
        """True when the node step could not do what the file asks (refused, invalid, failed)."""
        return self.result in (NodePassResult.REFUSED, NodePassResult.INVALID,
                               NodePassResult.FAILED)


class NodeLine:
    """Plans and applies the nodes file against the swarm.

    Args:
        settings: Settings (``nodes_file``, ``instance``, ``pending_timeout_s`` bounds the
            watch of a drain). client: SwarmClient. metrics: MetricsRecorder. store: StatusStore.
    """

    def __init__(self, settings: Settings, *, client, metrics, store):
        self.settings = settings
        self.client = client
        self.metrics = metrics
        self.store = store
        self._self_node = ""

    def run(self, checkout: Checkout, dry_run: bool) -> Optional[NodeOutcome]:
        """The node step of a pass.

        Args:
            checkout: the exported revision (the nodes file is read from ``checkout.root``).
            dry_run: plan only (``keelson plan``).
        Returns:
            NodeOutcome, or None when the revision has no nodes file. Never raises.
        """
        try:
            spec = read_nodes_file(checkout.root, self.settings.nodes_file,
                                   RepoLimits.from_settings(self.settings))
        except ManifestError as exc:
            return self._finish(NodeOutcome(NodePassResult.INVALID, error=str(exc)), dry_run)
        if spec is None:  # nodes are not managed: nothing is changed or pruned
            if not dry_run:
                self.store.nodes_updated(None)
            return None
        try:
            return self._finish(self._run(spec, dry_run), dry_run)
        except KeelsonError as exc:
            return self._finish(NodeOutcome(NodePassResult.FAILED, error=str(exc)), dry_run)

    def _run(self, spec: NodesSpec, dry_run: bool) -> NodeOutcome:
        nodes = self.client.live_nodes()
        services = self.client.all_services()
        if not self._self_node:
            self._self_node = self.client.self_node_id()
        placements = [p for p in (placement_of(s.name, s.spec) for s in services) if p]
        plan = plan_nodes(spec, nodes, placements, instance=self.settings.instance,
                          self_node_id=self._self_node)
        if plan.refused:
            return NodeOutcome(NodePassResult.REFUSED, plan, error="; ".join(
                r.message for r in plan.refusals), live=tuple(nodes))
        if not plan.changes:
            return NodeOutcome(NodePassResult.NOOP, plan, live=tuple(nodes))
        if dry_run:
            return NodeOutcome(NodePassResult.PLANNED, plan, live=tuple(nodes))
        drains = [c for c in plan.changes if c.drains]
        before = self.client.running_tasks() if drains else []
        applied: List[str] = []
        for change in plan.changes:
            try:
                self.client.update_node(change.node_id, change.version, change.spec)
            except KeelsonError as exc:
                self.metrics.node_changes("failed", 1)
                return NodeOutcome(NodePassResult.FAILED, plan, error=(
                    f"{change.describe()}: {exc} (applied before it: "
                    f"{'; '.join(applied) or 'nothing'})"), applied=tuple(applied),
                    live=tuple(self.client.live_nodes()))
            self.metrics.swarm_write("node", "update")
            self.metrics.node_changes("applied", 1)
            applied.append(change.describe())
            log.info("%s", change.describe())
        report = (self._watch_drain(before, {c.node_id for c in drains}, services)
                  if drains else None)
        health = HealthStatus.DEGRADED if report and report.degraded else HealthStatus.HEALTHY
        return NodeOutcome(NodePassResult.APPLIED, plan, drain=report, health=health,
                           applied=tuple(applied), live=tuple(self.client.live_nodes()))

    def _watch_drain(self, before: List[LiveTask], drained: set, services) -> DrainReport:
        """Follow the drained nodes' tasks until each has a running replacement, or for
        ``pending_timeout_s`` seconds (then the services still short are Degraded)."""
        names = {s.id: s.name for s in services}
        replicas: Dict[str, Optional[int]] = {}
        for s in services:
            p = placement_of(s.name, s.spec)
            if p is not None:
                replicas[s.id] = p.replicas
        names = {sid: n for sid, n in names.items() if sid in replicas}
        deadline = time.monotonic() + self.settings.pending_timeout_s
        while True:
            hostnames = {n.id: n.hostname for n in self.client.live_nodes()}
            report = drain_report(before, self.client.running_tasks(), drained, hostnames,
                                  names, replicas)
            if (report.settled and not report.degraded) or time.monotonic() >= deadline:
                break
            time.sleep(DRAIN_POLL_S)
        for move in report.moves:
            log.info("drain moved %s", move.describe())
        for name, have, want in report.short:
            log.warning("drain left service %s short: %d of %d replicas running (Degraded)",
                        name, have, want)
        return report

    def _finish(self, outcome: NodeOutcome, dry_run: bool) -> NodeOutcome:
        """Log, count and store ``outcome``."""
        if outcome.result == NodePassResult.INVALID:
            log.error("nodes file invalid, no node changed: %s", outcome.error)
        elif outcome.result == NodePassResult.REFUSED:
            for r in outcome.plan.refusals:
                log.error("node plan refused, no node changed: %s", r.message)
        elif outcome.result == NodePassResult.FAILED:
            log.error("node step failed: %s", outcome.error)
        for note in outcome.plan.notes if outcome.plan else ():
            log.warning("nodes: %s", note)
        if not dry_run:
            if outcome.result in (NodePassResult.REFUSED, NodePassResult.INVALID):
                self.metrics.node_changes(str(outcome.result), 1)
            elif outcome.result == NodePassResult.FAILED and outcome.plan is None:
                self.metrics.node_changes("failed", 1)
            self.store.nodes_updated(node_section(outcome, self.settings.nodes_file))
        return outcome


def node_section(outcome: NodeOutcome, file: str) -> dict:
    """The ``nodes`` section of /api/status: declared vs live per node, and the last node
    plan and result.

    Returns:
        dict: ``{"file", "result", "health", "error", "plan", "refusals", "notes", "moves",
        "short", "nodes": {hostname: {"declared": {...}, "live": {...}}}}``.
    """
    plan = outcome.plan
    nodes: Dict[str, dict] = {}
    for n in outcome.live:
        nodes[n.hostname] = {"live": {"id": n.id, "state": n.state, "role": n.role,
                                      "availability": n.availability, "labels": dict(n.labels)},
                             "declared": None}
    for hostname, d in (plan.declared.items() if plan else ()):
        nodes.setdefault(hostname, {"live": None})["declared"] = {
            "labels": dict(d.labels), "availability": d.availability, "role": d.role}
    drain = outcome.drain
    return {
        "file": plan.file if plan else file, "result": str(outcome.result),
        "health": str(outcome.health), "error": outcome.error,
        "plan": [c.describe() for c in plan.changes] if plan else [],
        "applied": list(outcome.applied),
        "refusals": [{"rule": r.rule, "node": r.hostname, "message": r.message}
                     for r in plan.refusals] if plan else [],
        "notes": list(plan.notes) if plan else [],
        "moves": [m.describe() for m in drain.moves] if drain else [],
        "short": [{"service": s, "running": have, "desired": want}
                  for s, have, want in drain.short] if drain else [],
        "nodes": dict(sorted(nodes.items())),
    }
