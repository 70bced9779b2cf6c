"""Admission levels: what a stack may ask Swarm for, checked on its converted Engine specs.

The levels follow the Kubernetes Pod Security Standards (privileged / baseline / restricted,
kubernetes.io/docs/concepts/security/pod-security-standards), mapped onto what a Swarm
ServiceSpec can express (Engine API ``ContainerSpec``, ``Mounts``, ``EndpointSpec``). Swarm
ignores ``privileged``, ``devices``, ``security_opt``, ``pid``/``ipc``/``userns_mode: host`` and
``network_mode`` (docker/cli compose ``UnsupportedProperties``; the loader warns about them), so
the rules look at what Swarm does honour:

Every level: no secret, config or network that is Keelson's own (``protected``), and no
``x-keelson.policy`` (the operator sets the level, a stack cannot lower it).

``baseline`` adds: no bind of ``/``, of a Docker/containerd socket or of a folder holding one,
no bind (also through a ``local`` volume with ``o: bind``) outside KEELSON_ALLOWED_BIND_PATHS; no
``host`` network; ``cap_add`` only of the capabilities Docker grants by default (Kubernetes
baseline's list: SYS_ADMIN, NET_ADMIN, SYS_PTRACE, SYS_MODULE, ALL... are refused); ``sysctls``
only from Kubernetes' safe set; no ``Privileges`` that turn off SELinux, seccomp or AppArmor.

``restricted`` adds: no host-mode published port below 1024, a non-root ``user``, a read-only
root filesystem, and ``cap_add`` of NET_BIND_SERVICE only.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

from controller.config import PolicyLevel
from controller.model.desired import DesiredService, DesiredStack
from controller.model.manifest import StackManifest
from controller.policy.protected import ProtectedNames

# Capabilities Kubernetes baseline allows to add (Docker's default set, NET_RAW excepted).
BASELINE_CAPS = frozenset("CAP_" + c for c in (
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"))
RESTRICTED_CAPS = frozenset({"CAP_NET_BIND_SERVICE"})
# Kubernetes baseline's "safe" sysctls (namespaced, cannot affect other containers).
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes"})
# Binding one of these, or a folder that holds one, hands out root on the node.
ENGINE_PATHS = ("/var/run/docker.sock", "/run/docker.sock", "/var/run/docker", "/run/docker",
                "/run/containerd", "/var/run/containerd", "/var/lib/docker", "/var/lib/containerd")
ENGINE_SOCKETS = ("docker.sock", "containerd.sock", "podman.sock", "cri-dockerd.sock")
PRIVILEGED_PORT_LIMIT = 1024  # ports below this need root on the node (restricted: host mode)

# rule names (stable; shown in errors and docs)
OWN_OBJECT, POLICY_LEVEL = "own-object", "policy-level"
HOST_ROOT, ENGINE_SOCKET, HOST_PATH, HOST_NETWORK = ("host-root", "engine-socket", "host-path",
                                                      "host-network")
CAPABILITIES, SYSCTLS, PRIVILEGES = "capabilities", "sysctls", "privileges"
HOST_PORT, RUN_AS_ROOT, READ_ONLY_ROOT = "privileged-port", "run-as-root", "read-only-root"


@dataclass(frozen=True)
class Violation:
    """One thing a stack asks for that the policy refuses.

    Attributes:
        stack: stack name. service: compose service name ("" for stack-level keys).
        key: dotted key path in the stack file (``services.web.cap_add``).
        rule: the rule's stable name (``capabilities``, ``engine-socket``, ``own-object``...).
        message: what is refused and how to fix it. level: the level that refuses it.
        line: 1-based line of ``key`` in the stack file, or None when unknown.
    """

    stack: str
    service: str
    key: str
    rule: str
    message: str
    level: str
    line: Optional[int] = None

    def __str__(self) -> str:
        where = f"stack {self.stack}" + (f" service {self.service}" if self.service else "")
        at = f" (line {self.line})" if self.line else ""
        return (f"{where} key {self.key}{at}: {self.message} "
                f"[policy {self.level}, rule {self.rule}]")


@dataclass(frozen=True)
class AdmissionPolicy:
    """The operator's admission policy.

    Attributes:
        level: PolicyLevel (KEELSON_POLICY).
        protected: Keelson's own names (refused at every level).
        allowed_bind_paths: absolute host paths under which binds are allowed at baseline and
            restricted (KEELSON_ALLOWED_BIND_PATHS); empty allows none.
    """

    level: PolicyLevel = PolicyLevel.BASELINE
    protected: ProtectedNames = ProtectedNames()
    allowed_bind_paths: Tuple[str, ...] = ()


def check(desired: DesiredStack, policy: AdmissionPolicy,
          manifest: Optional[StackManifest] = None) -> List[Violation]:
    """Everything in a converted stack that ``policy`` refuses.

    Args:
        desired: the stack's Engine specs (``render.convert.to_desired``).
        policy: the operator's AdmissionPolicy.
        manifest: the loaded stack, for ``x-keelson`` and key lines; None skips both.
    Returns:
        list of Violation, stack-level first, then by service and key; empty when admitted.
    Raises:
        nothing: refusals are returned (``guard`` turns them into a PolicyError).
    """
    out: List[_Found] = []
    if manifest is not None and "policy" in manifest.x_keelson:
        out.append(_Found("", "x-keelson.policy", POLICY_LEVEL,
                          "a stack cannot set its policy level; the operator sets KEELSON_POLICY "
                          f"(now {policy.level.value})"))
    for svc in sorted(desired.services.values(), key=lambda s: s.compose_name):
        out += _own_objects(desired, svc, policy.protected)
        if policy.level != PolicyLevel.PRIVILEGED:
            out += _baseline(desired, svc, policy)
        if policy.level == PolicyLevel.RESTRICTED:
            out += _restricted(svc)
    positions = manifest.positions if manifest is not None else {}
    return [Violation(desired.name, f.service, f.key, f.rule, f.message, policy.level.value,
                      _line(positions, f.key)) for f in out]


@dataclass(frozen=True)
class _Found:
    service: str
    key: str
    rule: str
    message: str


def _line(positions, key: str) -> Optional[int]:
    """Line of ``key`` or of its nearest parent that has one."""
    parts = key.split(".")
    while parts:
        line = positions.get(".".join(parts))
        if line:
            return line
        parts.pop()
    return None


def _container(svc: DesiredService) -> dict:
    return (svc.spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}


def _own_objects(desired: DesiredStack, svc: DesiredService,
                 protected: ProtectedNames) -> List[_Found]:
    """Secrets, configs and networks of Keelson's that the service would use."""
    out = []
    cs = _container(svc)
    base = f"services.{svc.compose_name}"
    mine = f"{desired.name}_"
    for kind, refs, field, objs in (("secret", cs.get("Secrets") or [], "SecretName", desired.secrets),
                                    ("config", cs.get("Configs") or [], "ConfigName", desired.configs)):
        for ref in refs:
            name = ref.get(field, "")
            obj = objs.get(name)
            if obj is not None and not obj.external and name.startswith(mine):
                continue  # created by this stack, under its own name
            why = protected.why(kind, name)
            if why:
                out.append(_Found(svc.compose_name, f"{base}.{kind}s", OWN_OBJECT,
                                  f"{kind} {name} {why}; a stack may not mount Keelson's own "
                                  f"{kind}s"))
    for att in (svc.spec.get("TaskTemplate") or {}).get("Networks") or []:
        name = att.get("Target", "")
        net = desired.networks.get(name)
        if net is not None and not net.external and name.startswith(mine):
            continue
        why = protected.why("network", name)
        if why:
            out.append(_Found(svc.compose_name, f"{base}.networks", OWN_OBJECT,
                              f"network {name} {why}; a stack may not join Keelson's own "
                              "networks"))
    return out


def _baseline(desired: DesiredStack, svc: DesiredService, policy: AdmissionPolicy) -> List[_Found]:
    """Host access and privileges refused from baseline up."""
    out = []
    cs = _container(svc)
    base = f"services.{svc.compose_name}"
    for i, m in enumerate(cs.get("Mounts") or []):
        source, how = _bind_source(m)
        if source is None:
            continue
        problem = bind_problem(source, policy.allowed_bind_paths)
        if problem:
            out.append(_Found(svc.compose_name, f"{base}.volumes.{i}", problem[0],
                              f"{how} of host path {source} {problem[1]}"))
    for att in (svc.spec.get("TaskTemplate") or {}).get("Networks") or []:
        if att.get("Target") == "host":
            out.append(_Found(svc.compose_name, f"{base}.networks", HOST_NETWORK,
                              "joining the host network gives the service the node's network "
                              "stack; use an overlay network"))
    allowed = RESTRICTED_CAPS if policy.level == PolicyLevel.RESTRICTED else BASELINE_CAPS
    refused = [c for c in cs.get("CapabilityAdd") or [] if c not in allowed]
    if refused:
        names = ", ".join(c[4:] if c.startswith("CAP_") else c for c in refused)
        out.append(_Found(svc.compose_name, f"{base}.cap_add", CAPABILITIES,
                          f"adds capabilities {names}; {policy.level.value} allows only "
                          f"{', '.join(sorted(c[4:] for c in allowed))}"))
    for name in sorted(cs.get("Sysctls") or {}):
        if name not in SAFE_SYSCTLS:
            out.append(_Found(svc.compose_name, f"{base}.sysctls.{name}", SYSCTLS,
                              f"sysctl {name} is not in the safe set "
                              f"({', '.join(sorted(SAFE_SYSCTLS))})"))
    priv = cs.get("Privileges") or {}
    turned_off = []
    if (priv.get("SELinuxContext") or {}).get("Disable"):
        turned_off.append("SELinux labelling")
    if str((priv.get("Seccomp") or {}).get("Mode", "")).lower() == "unconfined":
        turned_off.append("seccomp")
    if str((priv.get("AppArmor") or {}).get("Mode", "")).lower() == "disabled":
        turned_off.append("AppArmor")
    if turned_off:
        out.append(_Found(svc.compose_name, base, PRIVILEGES,
                          f"turns off {', '.join(turned_off)} for the service's containers"))
    return out


def _bind_source(mount: dict) -> Tuple[Optional[str], str]:
    """(host path, how) a mount binds, or (None, "") when it binds none."""
    if mount.get("Type") == "bind":
        return str(mount.get("Source") or ""), "bind mount"
    if mount.get("Type") == "volume":
        drv = ((mount.get("VolumeOptions") or {}).get("DriverConfig") or {})
        opts = drv.get("Options") or {}
        if drv.get("Name", "") in ("", "local") and "bind" in re.split(r"[,\s]+", opts.get("o", "")):
            return str(opts.get("device") or ""), "volume (local driver, o: bind)"
    return None, ""


def bind_problem(source: str, allowed: Tuple[str, ...]) -> Optional[Tuple[str, str]]:
    """Why binding host path ``source`` is refused from baseline up, or None when allowed.

    Args:
        source: the host path as the Engine gets it. allowed: KEELSON_ALLOWED_BIND_PATHS.
    Returns:
        (rule, message) or None. ``/`` and Docker/containerd sockets (or folders holding one)
        are refused even under an allowed path.
    """
    if not source.startswith("/"):
        return HOST_PATH, "is not an absolute path Keelson can check"
    path = "/" + posixpath.normpath(source).lstrip("/")
    if path == "/":
        return HOST_ROOT, "is the node's root filesystem"
    if posixpath.basename(path) in ENGINE_SOCKETS or any(
            p == path or p.startswith(path + "/") for p in ENGINE_PATHS):
        return ENGINE_SOCKET, "exposes the container engine's socket (root on the node)"
    for a in allowed:
        a = "/" + posixpath.normpath(a).lstrip("/")
        if a == "/" or path == a or path.startswith(a + "/"):
            return None
    shown = ", ".join(allowed) if allowed else "empty"
    return HOST_PATH, f"is outside KEELSON_ALLOWED_BIND_PATHS ({shown})"


def _restricted(svc: DesiredService) -> List[_Found]:
    """What restricted adds: no privileged host ports, non-root user, read-only root fs."""
    out = []
    cs = _container(svc)
    base = f"services.{svc.compose_name}"
    for p in (svc.spec.get("EndpointSpec") or {}).get("Ports") or []:
        published = p.get("PublishedPort")
        if p.get("PublishMode") == "host" and published and published < PRIVILEGED_PORT_LIMIT:
            out.append(_Found(svc.compose_name, f"{base}.ports", HOST_PORT,
                              f"host-mode published port {published} is below "
                              f"{PRIVILEGED_PORT_LIMIT}; publish a higher port or use ingress"))
    user = str(cs.get("User") or "")
    if user.split(":", 1)[0] in ("", "root", "0"):
        why = "runs as the image's default user (often root)" if not user else f"runs as {user}"
        out.append(_Found(svc.compose_name, f"{base}.user", RUN_AS_ROOT,
                          f"{why}; set user: to a non-root uid"))
    if not cs.get("ReadOnly"):
        out.append(_Found(svc.compose_name, f"{base}.read_only", READ_ONLY_ROOT,
                          "the root filesystem is writable; set read_only: true (and mount "
                          "volumes or tmpfs where the service writes)"))
    return out
