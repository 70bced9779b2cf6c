"""Detect Keelson's own service: the stack it runs in and the secrets, configs and networks it
uses (so no stack of the repo may touch them).

A swarm task's container hostname defaults to its container ID, and its container labels carry
``com.docker.swarm.service.id`` and ``com.docker.stack.namespace`` (set by ``docker stack
deploy``); when the service sets its own ``hostname:``, the container ID is read from
``/proc/self/mountinfo`` (the Engine bind-mounts ``/var/lib/docker/containers/<id>/hostname``).
"""
from __future__ import annotations

import logging
import re
import socket
from typing import Dict, Iterable, List, Optional

from controller.errors import SwarmError
from controller.model import labels as L
from controller.model.identity import ControllerIdentity
from controller.swarm.calls import engine_call

log = logging.getLogger(__name__)

SERVICE_ID_LABEL = "com.docker.swarm.service.id"  # set by swarmkit on every task container
_CONTAINER_DIR = re.compile(r"/containers/([0-9a-f]{64})/")


_CONTAINER_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


def container_ids_from_mountinfo(text: str) -> List[str]:
    """IDs of the container this process runs in, from ``/proc/self/mountinfo``.

    Only mounts *onto* ``/etc/hostname``, ``/etc/hosts`` or ``/etc/resolv.conf`` count (the
    Engine bind-mounts them from ``.../containers/<id>/`` into each container); on a host, other
    containers' mounts (``.../containers/<id>/mounts/shm``) are listed too and must not count.

    Returns:
        list of 64-hex IDs, first seen first (usually one; none outside a container).
    """
    seen: List[str] = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) < 5 or fields[4] not in _CONTAINER_FILES:
            continue
        for cid in _CONTAINER_DIR.findall(fields[3]):
            if cid not in seen:
                seen.append(cid)
    return seen


def identity_from(service: dict, network_names: Dict[str, str],
                  container_labels: Optional[Dict[str, str]] = None) -> ControllerIdentity:
    """Keelson's identity from its inspected service.

    Args:
        service: ``GET /services/{id}`` JSON. network_names: network ID -> name (attachments
            may name a network by ID). container_labels: the task container's labels.
    Returns:
        ControllerIdentity with the stack (service label, else container label), service name,
        and the secret, config and network names its spec and previous spec use.
    """
    spec = service.get("Spec") or {}
    stack = (spec.get("Labels") or {}).get(L.NAMESPACE) or (container_labels or {}).get(L.NAMESPACE, "")
    secrets, configs, networks = set(), set(), set()
    for s in (spec, service.get("PreviousSpec") or {}):
        task = s.get("TaskTemplate") or {}
        cs = task.get("ContainerSpec") or {}
        secrets |= {r.get("SecretName", "") for r in cs.get("Secrets") or []}
        configs |= {r.get("ConfigName", "") for r in cs.get("Configs") or []}
        for att in task.get("Networks") or s.get("Networks") or []:
            target = att.get("Target", "")
            networks.add(network_names.get(target, target))
    return ControllerIdentity(stack=stack, service=spec.get("Name", ""),
                              secrets=frozenset(secrets - {""}), configs=frozenset(configs - {""}),
                              networks=frozenset(networks - {""}))


def detect_identity(api, hostname: Optional[str] = None,
                    mountinfo_path: str = "/proc/self/mountinfo") -> ControllerIdentity:
    """Find the swarm service this process runs in, if any.

    Args:
        api: a low-level ``docker.APIClient`` (``SwarmClient.api``).
        hostname: the container to look up first (default ``socket.gethostname()``); used
            only when it looks like a container ID (12 to 64 hex digits).
        mountinfo_path: where to read container IDs when the hostname is not one.
    Returns:
        ControllerIdentity; an empty one when this process is not a swarm task (or the Engine
        cannot say). Never raises: detection failing only loses the automatic protection of
        Keelson's own stack, which KEELSON_SELF_STACK can restore (logged).
    """
    name = hostname or socket.gethostname()
    # a task's default hostname is its 12-hex container ID; any other name is not looked up
    # (a host named like a container, or a hex-looking prefix, must not pass for one)
    candidates = [name] if re.fullmatch(r"[0-9a-f]{12,64}", name) else []
    try:
        with open(mountinfo_path, encoding="utf-8", errors="replace") as fh:
            candidates += container_ids_from_mountinfo(fh.read())
    except OSError:
        pass
    try:
        labels = _container_labels(api, candidates)
        if labels is None or not labels.get(SERVICE_ID_LABEL):
            return ControllerIdentity()
        with engine_call("inspect Keelson's own service"):
            service = api.inspect_service(labels[SERVICE_ID_LABEL])
        names = _network_names(api, service)
    except SwarmError as exc:
        log.warning("cannot detect Keelson's own service (set KEELSON_SELF_STACK): %s", exc)
        return ControllerIdentity()
    found = identity_from(service, names, labels)
    log.info("running as service %s in stack %s", found.service, found.stack or "(none)")
    return found


def _container_labels(api, candidates: Iterable[str]) -> Optional[Dict[str, str]]:
    """Labels of the first candidate that is a container on this Engine, or None."""
    for cid in candidates:
        if not cid:
            continue
        try:
            with engine_call(f"inspect container {cid}"):
                js = api.inspect_container(cid)
        except SwarmError:
            continue
        if not str(js.get("Id", "")).startswith(cid):
            continue  # a container *named* like this host is not this process's container
        return (js.get("Config") or {}).get("Labels") or {}
    return None


def _network_names(api, service: dict) -> Dict[str, str]:
    """Network ID -> name for the networks a service is attached to."""
    out: Dict[str, str] = {}
    for s in (service.get("Spec") or {}, service.get("PreviousSpec") or {}):
        for att in (s.get("TaskTemplate") or {}).get("Networks") or []:
            target = att.get("Target", "")
            if target and target not in out:
                try:
                    with engine_call(f"inspect network {target}"):
                        out[target] = api.inspect_network(target).get("Name", target)
                except SwarmError:
                    out[target] = target
    return out
