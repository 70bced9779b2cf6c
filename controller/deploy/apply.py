"""Apply a plan to the swarm: networks -> configs/secrets -> services, then prune.

Swarm rules this follows (Engine API docs, ``docker stack deploy``): config and secret data
cannot change, so new content gets a new versioned object; a config or secret is removed only
when no service references it in ``Spec`` or ``PreviousSpec`` (a rollback must still find it);
networks in use cannot be removed, so they go after the services that used them.

A network Swarm cannot change in place (issue 8.3) is replaced only when the plan says
``replace`` and the reconcile pass allowed it (``deploy.diff.refuse_replacements``): the
services using it are detached (one update each, all tasks at once), the network is removed as
soon as no task uses it, created again from git, and the services are re-attached by their
planned update, which the pass watches as their rollout.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Collection, Dict, List, Optional

from controller.errors import ApplyError, ImmutableChangeError, KeelsonError
from controller.model import DesiredStack, LiveService, LiveStack, Revision, StackPlan
from controller.model.status import Rollout
from controller.model import labels as L
from controller.model.plan import CREATE, REMOVE, REPLACE, UPDATE
from controller.model.registry_auth import RegistryAuth

log = logging.getLogger("keelson.apply")


@dataclass(frozen=True)
class Prepared:
    """What ``Applier.prepare`` made ready for the services (issue 10: waves).

    Attributes:
        config_ids / secret_ids: full (versioned) name -> Swarm ID of every config/secret
            the services may reference. priors: full service name -> ``UpdateStatus.StartedAt``
            after a detach from a replaced network (issue 8.3).
    """

    config_ids: Dict[str, str]
    secret_ids: Dict[str, str]
    priors: Dict[str, str]


@dataclass
class ApplyResult:
    """What an apply wrote.

    Attributes:
        rollouts: one Rollout per service created or updated: the rollouts to watch.
        written: count of writes by ``kind:action``.
    """

    rollouts: List[Rollout] = field(default_factory=list)
    written: Dict[str, int] = field(default_factory=dict)


class Applier:
    """Carries out a StackPlan through a SwarmClient.

    Args:
        client: ``controller.swarm.client.SwarmClient``.
        observer: optional metrics recorder with ``swarm_write(kind, action)``.
        instance: written to every object created as ``io.keelson.instance``.
        registry_auth: ``model.registry_auth.RegistryAuth``; the login for each service's
            image registry goes with its create/update (``X-Registry-Auth``, issue 9), as
            ``docker stack deploy --with-registry-auth`` does, so every node can pull.
        replace_wait_s: seconds to wait, when replacing a network (issue 8.3), for the detached
            tasks to leave it before the services are put back on it and the apply fails.
    """

    def __init__(self, client, observer=None, instance: str = "", replace_wait_s: float = 120.0,
                 registry_auth: Optional[RegistryAuth] = None,
                 fence: Optional[Callable[[], None]] = None):
        self.client = client
        self.registry_auth = registry_auth or RegistryAuth()
        # raises LeaseLostError when this Keelson may not write (issue 11: one writer)
        self.fence = fence or (lambda: None)
        self.observer = observer
        self.instance = instance
        # seconds to wait for detached tasks to leave a network being replaced (issue 8.3)
        self.replace_wait_s = replace_wait_s

    def _wrote(self, result: ApplyResult, kind: str, action: str, name: str = "") -> None:
        if name:  # one line per object (creates/updates of services also log their reason)
            log.info("%s %s %s", kind, name, {"create": "created", "remove": "removed"}.get(action, action))
        key = f"{kind}:{action}"
        result.written[key] = result.written.get(key, 0) + 1
        if self.observer is not None:
            self.observer.swarm_write(kind, action)

    def apply(self, desired: DesiredStack, live: Optional[LiveStack], plan: StackPlan,
              revision: Revision, source_hash: str) -> ApplyResult:
        """Create and update what the plan says (removals are left to ``prune``).

        Args:
            desired: the stack's desired objects. live: its live objects (None if none).
            plan: from ``deploy.diff.plan_stack``. revision: written to service labels.
            source_hash: the stack's inputs hash, written to service labels.
        Returns:
            ApplyResult with the services to watch.
        Raises:
            ApplyError: a write failed; objects written before it stay (the next pass resumes).
        """
        result = ApplyResult()
        prepared = self.prepare(desired, live, plan, result)
        self.apply_services(desired, live, plan, prepared, revision, source_hash, None, result)
        return result

    def prepare(self, desired: DesiredStack, live: Optional[LiveStack], plan: StackPlan,
                result: ApplyResult) -> "Prepared":
        """Everything but the services: replaced networks, label heals, new networks, configs
        and secrets (issue 10: the services then go wave by wave, ``apply_services``).

        Args:
            desired, live, plan: as for ``apply``. result: counts the writes.
        Returns:
            Prepared: config and secret IDs by name, and the prior UpdateStatus of services
            detached from a replaced network.
        Raises:
            ApplyError / ImmutableChangeError: as ``apply``.
        """
        live = live or LiveStack(desired.name)
        config_ids = {n: o.id for n, o in live.configs.items()}
        secret_ids = {n: o.id for n, o in live.secrets.items()}
        priors: Dict[str, str] = {}  # UpdateStatus.StartedAt after a detach (issue 8.3)
        try:
            for ch in plan.of(REPLACE, "network"):
                priors.update(self._replace_network(desired, live, ch.name, result))
            for kind, objs in (("config", desired.configs), ("secret", desired.secrets)):
                for ch in plan.of(UPDATE, kind):  # label drift (issue 8.4): labels only
                    self.client.set_labels(f"{kind}s", ch.name,
                                           {**objs[ch.name].labels, L.INSTANCE: self.instance})
                    self._wrote(result, kind, UPDATE, ch.name)
            for ch in plan.of(CREATE, "network"):
                spec = copy.deepcopy(desired.networks[ch.name].spec)
                spec.setdefault("Labels", {})[L.INSTANCE] = self.instance
                self.client.create_network(spec)
                self._wrote(result, "network", CREATE, ch.name)
            for ch in plan.of(CREATE, "config"):
                c = desired.configs[ch.name]
                config_ids[ch.name] = self.client.create_config(
                    c.name, c.data, {**c.labels, L.INSTANCE: self.instance}, c.template_driver)
                self._wrote(result, "config", CREATE, ch.name)
            for ch in plan.of(CREATE, "secret"):
                s = desired.secrets[ch.name]
                secret_ids[ch.name] = self.client.create_secret(
                    s.name, s.data, {**s.labels, L.INSTANCE: self.instance}, s.template_driver)
                self._wrote(result, "secret", CREATE, ch.name)
            self._resolve_external(desired, config_ids, secret_ids)
        except ImmutableChangeError:
            raise  # issue 8.3: not retried until the stack changes
        except KeelsonError as exc:
            raise ApplyError(f"stack {desired.name}: {exc}") from exc
        return Prepared(config_ids, secret_ids, priors)

    def apply_services(self, desired: DesiredStack, live: Optional[LiveStack], plan: StackPlan,
                       prepared: "Prepared", revision: Revision, source_hash: str,
                       names: Optional[Collection[str]], result: ApplyResult) -> List[Rollout]:
        """Create and update the plan's services (those in ``names``; None = all).

        Args:
            desired, live, plan, revision, source_hash: as for ``apply``.
            prepared: from ``prepare``. names: full service names of one wave (issue 10).
            result: the rollouts are appended to it and the writes counted.
        Returns:
            list[Rollout]: the rollouts this call started, in plan order.
        Raises:
            ApplyError: a write failed.
        """
        live = live or LiveStack(desired.name)
        started_here: List[Rollout] = []
        try:
            for ch in plan.changes:
                if ch.kind != "service" or ch.action not in (CREATE, UPDATE):
                    continue
                if names is not None and ch.name not in names:
                    continue
                svc = desired.services[ch.name]
                spec = self._final_spec(svc.spec, prepared.config_ids, prepared.secret_ids,
                                        revision, source_hash, svc.spec_hash)
                spec["Labels"][L.INSTANCE] = self.instance
                prior = ""
                started = time.time()
                login = self.registry_auth.for_image(
                    spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", ""))
                if ch.action == CREATE:
                    sid = self.client.create_service(spec, registry_auth=login)
                else:
                    sid = live.services[ch.name].id
                    prior = prepared.priors.get(ch.name, (live.services[ch.name].update_status
                                                          or {}).get("StartedAt", ""))
                    self.client.update_service(sid, spec, registry_auth=login)
                log.info("service %s %sd (%s)", ch.name, ch.action, ch.reason or "new")
                self._wrote(result, "service", ch.action)
                started_here.append(Rollout(desired.name, ch.name, sid, ch.action == CREATE,
                                            prior, started))
        except KeelsonError as exc:
            raise ApplyError(f"stack {desired.name}: {exc}") from exc
        finally:
            result.rollouts.extend(started_here)
        return started_here

    def _replace_network(self, desired: DesiredStack, live: LiveStack, name: str,
                         result: ApplyResult) -> Dict[str, str]:
        """Detach, remove, create: the first half of replacing network ``name``.

        Every service attached to it is updated without it (Parallelism 0, no monitor,
        FailureAction continue, so Swarm moves all tasks at once and never rolls back onto the
        old network); the network is removed as soon as no task uses it (up to
        ``replace_wait_s``), then created from git. The services' planned updates re-attach
        them. If the old network cannot be removed in time, the services are put back on it.

        Returns:
            full service name -> ``UpdateStatus.StartedAt`` after its detach (the prior status
            for judging the re-attach rollout).
        Raises:
            ImmutableChangeError: a service Keelson does not own uses the network.
            ApplyError / SwarmError: a write failed, or the network stayed in use.
        """
        old = live.networks[name]
        users = [svc for svc in live.services.values() if _attachments(svc.spec, {old.id, name})]
        foreign = [svc.name for svc in users if not L.owned_by(svc.labels, self.instance)]
        if foreign:
            raise ImmutableChangeError(
                f"network {name} cannot be recreated: services Keelson does not own use it "
                f"({', '.join(sorted(foreign))}); detach them first")
        detached: List[LiveService] = []
        try:
            for svc in users:
                self.client.update_service(svc.id, _detached_spec(svc.spec, {old.id, name}))
                detached.append(svc)
                log.info("service %s detached from network %s (replacing it)", svc.name, name)
                self._wrote(result, "service", "detach")
            self._remove_when_unused(old.id, name)
        except KeelsonError:
            for svc in detached:  # never leave a service without its network
                try:
                    self.client.update_service(svc.id, svc.spec)
                except KeelsonError as exc:
                    log.error("service %s: cannot re-attach to network %s: %s", svc.name, name, exc)
            raise
        self._wrote(result, "network", REMOVE, name)
        spec = copy.deepcopy(desired.networks[name].spec)
        spec.setdefault("Labels", {})[L.INSTANCE] = self.instance
        deadline = time.monotonic() + self.replace_wait_s
        while True:
            # Observed on Engine 20.10: for a moment after the manager removed it, the node
            # still holds the old network and a create answers "already exists".
            try:
                self.client.create_network(spec)
                break
            except KeelsonError as exc:
                if "already exists" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self._wrote(result, "network", CREATE, name)
        priors = {}
        for svc in detached:
            now = self.client.service(svc.id)
            priors[svc.name] = ((now.update_status if now else None) or {}).get("StartedAt", "")
        return priors

    def _remove_when_unused(self, network_id: str, name: str) -> None:
        """Remove a network, retrying every 0.5 s while tasks still use it.

        Raises:
            ApplyError: still in use after ``replace_wait_s`` seconds.
        """
        deadline = time.monotonic() + self.replace_wait_s
        while True:
            try:
                self.client.remove_network(network_id)
                return
            except KeelsonError as exc:
                if time.monotonic() > deadline:
                    raise ApplyError(f"network {name} still in use after "
                                     f"{self.replace_wait_s:.0f}s: {exc}") from exc
            time.sleep(0.5)

    def _resolve_external(self, desired: DesiredStack, config_ids: dict, secret_ids: dict) -> None:
        """Fill in the IDs of external configs/secrets (preflight already checked they exist)."""
        for kind, objs, ids, lookup in (("config", desired.configs, config_ids, self.client.config),
                                        ("secret", desired.secrets, secret_ids, self.client.secret)):
            for name, obj in objs.items():
                if obj.external and name not in ids:
                    found = lookup(name)
                    if found is None:
                        raise ApplyError(f"stack {desired.name}: external {kind} {name} not found")
                    ids[name] = found.id

    @staticmethod
    def _final_spec(spec: dict, config_ids: dict, secret_ids: dict, revision: Revision,
                    source_hash: str, spec_hash: str) -> dict:
        """The spec sent to Docker: IDs filled in, Keelson's per-revision labels on the service."""
        spec = copy.deepcopy(spec)
        cs = spec.setdefault("TaskTemplate", {}).setdefault("ContainerSpec", {})
        for ref in cs.get("Configs") or []:
            ref["ConfigID"] = config_ids.get(ref["ConfigName"], ref.get("ConfigID", ""))
            if not ref["ConfigID"]:
                raise ApplyError(f"config {ref['ConfigName']} has no id")
        for ref in cs.get("Secrets") or []:
            ref["SecretID"] = secret_ids.get(ref["SecretName"], ref.get("SecretID", ""))
            if not ref["SecretID"]:
                raise ApplyError(f"secret {ref['SecretName']} has no id")
        labels = spec.setdefault("Labels", {})
        labels[L.SPEC_HASH] = spec_hash
        labels[L.REVISION] = revision.sha
        if source_hash:
            labels[L.SOURCE_HASH] = source_hash
        return spec

    def prune(self, stack: str, plan: StackPlan, live: Optional[LiveStack],
              network_wait_s: float = 20.0, result: Optional[ApplyResult] = None) -> List[str]:
        """Remove what the plan marks ``remove``, in a safe order.

        Services go first; configs and secrets only when no service references them in Spec or
        PreviousSpec; networks only when no task uses them any more: retried for up to
        ``network_wait_s`` seconds, then left for the next pass (not an error).

        Returns:
            Messages about objects kept for now (still referenced or in use).
        """
        self.fence()
        live = live or LiveStack(stack)
        result = result if result is not None else ApplyResult()
        kept: List[str] = []
        for ch in plan.of(REMOVE, "service"):
            self.client.remove_service(live.services[ch.name].id)
            self._wrote(result, "service", REMOVE, ch.name)
        removals = plan.of(REMOVE, "config") + plan.of(REMOVE, "secret")
        if removals:
            used_c = self.client.referenced_config_ids()
            used_s = self.client.referenced_secret_ids()
            for ch in removals:
                obj = (live.configs if ch.kind == "config" else live.secrets)[ch.name]
                if obj.id in (used_c if ch.kind == "config" else used_s):
                    kept.append(f"{ch.kind} {ch.name} kept: still referenced")
                    continue
                try:
                    (self.client.remove_config if ch.kind == "config"
                     else self.client.remove_secret)(obj.id)
                    self._wrote(result, ch.kind, REMOVE, ch.name)
                except KeelsonError as exc:
                    kept.append(f"{ch.kind} {ch.name} kept: {exc}")
        pending = plan.of(REMOVE, "network")
        # A removed service's tasks take a few seconds to stop; its networks are in use till then.
        deadline = time.monotonic() + network_wait_s
        while pending:
            left = []
            for ch in pending:
                try:
                    self.client.remove_network(live.networks[ch.name].id)
                    self._wrote(result, "network", REMOVE, ch.name)
                except KeelsonError as exc:
                    left.append((ch, exc))
            if not left or time.monotonic() > deadline:
                kept.extend(f"network {ch.name} kept: {exc}" for ch, exc in left)
                break
            pending = [ch for ch, _ in left]
            time.sleep(1.0)
        return kept


def _attachments(spec: dict, keys: set) -> List[dict]:
    """The network attachments of a ServiceSpec whose Target is in ``keys`` (ID or name)."""
    tmpl = spec.get("TaskTemplate") or {}
    atts = (tmpl.get("Networks") or []) + (spec.get("Networks") or [])
    return [a for a in atts if a.get("Target") in keys]


def _detached_spec(spec: dict, keys: set) -> dict:
    """``spec`` without the attachments to ``keys``, rolled out at once and never rolled back
    (UpdateConfig Parallelism 0, Delay 0, Monitor 0, FailureAction continue)."""
    out = copy.deepcopy(spec)
    tmpl = out.setdefault("TaskTemplate", {})
    for holder in (tmpl, out):
        if holder.get("Networks"):
            holder["Networks"] = [a for a in holder["Networks"] if a.get("Target") not in keys]
    uc = dict(out.get("UpdateConfig") or {})
    uc.update({"Parallelism": 0, "Delay": 0, "Monitor": 0, "FailureAction": "continue"})
    if "Mode" in out and ("ReplicatedJob" in out["Mode"] or "GlobalJob" in out["Mode"]):
        uc = None  # jobs take no update config (swarmkit validateJob)
    if uc is not None:
        out["UpdateConfig"] = uc
    return out
