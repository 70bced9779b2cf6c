"""Plan (pure): compare a stack's desired objects with what the swarm runs.

A service is compared by the hash of its desired spec, stored in the ``io.keelson.spec-hash``
label when Keelson last wrote it: a differing hash is a change from git. When the hash matches,
every field Keelson sets is compared with the live spec through the live-spec normaliser
(``deploy.drift``, issue 8.4): a difference is drift (a hand-made ``docker service update``),
healed by an update or, in report mode, only reported. Networks and volumes Swarm cannot change
in place are planned ``replace`` with the field paths (issue 8.3); ``refuse_replacements``
refuses them unless the stack or the operator allows the recreation.
"""
from __future__ import annotations

from typing import Collection, Dict, List, Mapping, Optional

from controller.deploy.drift import stack_drift
from controller.errors import ImmutableChangeError
from controller.model import Change, DesiredStack, LiveStack, StackPlan
from controller.model import labels as L
from controller.model.drift import DriftKind, DriftMode
from controller.model.plan import CREATE, REMOVE, REPLACE, UNCHANGED, UPDATE


def plan_stack(desired: DesiredStack, live: Optional[LiveStack],
               desired_hashes: Optional[Dict[str, str]], instance: str, *,
               network_names: Optional[Mapping[str, str]] = None,
               drift_mode: DriftMode = DriftMode.HEAL) -> StackPlan:
    """Plan one stack.

    Args:
        desired: the stack's desired objects (from ``render.convert.to_desired``).
        live: the stack's objects in the swarm, or None when it has none.
        desired_hashes: full service name -> spec hash; None takes ``DesiredService.spec_hash``.
        instance: this Keelson's instance name; only objects it owns are pruned.
        network_names: network ID -> name for every network the pass listed (the engine
            stores network IDs in service specs); None compares targets as stored.
        drift_mode: HEAL plans an update for each drifted service and config/secret label;
            REPORT plans them ``unchanged`` with the reason ``out of sync: <paths>``.
    Returns:
        StackPlan with changes in apply order: networks, volumes, configs, secrets, services,
        then the removals (services, configs, secrets, networks) of owned objects no longer
        desired, and ``drift`` listing every drifted object with its field paths. A network or
        volume whose immutable fields differ is planned ``replace`` (reason ``immutable:
        <paths>``), whatever the drift mode; services attached to a replaced network are
        planned ``update`` (re-attach). Objects in the namespace that Keelson does not own are
        never planned for removal (unmanaged services are reported in ``drift``).
    """
    live = live or LiveStack(desired.name)
    if desired_hashes is None:
        desired_hashes = {n: s.spec_hash for n, s in desired.services.items()}
    drifts = stack_drift(desired, live, instance, network_names, desired_hashes)
    by_key = {(d.kind, d.name): d for d in drifts}
    heal = drift_mode == DriftMode.HEAL
    changes: List[Change] = []
    replaced = set()
    for name, net in sorted(desired.networks.items()):
        if net.external:
            continue
        found = by_key.get((DriftKind.NETWORK, name))
        if found is not None:
            replaced.add(name)
            changes.append(Change("network", name, REPLACE, f"immutable: {', '.join(found.paths)}"))
        else:
            changes.append(Change("network", name, UNCHANGED if name in live.networks else CREATE))
    for d in drifts:
        if d.kind == DriftKind.VOLUME:
            changes.append(Change("volume", d.name, REPLACE, f"immutable: {', '.join(d.paths)}"))
    for kind, dkind, want, have in (("config", DriftKind.CONFIG, desired.configs, live.configs),
                                    ("secret", DriftKind.SECRET, desired.secrets, live.secrets)):
        for name, obj in sorted(want.items()):
            if obj.external:
                continue
            found = by_key.get((dkind, name))
            if name not in have:
                changes.append(Change(kind, name, CREATE))
            elif found is not None:
                changes.append(Change(kind, name, UPDATE if heal else UNCHANGED,
                                      _drift_reason(found.paths, heal)))
            else:
                changes.append(Change(kind, name, UNCHANGED))
    for name, svc in sorted(desired.services.items()):
        current = live.services.get(name)
        if current is None:
            changes.append(Change("service", name, CREATE))
            continue
        reason = service_difference(current.labels, desired_hashes[name], instance)
        found = by_key.get((DriftKind.SERVICE, name))
        if not reason and found is not None:
            if heal:
                reason = _drift_reason(found.paths, heal)
            else:
                changes.append(Change("service", name, UNCHANGED, _drift_reason(found.paths, heal)))
                continue
        attached = _attached(svc.spec, replaced)
        if not reason and attached:
            reason = f"re-attach to replaced network {', '.join(attached)}"
        changes.append(Change("service", name, UPDATE if reason else UNCHANGED, reason))
    changes.extend(prune_changes(desired, live, instance))
    return StackPlan(desired.name, changes, drifts)


def _drift_reason(paths, heal: bool) -> str:
    """``drift: <paths>`` (healed) or ``out of sync: <paths>`` (report only)."""
    return f"{'drift' if heal else 'out of sync'}: {', '.join(paths)}"


def _attached(spec: dict, networks: Collection[str]) -> List[str]:
    """Names among ``networks`` that a desired ServiceSpec attaches to."""
    targets = {a.get("Target") for a in (spec.get("TaskTemplate") or {}).get("Networks") or []}
    return sorted(n for n in networks if n in targets)


def refuse_replacements(plan: StackPlan, allowed: Collection[str]) -> None:
    """Refuse a plan that needs an object replaced unless its kind is allowed.

    Args:
        plan: from ``plan_stack``.
        allowed: object kinds the stack or operator lets Keelson recreate (``networks``;
            from ``x-keelson: {recreate: [...]}`` or KEELSON_RECREATE). Volumes are never
            recreated: the data on every node would be lost.
    Raises:
        ImmutableChangeError: naming each object, its changed fields and how to proceed.
    """
    refused = []
    for ch in plan.of(REPLACE):
        if ch.kind == "network" and "networks" in allowed:
            continue
        field_paths = ch.reason.split(": ", 1)[-1]
        if ch.kind == "network":
            how = ("to let Keelson recreate it (services are detached, the network removed, "
                   "created again and the services re-attached), add `x-keelson: {recreate: "
                   "[networks]}` to the stack file or set KEELSON_RECREATE=networks; or give "
                   "the network a new name; or revert the change")
        else:
            how = ("Keelson never recreates volumes (their data would be lost): stop the "
                   "services using it, `docker volume rm` it on each node, and the next pass "
                   "recreates it; or give the volume a new name; or revert the change")
        refused.append(f"{ch.kind} {ch.name}: {field_paths} cannot change in place in Swarm; {how}")
    if refused:
        raise ImmutableChangeError(f"stack {plan.stack}: " + "; ".join(refused))


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


def service_difference(live_labels: dict, desired_hash: str, instance: str) -> str:
    """Why a live service must be updated from git, or "" when its spec hash matches.

    Args:
        live_labels: the live service's labels. desired_hash: the desired spec's hash.
        instance: this Keelson's instance name (a service it does not own yet is adopted).
    Returns:
        ``adopt: not yet managed by this keelson``, ``spec changed`` or "" (then compare the
        fields with ``deploy.drift.service_drift``).
    """
    if not L.owned_by(live_labels, instance):
        return "adopt: not yet managed by this keelson"
    if live_labels.get(L.SPEC_HASH) != desired_hash:
        return "spec changed"
    return ""
