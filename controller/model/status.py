"""Status Keelson reports: per-stack state, conditions and rollout results."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

# Sync states (per stack) shown in /api/status and keelson_stack_info{sync_status}.
SYNCED, OUT_OF_SYNC, PROGRESSING, FAILED, STALLED, UNKNOWN = (
    "Synced", "OutOfSync", "Progressing", "Failed", "Stalled", "Unknown")
# Health states.
HEALTHY, DEGRADED, ROLLED_BACK, MISSING = "Healthy", "Degraded", "RolledBack", "Missing"
# Rollout outcomes (keelson_rollouts_total{result}).
COMPLETED, ROLLED_BACK_RESULT, ROLLOUT_FAILED = "completed", "rolled_back", "failed"


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
    """

    name: str
    sync_status: str = UNKNOWN
    health_status: str = UNKNOWN
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
