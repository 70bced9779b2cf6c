"""Plan (pure): compare a stack's desired objects with what the swarm runs.

A service is compared by the hash of its desired spec, stored in the ``io.keelson.spec-hash``
label when Keelson last wrote it: Swarm fills in defaults on every stored spec, so comparing the
stored spec with ours field by field would see drift on every poll (case c03). On top of the
hash, a few fields people change by hand (``docker service scale``, ``docker service update
--image``) are compared directly so that drift is reverted.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from controller.model import Change, DesiredStack, LiveStack, StackPlan
from controller.model import labels as L
from controller.model.plan import CREATE, REMOVE, UNCHANGED, UPDATE


def plan_stack(desired: DesiredStack, live: Optional[LiveStack],
               desired_hashes: Optional[Dict[str, str]], instance: str) -> StackPlan:
    """Plan one stack.

    Args:
        desired: the stack's desired objects (from ``render.convert.to_desired``).
        live: the stack's objects in the swarm, or None when it has none.
        desired_hashes: full service name -> spec hash; None takes ``DesiredService.spec_hash``.
        instance: this Keelson's instance name; only objects it owns are pruned.
    Returns:
        StackPlan with changes in apply order: networks, configs, secrets, services, then the
        removals (services, configs, secrets, networks) of owned objects no longer desired.
        Objects in the namespace that Keelson does not own are never planned for removal.
    """
    live = live or LiveStack(desired.name)
    changes: List[Change] = []
    for name, net in sorted(desired.networks.items()):
        if net.external:
            continue
        changes.append(Change("network", name, UNCHANGED if name in live.networks else CREATE))
    for kind, want, have in (("config", desired.configs, live.configs),
                             ("secret", desired.secrets, live.secrets)):
        for name, obj in sorted(want.items()):
            if obj.external:
                continue
            changes.append(Change(kind, name, UNCHANGED if name in have else CREATE))
    for name, svc in sorted(desired.services.items()):
        current = live.services.get(name)
        if current is None:
            changes.append(Change("service", name, CREATE))
            continue
        want = desired_hashes[name] if desired_hashes is not None else svc.spec_hash
        reason = service_difference(svc.spec, want, current.labels, current.spec,
                                    instance)
        changes.append(Change("service", name, UPDATE if reason else UNCHANGED, reason))
    changes.extend(prune_changes(desired, live, instance))
    return StackPlan(desired.name, changes)


def prune_changes(desired: Optional[DesiredStack], live: LiveStack, instance: str) -> List[Change]:
    """Removals of objects Keelson owns in ``live`` that ``desired`` no longer has.

    Args:
        desired: the stack's desired objects, or None when the whole stack left the repo.
        live: the stack as it runs. instance: this Keelson's instance name.
    Returns:
        ``remove`` changes, services first (networks and configs are in use until they go).
    """
    def _owned(obj) -> bool:
        return L.owned_by(obj.labels, instance)

    want_s = desired.services if desired else {}
    want_n = desired.networks if desired else {}
    want_c = desired.configs if desired else {}
    want_x = desired.secrets if desired else {}
    out: List[Change] = []
    for kind, have, want in (("service", live.services, want_s), ("config", live.configs, want_c),
                             ("secret", live.secrets, want_x), ("network", live.networks, want_n)):
        for name, obj in sorted(have.items()):
            if name not in want and _owned(obj):
                out.append(Change(kind, name, REMOVE, "not in the repo"))
    return out


def service_difference(desired_spec: dict, desired_hash: str, live_labels: dict,
                       live_spec: dict, instance: str) -> str:
    """Why a live service must be updated, or "" when it already matches.

    Args:
        desired_spec: the desired ServiceSpec JSON. desired_hash: its spec hash.
        live_labels: the live service's labels. live_spec: the live ServiceSpec as inspected.
        instance: this Keelson's instance name (a service it does not own yet is adopted).
    Returns:
        A short reason (``spec changed``, ``not managed by keelson``, ``drift: replicas 1 != 3``)
        or "".
    """
    if not L.owned_by(live_labels, instance):
        return "adopt: not yet managed by this keelson"
    if live_labels.get(L.SPEC_HASH) != desired_hash:
        return "spec changed"
    return drift(desired_spec, live_spec)


def drift(desired_spec: dict, live_spec: dict) -> str:
    """Fields changed by hand since Keelson's last write ("" when none).

    Compares only fields Swarm stores as given (no defaults filled in): replicas, image and
    environment.
    """
    want_r = (desired_spec.get("Mode") or {}).get("Replicated", {}).get("Replicas")
    have_r = (live_spec.get("Mode") or {}).get("Replicated", {}).get("Replicas")
    if want_r is not None and want_r != have_r:
        return f"drift: replicas {have_r} != {want_r}"
    want_c = desired_spec.get("TaskTemplate", {}).get("ContainerSpec", {})
    have_c = live_spec.get("TaskTemplate", {}).get("ContainerSpec", {})
    if want_c.get("Image") != have_c.get("Image"):
        return f"drift: image {have_c.get('Image')} != {want_c.get('Image')}"
    if sorted(want_c.get("Env") or []) != sorted(have_c.get("Env") or []):
        return "drift: environment changed outside keelson"
    return ""
