"""Ownership: which stacks this Keelson may change, and why it refuses the others.

A stack's name is a namespace on the swarm (``com.docker.stack.namespace``). Keelson changes a
stack only when every object in that namespace is its own (``io.keelson.instance`` equal to its
instance name) or the stack is new. Objects found with another owner stop the stack before any
write, with the owner named: another Keelson instance, or a hand-deployed / ``docker stack
deploy`` stack (no Keelson labels, or Keelson labels without an instance, as written before
instances existed). The stack Keelson itself runs in is never changed.

Opting in: ``x-keelson: {adopt: true}`` in the stack file (or KEELSON_ADOPT) adopts
hand-deployed objects; another instance's objects are taken over only when the operator lists
that instance in KEELSON_ADOPT_INSTANCES.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Set

from controller.errors import ManifestError
from controller.model import labels as L
from controller.model.live import LiveStack
from controller.model.manifest import StackManifest

HAND_DEPLOYED = "hand-deployed / docker stack deploy"
LEGACY = "an earlier Keelson without instance labels"
ADOPTABLE = (HAND_DEPLOYED, LEGACY)  # what x-keelson adopt / KEELSON_ADOPT may take


@dataclass(frozen=True)
class OwnershipRules:
    """What this Keelson may change.

    Attributes:
        instance: this Keelson's instance name.
        adopt_instances: other instance names whose objects and records it takes over.
        adopt_all: adopt hand-deployed objects in every stack (KEELSON_ADOPT).
        self_stack: the stack Keelson runs in ("" when unknown); never changed nor pruned.
    """

    instance: str
    adopt_instances: FrozenSet[str] = frozenset()
    adopt_all: bool = False
    self_stack: str = ""

    @property
    def record_owners(self) -> FrozenSet[str]:
        """Instance labels a state record may carry for this Keelson to overwrite it ("" is a
        record written before instances existed; the ownership check ran first)."""
        return frozenset({self.instance, ""}) | self.adopt_instances


def stack_adopts(manifest: StackManifest) -> bool:
    """The stack's ``x-keelson.adopt`` option.

    Returns:
        bool: True when the stack file says ``x-keelson: {adopt: true}``.
    Raises:
        ManifestError: ``adopt`` is not true or false (with the stack, key and line).
    """
    value = manifest.x_keelson.get("adopt", False)
    if not isinstance(value, bool):
        raise ManifestError(f"adopt must be true or false, got {value!r}", stack=manifest.name,
                            key="x-keelson.adopt", line=manifest.positions.get("x-keelson.adopt"))
    return value


def owner_of(labels: Dict[str, str], rules: OwnershipRules) -> str:
    """Who owns an object with ``labels``: "" for this Keelson (or an instance it takes over),
    ``Keelson instance NAME`` for another, :data:`LEGACY` for Keelson labels without an
    instance, :data:`HAND_DEPLOYED` otherwise."""
    if labels.get(L.MANAGED_BY) == L.MANAGED_BY_VALUE:
        inst = labels.get(L.INSTANCE, "")
        if inst == rules.instance or inst in rules.adopt_instances:
            return ""
        return f"Keelson instance {inst}" if inst else LEGACY
    return HAND_DEPLOYED


def foreign_objects(live: Optional[LiveStack], rules: OwnershipRules) -> Dict[str, List[str]]:
    """The objects of a stack that this Keelson does not own, by owner.

    Args:
        live: the stack as it runs (None when it has nothing on the swarm).
        rules: this Keelson's OwnershipRules.
    Returns:
        owner description -> sorted ``kind name`` strings (``service s_web``, ``state record``).
    """
    found: Dict[str, List[str]] = {}
    if live is None:
        return found
    for kind, objs in (("service", live.services), ("network", live.networks),
                       ("config", live.configs), ("secret", live.secrets)):
        for name, obj in sorted(objs.items()):
            owner = owner_of(obj.labels, rules)
            if owner:
                found.setdefault(owner, []).append(f"{kind} {name}")
    rec = live.record
    if rec is not None and rec.instance and rec.instance != rules.instance \
            and rec.instance not in rules.adopt_instances:
        found.setdefault(f"Keelson instance {rec.instance}", []).append("state record")
    return found


def ownership_problem(stack: str, live: Optional[LiveStack], rules: OwnershipRules,
                      adopt: bool, wanted: Optional[Set[str]] = None) -> str:
    """Why this Keelson must not change ``stack``, or "" when it may.

    In a stack this Keelson already owns, an object someone else made whose name the stack
    file does not ask for (a debug service started by hand) is not adopted, nor touched: the
    drift report names it as unmanaged. Only one the stack would write to counts here.

    Args:
        stack: stack name. live: its objects on the swarm (None if none).
        rules: OwnershipRules. adopt: the stack's ``x-keelson.adopt``.
        wanted: ``kind name`` of every object the stack file asks for (None: all count).
    Returns:
        A message naming every owner found and how to proceed; "" when the stack is free, all
        Keelson's own, or adoptable (``adopt`` or ``rules.adopt_all``, hand-deployed only).
    """
    if rules.self_stack and stack == rules.self_stack:
        return (f"stack {stack} is the stack Keelson itself runs in; Keelson never changes or "
                "prunes it (deploy Keelson with docker stack deploy, or rename the folder)")
    found = foreign_objects(live, rules)
    if wanted is not None and live is not None and live.owned_by(rules.instance):
        found = {owner: [o for o in objs if o in wanted] for owner, objs in found.items()}
        found = {owner: objs for owner, objs in found.items() if objs}
    if adopt or rules.adopt_all:
        for owner in ADOPTABLE:
            found.pop(owner, None)
    if not found:
        return ""
    parts = []
    for owner, objs in sorted(found.items()):
        shown = ", ".join(objs[:5]) + (f" and {len(objs) - 5} more" if len(objs) > 5 else "")
        parts.append(f"{shown} owned by {owner}")
    hints = []
    if any(o in found for o in ADOPTABLE):
        hints.append("to adopt a hand-deployed stack add x-keelson: {adopt: true} to its stack "
                     "file (or set KEELSON_ADOPT=true)")
    others = sorted(o.split(" ", 2)[2] for o in found if o not in ADOPTABLE)
    if others:
        hints.append("two Keelson instances must not share a stack name; if "
                     f"{', '.join(others)} is this controller under an earlier name, set "
                     f"KEELSON_ADOPT_INSTANCES={','.join(others)}")
    return (f"stack {stack} is not owned by this Keelson (instance {rules.instance}): "
            f"{'; '.join(parts)}; nothing was changed ({'; '.join(hints)})")


def may_prune(stack: str, live: LiveStack, rules: OwnershipRules) -> bool:
    """True when a stack that left the repo may be pruned: it is not Keelson's own stack and
    this instance owns its record or one of its objects (only owned objects are then removed)."""
    return stack != rules.self_stack and live.owned_by(rules.instance)
