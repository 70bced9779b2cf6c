"""Checks that must pass before the first write to Docker: things Swarm accepts but cannot do.

Pure: reads a StackManifest and its DesiredStack, returns findings; the reconciler decides
(an ``error`` finding stops the stack with PreflightFailed, a ``warning`` is reported).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional

from controller.model.desired import DesiredStack
from controller.model.manifest import StackManifest

ERROR, WARNING = "error", "warning"
# Swarm object names: at most 63 characters (a DNS label: service names become DNS names),
# starting and ending with a letter or digit, with '-', '_' or '.' inside. swarmkit
# (manager/controlapi validateAnnotations / identity) checks the service form; networks,
# configs and secrets share the rule here so their names also work as DNS-safe identifiers.
MAX_NAME_LEN = 63
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Finding:
    """One preflight result.

    Attributes:
        severity: ``error`` (do not apply) or ``warning`` (apply, but tell the user).
        stack: stack name. service: compose service name ("" for stack-level objects).
        key: dotted key path in the stack file (``services.web.deploy.update_config.order``).
        message: what is wrong and what to do, in the user's terms.
    """

    severity: str
    stack: str
    service: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"stack {self.stack} service {self.service} key {self.key}: {self.message}"


def preflight(manifest: StackManifest, desired: DesiredStack) -> List[Finding]:
    """Check a converted stack for names Swarm refuses and rollouts that cannot succeed.

    Args:
        manifest: the loaded stack (for key paths).
        desired: ``to_desired(manifest, ...)``'s result.
    Returns:
        list of Finding, errors and warnings, in a stable order (names first, then by service).
        Rules: every final object name is <= 63 chars and DNS-safe (versioned config/secret
        names included); ``order: start-first`` with a host-mode published port, in
        update_config or rollback_config, is an error (the new task cannot bind the port while
        the old one holds it: it stays Pending forever, case c10); ``endpoint_mode: dnsrr`` with
        an ingress-mode port is an error (Swarm: "port published with ingress mode can't be used
        with dnsrr mode"); an update ``monitor`` shorter than the healthcheck's worst case
        (start_period + interval x retries) is a warning (a failing task may be judged healthy).
    Raises:
        nothing: problems are findings.
    """
    stack = desired.name
    out: List[Finding] = []
    out += _names(stack, desired)
    for svc in sorted(desired.services.values(), key=lambda s: s.compose_name):
        out += _service(stack, svc.compose_name, svc.spec)
    return out


def _names(stack: str, desired: DesiredStack) -> List[Finding]:
    """Findings for object names that break Swarm's naming rule."""
    out = []
    groups = [("services", {s.compose_name: n for n, s in desired.services.items()}),
              ("networks", {n: n for n, o in desired.networks.items() if not o.external}),
              ("configs", {c.logical_name: n for n, c in desired.configs.items() if not c.external}),
              ("secrets", {c.logical_name: n for n, c in desired.secrets.items() if not c.external})]
    for kind, names in groups:
        for logical, name in sorted(names.items()):
            problem = name_problem(name)
            if problem:
                service = logical if kind == "services" else ""
                key = f"{kind}.{logical}" if kind == "services" else kind
                out.append(Finding(ERROR, stack, service, key, f"{kind[:-1]} name {name!r} {problem}"))
    return out


def name_problem(name: str) -> Optional[str]:
    """Why ``name`` is not a valid Swarm object name, or None when it is.

    Returns:
        e.g. ``"is 70 characters; Swarm allows 63"``; None for a good name.
    """
    if len(name) > MAX_NAME_LEN:
        return f"is {len(name)} characters; Swarm allows {MAX_NAME_LEN} (shorten the stack or key)"
    if not _NAME.match(name):
        return "must be letters, digits, '-', '_' or '.' and start and end with a letter or digit"
    return None


def _service(stack: str, svc: str, spec: dict) -> List[Finding]:
    """Findings for one service's rollout settings."""
    out = []
    base = f"services.{svc}.deploy"
    ports = (spec.get("EndpointSpec") or {}).get("Ports") or []
    host_ports = [p for p in ports if p.get("PublishMode") == "host" and p.get("PublishedPort")]
    for cfg_key, compose_key in (("UpdateConfig", "update_config"),
                                 ("RollbackConfig", "rollback_config")):
        cfg = spec.get(cfg_key) or {}
        if cfg.get("Order") == "start-first" and host_ports:
            published = ", ".join(str(p["PublishedPort"]) for p in host_ports)
            out.append(Finding(ERROR, stack, svc, f"{base}.{compose_key}.order",
                               f"order start-first with host-mode published port {published}: the "
                               "new task cannot bind the port while the old one runs and stays "
                               "Pending; use stop-first or ingress mode"))
    mode = (spec.get("EndpointSpec") or {}).get("Mode")
    ingress = [p for p in ports if p.get("PublishMode", "ingress") == "ingress"]
    if mode == "dnsrr" and ingress:
        out.append(Finding(ERROR, stack, svc, f"{base}.endpoint_mode",
                           "endpoint_mode dnsrr cannot publish ports in ingress mode; use "
                           "mode: host on the ports or endpoint_mode vip"))
    worst = healthcheck_worst_case_ns(spec)
    monitor = (spec.get("UpdateConfig") or {}).get("Monitor")
    if worst and monitor is not None and monitor < worst:
        out.append(Finding(WARNING, stack, svc, f"{base}.update_config.monitor",
                           f"monitor {monitor / 1e9:g}s is shorter than the healthcheck's worst "
                           f"case {worst / 1e9:g}s (start_period + interval x retries): a task "
                           "that never becomes healthy may pass the update"))
    return out


# Docker's healthcheck defaults when a timing is unset (moby daemon/health.go: interval 30s,
# retries 3, start period 0).
_DEFAULT_INTERVAL_NS = 30_000_000_000
_DEFAULT_RETRIES = 3


def healthcheck_worst_case_ns(spec: dict) -> int:
    """start_period + interval x retries of the service's own healthcheck, in nanoseconds.

    Returns:
        0 when the spec sets no healthcheck timings or disables it (the image's check is
        unknown here).
    """
    hc = (spec.get("TaskTemplate") or {}).get("ContainerSpec", {}).get("Healthcheck")
    if not hc or hc.get("Test") == ["NONE"]:
        return 0
    interval = hc.get("Interval") or _DEFAULT_INTERVAL_NS
    retries = hc.get("Retries") or _DEFAULT_RETRIES
    return (hc.get("StartPeriod") or 0) + interval * retries
