"""Drift and per-stack convergence options (issue 8, items 3 and 4): pure data."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import FrozenSet, Optional, Tuple

from controller.model.status import RollbackScope

from controller.model.analysis import AnalysisSpec


class DriftMode(str, enum.Enum):
    """What a pass does with a live object that differs from git.

    HEAL (default) writes the desired spec back; REPORT only reports (``OutOfSync``).
    Set per stack with ``x-keelson: {drift: report}`` or for all stacks with KEELSON_DRIFT.
    """

    HEAL = "heal"
    REPORT = "report"


class DriftKind(str, enum.Enum):
    """What drifted (the ``kind`` label of ``keelson_drift_detected_total``).

    SERVICE / NETWORK / CONFIG / SECRET / VOLUME: an object Keelson owns differs from git.
    UNMANAGED: a service in the stack's namespace that Keelson did not create (never deleted).
    """

    SERVICE = "service"
    NETWORK = "network"
    CONFIG = "config"
    SECRET = "secret"
    VOLUME = "volume"
    UNMANAGED = "unmanaged"


# Object kinds a stack may let Keelson recreate (``x-keelson: {recreate: [networks]}``).
RECREATABLE = frozenset({"networks"})


@dataclass(frozen=True)
class Drift:
    """One live object that differs from what git asks for.

    Attributes:
        kind: DriftKind. name: the object's full name.
        paths: dotted field paths that differ (``TaskTemplate.Placement.Constraints``),
            sorted; for UNMANAGED, ``("*",)``.
        immutable: True when Swarm cannot change the object in place (networks, volumes):
            it must be replaced, not updated.
    """

    kind: DriftKind
    name: str
    paths: Tuple[str, ...]
    immutable: bool = False

    def __str__(self) -> str:
        return f"{self.kind.value} {self.name}: {', '.join(self.paths)}"


@dataclass(frozen=True)
class StackOptions:
    """Per-stack options read from ``x-keelson:`` at the top of the stack file.

    Attributes:
        drift: DriftMode, or None to follow the operator's setting (KEELSON_DRIFT).
        recreate: object kinds (``networks``) the stack allows Keelson to replace when a
            change cannot be applied in place; empty by default.
        follow_tags: True (default) rolls a service when its tag moves at the registry; False
            keeps the digest live services pin while the stack's inputs are unchanged (issue 9).
        analysis: the checks to run after a rollout (issue 10.2), stack level and per service;
            empty by default.
        rollback: what a failed rollout returns (issue 10); None = STACK (the default).
    """

    drift: "DriftMode | None" = None
    recreate: FrozenSet[str] = frozenset()
    follow_tags: bool = True
    analysis: Tuple[AnalysisSpec, ...] = ()
    rollback: Optional[RollbackScope] = None
