"""A plan: what one pass will create, update, keep or remove."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from controller.model.drift import Drift

CREATE, UPDATE, UNCHANGED, REMOVE = "create", "update", "unchanged", "remove"
# An object Swarm cannot change in place (a network's driver, IPAM, options...): it must be
# removed and created again (issue 8.3).
REPLACE = "replace"


@dataclass(frozen=True)
class Change:
    """One object's planned action.

    Attributes:
        kind: ``service``, ``network``, ``config``, ``secret`` or ``stack``.
        name: full object name. action: create / update / unchanged / remove / replace.
        reason: why (``spec changed``, ``drift: TaskTemplate.Placement.Constraints``,
            ``immutable: IPAM.Config``, ``not in the repo``).
    """

    kind: str
    name: str
    action: str
    reason: str = ""


@dataclass
class StackPlan:
    """All changes for one stack, in apply order (networks, configs, secrets, services, prune).

    Attributes:
        stack: the stack name. changes: the changes in apply order.
        drift: every live object found to differ from git (healed or only reported), with
            the field paths; empty when the stack is in sync.
    """

    stack: str
    changes: List[Change] = field(default_factory=list)
    drift: List[Drift] = field(default_factory=list)

    def of(self, action: str, kind: str = "") -> List[Change]:
        """Changes with ``action`` (and ``kind`` when given)."""
        return [c for c in self.changes if c.action == action and (not kind or c.kind == kind)]

    @property
    def writes(self) -> List[Change]:
        """Every change that writes to Docker (all but ``unchanged``)."""
        return [c for c in self.changes if c.action != UNCHANGED]

    @property
    def empty(self) -> bool:
        """True when the pass would write nothing for this stack."""
        return not self.writes
