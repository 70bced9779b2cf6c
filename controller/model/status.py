"""Status Keelson reports: per-stack state, conditions and rollout results."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import List, Optional


class Word(str, Enum):
    """A state word: an Enum member that is also its string (JSON, labels and metrics see the
    value; ``str()`` and f-strings print the value on every Python version)."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class SyncStatus(Word):
    """A stack's sync status (Argo CD's words), shown in /api/status and
    ``keelson_stack_info{sync_status}``."""

    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    PROGRESSING = "Progressing"
    FAILED = "Failed"
    STALLED = "Stalled"
    SUSPENDED = "Suspended"
    UNKNOWN = "Unknown"


class SuspendMode(Word):
    """Why a stack is suspended (``io.keelson.suspended`` on its state record, issue 13.3):
    ``suspend`` until ``keelson resume``; ``rollback`` held at a rolled-back revision until a
    commit changes the stack (or ``resume``). A stack not suspended has no label."""

    SUSPEND = "suspend"
    ROLLBACK = "rollback"


class HealthStatus(Word):
    """A stack's health: Healthy, Progressing, Degraded (replicas down, registry unreachable),
    RolledBack (the last rollout was undone), Missing, Unknown."""

    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    ROLLED_BACK = "RolledBack"
    MISSING = "Missing"
    UNKNOWN = "Unknown"


class RolloutOutcome(Word):
    """How one service's rollout ended (``keelson_rollouts_total{result}``)."""

    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


class RolloutPhase(Word):
    """Where one service's rollout stands at one look (``health.assess``): ``progressing``,
    then ``completed``, ``rolled_back``, ``paused`` or ``failed``."""

    PROGRESSING = "progressing"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    PAUSED = "paused"
    FAILED = "failed"


class RollbackScope(Word):
    """What Keelson returns when a service's rollout in a pass fails (``x-keelson: {rollback:
    stack|service}``; ``keelson_stack_rollbacks_total{scope}``).

    STACK (default): every service the pass changed goes back to the spec it had before the
    pass, services the pass created are removed (issue 10). SERVICE: only the failing service
    is rolled back, by Swarm or the watcher (``docker stack deploy``'s behaviour).
    """

    STACK = "stack"
    SERVICE = "service"


class PassResult(Word):
    """How one pass ended (``keelson_reconcile_total{result}``): ``success`` (something
    changed, all converged), ``noop`` (nothing to change), ``partial`` (some stacks failed),
    ``failed`` (the fetch, the listing or the prune guard failed), ``standby`` (another Keelson
    task of the same instance holds the writer lease: nothing was done)."""

    SUCCESS = "success"
    NOOP = "noop"
    PARTIAL = "partial"
    FAILED = "failed"
    STANDBY = "standby"


@dataclass(frozen=True)
class Rollout:
    """One service create or update that a pass wrote and must watch.

    Attributes:
        stack: the stack name. service: the full service name. service_id: its Swarm ID.
        created: True when the pass created the service (nothing to roll back to).
        prior_update_started: ``UpdateStatus.StartedAt`` seen before our update ("" if none),
            so the previous update's status is never taken for ours (Swarm shows it for a
            moment after the update call).
        started_at: unix seconds just before the write.
    """

    stack: str
    service: str
    service_id: str
    created: bool
    prior_update_started: str = ""
    started_at: float = 0.0


@dataclass(frozen=True)
class RolloutResult:
    """How one service's rollout ended.

    Attributes:
        service: full service name. outcome: completed / rolled_back / failed.
        reason: condition reason (``RolledBack``, ``RolloutTimeout``, ``Succeeded``).
        message: detail, e.g. the failing task's error. image: the image that runs afterwards.
        duration_s: seconds from the update to the outcome.
    """

    service: str
    outcome: str
    reason: str = ""
    message: str = ""
    image: str = ""
    duration_s: float = 0.0


@dataclass(frozen=True)
class ServiceReturn:
    """One service a stack rollback returns (issue 10), decided by ``reconcile.outcome``.

    Attributes:
        service: full service name. service_id: its Swarm ID.
        action: ``update`` (write ``spec`` back), ``remove`` (the failing content created it)
            or ``kept`` (already on its earlier spec, e.g. Swarm rolled it back itself).
        spec: the ServiceSpec to write back (``update`` only), else None.
        revision: the git revision ``spec`` was written at ("" when unknown or removed).
        why: how its rollout ended this pass (``rolled_back (...)``, ``completed``...).
        outcome: how returning it ended (a RolloutOutcome value; "" until watched, ``removed``
            for a removal). image: the image (with digest) that runs afterwards.
    """

    service: str
    service_id: str
    action: str
    spec: Optional[dict] = None
    revision: str = ""
    why: str = ""
    outcome: str = ""
    image: str = ""


@dataclass
class Condition:
    """A Flux-style condition: type Ready/Reconciling/Stalled, status True/False, reason."""

    type: str
    status: str
    reason: str
    message: str = ""
    last_transition: float = 0.0


@dataclass
class HistoryEntry:
    """One past attempt: revision, result (Succeeded/failed reason), time (unix s), message."""

    revision: str
    result: str
    at: float
    message: str = ""


@dataclass
class StackStatus:
    """A stack's status after the latest pass.

    Attributes:
        name: stack name. sync_status: Synced/OutOfSync/Progressing/Failed/Stalled.
        health_status: Healthy/Degraded/RolledBack/Missing/Unknown.
        last_attempted_revision / last_applied_revision: git revisions (full ids).
        last_error: message of the last failure ("" if none). reason: condition reason.
        conditions: Ready, and Reconciling/Stalled while true. history: newest first, at most 5.
        services: full name -> image that runs. warnings: from loading and converting.
        plan: the changes (``model.plan.Change``) the latest pass that planned wrote, in apply
            order; drift: the live objects it found differing from git (``model.drift.Drift``,
            with field paths). Both empty when that pass had nothing to change; a pass that
            did not plan (stalled, refused) keeps the previous ones.
        waves / rollback_scope / rolled_back: issue 10 (rollout order, rollback scope, and
            what the last stack rollback returned).
    """

    name: str
    sync_status: SyncStatus = SyncStatus.UNKNOWN
    health_status: HealthStatus = HealthStatus.UNKNOWN
    last_attempted_revision: str = ""
    last_applied_revision: str = ""
    last_error: str = ""
    reason: str = ""
    conditions: List[Condition] = field(default_factory=list)
    history: List[HistoryEntry] = field(default_factory=list)
    services: dict = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)
    rollouts: List[RolloutResult] = field(default_factory=list)
    updated_at: Optional[float] = None
    plan: list = field(default_factory=list)
    drift: list = field(default_factory=list)
    # issue 10: the waves of the last pass (full service names) and its rollback scope; the
    # services the last stack rollback returned (``<service>: <action> (<why>)``)
    waves: List[List[str]] = field(default_factory=list)
    rollback_scope: str = ""
    rolled_back: List[str] = field(default_factory=list)


class EventKind(Word):
    """What a notification tells (``KEELSON_NOTIFY_EVENTS``, ``keelson_notifications_total{event}``).

    rollout_started: a pass wrote a stack and watches its rollouts. rollout_completed: they all
    converged. rolled_back: a rollout was undone (Swarm's or the stack's rollback). failed: a
    stack's pass failed (render, policy, build, apply, rollout). stalled: the stack waits, its
    failed inputs are not applied again until one changes. drift_healed: live objects that
    differed from git were put back. prune_blocked: the prune guard stopped a removal.
    fetch_failing: the source could not be fetched for longer than the operator's threshold.
    recovered: a failed or stalled stack (or the failing source) is back to normal.
    """

    ROLLOUT_STARTED = "rollout_started"
    ROLLOUT_COMPLETED = "rollout_completed"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    STALLED = "stalled"
    DRIFT_HEALED = "drift_healed"
    PRUNE_BLOCKED = "prune_blocked"
    FETCH_FAILING = "fetch_failing"
    RECOVERED = "recovered"


class Availability(Word):
    """A node's availability (``docker node update --availability``): ``active`` takes new
    tasks, ``pause`` keeps its tasks but takes no new ones, ``drain`` moves its tasks away.
    Source: https://docs.docker.com/engine/swarm/manage-nodes/#change-node-availability"""

    ACTIVE = "active"
    PAUSE = "pause"
    DRAIN = "drain"


class NodeRole(Word):
    """A node's role (``docker node promote`` / ``demote``)."""

    MANAGER = "manager"
    WORKER = "worker"


class NodePassResult(Word):
    """How the node part of a pass ended (``keelson_node_changes_total{result}``):
    ``applied`` (changes written), ``noop`` (nothing to change), ``refused`` (a guard refused
    the node plan: no node changed), ``invalid`` (the nodes file is wrong: no node changed),
    ``failed`` (a node update failed), ``planned`` (a dry run: changes shown, not written)."""

    APPLIED = "applied"
    NOOP = "noop"
    PLANNED = "planned"
    REFUSED = "refused"
    INVALID = "invalid"
    FAILED = "failed"
