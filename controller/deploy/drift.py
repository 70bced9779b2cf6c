"""Drift (pure): which fields of the live objects differ from what git asks for (issue 8.4).

Every field Keelson sets is compared, after both sides go through the live-spec normaliser
(``render.normalize.comparable_service`` / ``comparable_network``), which removes what Swarm
fills in by default. The result is a list of dotted field paths per object, e.g.
``TaskTemplate.Placement.Constraints``, so a hand-made ``docker service update
--constraint-add/--publish-add/--mount-add/--limit-memory`` is named exactly. No I/O: the
reconcile pass (and its fast path) calls these with what it listed once.

Sources for the rules: Swarm keeps a network's driver, options, IPAM, attachable, internal and
labels as created (``docker network`` has no update; Engine API has no ``/networks/{id}/update``),
and a local volume's driver and options as created (``docker volume`` has no update), so those
differences are ``immutable`` and need a replacement. Config and secret data cannot change
(Engine API ``ConfigUpdate``: "only the Labels field can be updated"); Keelson versions their
names by content, so only their labels can drift.
"""
from __future__ import annotations

from typing import Iterable, List, Mapping, Optional, Tuple

from controller.model import DesiredStack, LiveStack, StackPlan
from controller.model import labels as L
from controller.model.drift import Drift, DriftKind, DriftMode, StackOptions
from controller.model.live import LiveObject
from controller.model.plan import REPLACE, UPDATE
from controller.render.convert.normalize import (comparable_network, comparable_service,
                                         differing_paths)

UNMANAGED_PATHS = ("*",)  # an unmanaged service differs as a whole


def service_drift(desired_spec: dict, live_spec: dict,
                  network_names: Optional[Mapping[str, str]] = None) -> Tuple[str, ...]:
    """Field paths where a live service differs from its desired spec.

    Args:
        desired_spec: the ServiceSpec Keelson renders (config/secret IDs may be empty).
        live_spec: ``Spec`` of ``GET /services/{id}``.
        network_names: network ID -> name, for the IDs the engine stores in
            ``TaskTemplate.Networks[].Target`` (pass every network the pass listed).
    Returns:
        tuple[str, ...]: sorted dotted paths (``EndpointSpec.Ports``,
        ``TaskTemplate.Resources.Limits.MemoryBytes``); empty when the service is in sync.
        Keelson's ``io.keelson.*`` labels are never drift.
    """
    return tuple(differing_paths(comparable_service(desired_spec),
                                 comparable_service(live_spec, network_names)))


def network_drift(desired_spec: dict, live: LiveObject) -> Tuple[str, ...]:
    """Fields of a live network that differ from git (each needs a replacement).

    Args:
        desired_spec: NetworkCreate JSON Keelson renders (``DesiredNetwork.spec``).
        live: the network as listed (``LiveObject.spec`` holds Driver, Options, IPAM,
            Attachable, Internal; ``labels`` its labels).
    Returns:
        tuple[str, ...]: sorted paths among ``Driver``, ``Options.<key>``, ``IPAM.Driver``,
        ``IPAM.Options.<key>``, ``IPAM.Config``, ``Attachable``, ``Internal``,
        ``Labels.<key>``. Subnets and gateways the engine allocated are compared only when
        git gives them.
    """
    configs = (desired_spec.get("IPAM") or {}).get("Config") or []
    given = dict(subnets_given=bool(configs),
                 gateways_given=any(c.get("Gateway") for c in configs))
    want = comparable_network(desired_spec, **given)
    have = comparable_network(live.spec, live.labels, **given)
    return tuple(differing_paths(want, have))


def volume_drift(desired: dict, live: LiveObject) -> Tuple[str, ...]:
    """Fields of a node-local volume that differ from git (each needs a replacement).

    Args:
        desired: ``DesiredStack.volumes`` entry ``{Name, Driver, DriverOpts, Labels, External}``.
        live: the volume as this node lists it (``spec`` holds Driver and Options).
    Returns:
        tuple[str, ...]: ``Driver`` and/or ``Options.<key>`` paths. Labels are not compared:
        a volume made by ``docker stack deploy`` or by hand may carry others.
    """
    want = {"Driver": desired.get("Driver") or "local", "Options": desired.get("DriverOpts") or {}}
    have = {"Driver": live.spec.get("Driver") or "local", "Options": live.spec.get("Options") or {}}
    return tuple(differing_paths(want, have))


def label_drift(desired_labels: Mapping[str, str], live_labels: Mapping[str, str]
                ) -> Tuple[str, ...]:
    """``Labels.<key>`` paths where a config's or secret's labels differ (Keelson's own
    ``io.keelson.*`` labels excluded)."""
    def mine(labels):
        """The labels without Keelson's own bookkeeping."""
        return {k: v for k, v in labels.items() if not k.startswith("io.keelson.")}
    return tuple(f"Labels.{k}" for k in sorted(set(mine(desired_labels)) | set(mine(live_labels)))
                 if mine(desired_labels).get(k) != mine(live_labels).get(k))


def stack_drift(desired: DesiredStack, live: Optional[LiveStack], instance: str,
                network_names: Optional[Mapping[str, str]] = None,
                desired_hashes: Optional[Mapping[str, str]] = None) -> List[Drift]:
    """Every live object of one stack that differs from git.

    Args:
        desired: the stack's desired objects. live: its live objects (None: nothing runs).
        instance: this Keelson's instance name.
        network_names: network ID -> name (see ``service_drift``).
        desired_hashes: full service name -> desired spec hash; a service whose
            ``io.keelson.spec-hash`` label differs is a change from git, not drift, and is
            skipped (None: compare every service).
    Returns:
        list[Drift] sorted by kind and name: owned services whose fields differ; owned networks
        and volumes (node-local: what this node sees) whose immutable fields differ
        (``immutable=True``); owned configs/secrets whose labels differ; services in the
        stack's namespace that no Keelson owns and git does not name (UNMANAGED). A service
        git names but Keelson does not own yet is adopted, not drift.
    """
    if live is None:
        return []
    out: List[Drift] = []
    for name, svc in desired.services.items():
        have = live.services.get(name)
        if have is None or not L.owned_by(have.labels, instance):
            continue
        if desired_hashes is not None and have.labels.get(L.SPEC_HASH) != desired_hashes.get(name):
            continue
        paths = service_drift(svc.spec, have.spec, network_names)
        if paths:
            out.append(Drift(DriftKind.SERVICE, name, paths))
    for name, svc in live.services.items():
        if name not in desired.services and L.MANAGED_BY not in svc.labels:
            out.append(Drift(DriftKind.UNMANAGED, name, UNMANAGED_PATHS))
    for name, net in desired.networks.items():
        have_net = live.networks.get(name)
        if net.external or have_net is None or not L.owned_by(have_net.labels, instance):
            continue
        paths = network_drift(net.spec, have_net)
        if paths:
            out.append(Drift(DriftKind.NETWORK, name, paths, immutable=True))
    for name, vol in desired.volumes.items():
        have_vol = live.volumes.get(name)
        if vol.get("External") or have_vol is None:
            continue
        paths = volume_drift(vol, have_vol)
        if paths:
            out.append(Drift(DriftKind.VOLUME, name, paths, immutable=True))
    for kind, want, have_objs in ((DriftKind.CONFIG, desired.configs, live.configs),
                                  (DriftKind.SECRET, desired.secrets, live.secrets)):
        for name, obj in want.items():
            found = have_objs.get(name)
            if obj.external or found is None or not L.owned_by(found.labels, instance):
                continue
            paths = label_drift(obj.labels, found.labels)
            if paths:
                out.append(Drift(kind, name, paths))
    return sorted(out, key=lambda d: (d.kind.value, d.name))



def resolve_options(options: StackOptions, drift_setting: str = "heal",
                    recreate_setting: Iterable[str] = ()) -> StackOptions:
    """A stack's effective options: its ``x-keelson`` values over the operator's settings.

    Args:
        options: from the stack file (``StackManifest.options``).
        drift_setting: KEELSON_DRIFT (``heal``/``report``), used when the stack sets none.
        recreate_setting: KEELSON_RECREATE kinds, added to the stack's ``recreate``.
    Returns:
        StackOptions with ``drift`` always set.
    """
    return StackOptions(drift=options.drift or DriftMode(drift_setting),
                        recreate=frozenset(options.recreate) | frozenset(recreate_setting),
                        follow_tags=options.follow_tags)


def remaining_drift(plan: StackPlan) -> List[Drift]:
    """The drift a plan leaves in place: what a pass reports as ``OutOfSync``.

    Args:
        plan: from ``deploy.diff.plan_stack``.
    Returns:
        list[Drift]: unmanaged services (never removed), and every drifted service, config or
        secret the plan keeps ``unchanged`` (report mode). Drift the plan heals (``update``)
        or replaces (``replace``) is not included.
    """
    heals = {(c.kind, c.name) for c in plan.changes if c.action in (UPDATE, REPLACE)}
    return [d for d in plan.drift
            if d.kind == DriftKind.UNMANAGED or (d.kind.value, d.name) not in heals]


def describe(drifts: Iterable[Drift]) -> str:
    """One line for status and logs: ``service s_web: EndpointSpec.Ports; unmanaged s_x``."""
    return "; ".join(f"unmanaged service {d.name} (not created by keelson)"
                     if d.kind == DriftKind.UNMANAGED else str(d) for d in drifts)
