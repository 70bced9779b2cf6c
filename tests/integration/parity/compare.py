"""Deploy one stack file with ``docker stack deploy`` and with Keelson, and compare what the
engine stores, object by object (services, networks, configs, secrets).

Names differ by stack prefix (each deployer gets its own stack name) and Keelson's configs and
secrets carry a content version suffix (``<stack>_<key>-<hash10>``, DESIGN: rotation): both are
normalized away, and so are object IDs (network targets, config/secret IDs) and Keelson's
per-revision bookkeeping labels (``io.keelson.revision``, ``spec-hash``, ``source-hash``,
``config-name``; they change with every commit by design). ``io.keelson.managed-by`` is kept:
it is a real difference, justified by the caller.

A difference is a ``path -> (docker value, keelson value)`` with ``/``-joined paths (labels hold
dots), collapsed to the top-most key present on one side only.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
from typing import Dict, Iterable, List, Optional, Tuple

ABSENT = "<absent>"
BOOKKEEPING = ("io.keelson.revision", "io.keelson.spec-hash", "io.keelson.source-hash",
               "io.keelson.config-name", "io.keelson.secret-name")
NAMESPACE = "com.docker.stack.namespace"
NETWORK_KEYS = ("Driver", "Options", "Internal", "Attachable", "Labels", "IPAM", "EnableIPv6",
                "Scope", "Ingress")


def flatten(value, prefix=""):
    """JSON value -> {"A/B/0/C": leaf}; empty dicts/lists are leaves."""
    if isinstance(value, dict) and value:
        out = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}/{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}/{i}"))
        return out
    return {prefix: value}


def at(value, path: str):
    """The value at a ``A/B/0`` path, or ``ABSENT``."""
    for part in path.split("/"):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return ABSENT
    return value


def differing(a, b) -> Dict[str, Tuple[object, object]]:
    """Top-most differing paths between two JSON values -> (a's value, b's value)."""
    fa, fb = flatten(a), flatten(b)
    paths = {p for p in set(fa) | set(fb) if fa.get(p, ABSENT) != fb.get(p, ABSENT)}
    out = {}
    for p in paths:
        parts = p.split("/")
        chosen = p
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            in_a = any(k == prefix or k.startswith(prefix + "/") for k in fa)
            in_b = any(k == prefix or k.startswith(prefix + "/") for k in fb)
            if in_a != in_b:
                chosen = prefix
                break
        out[chosen] = (at(a, chosen), at(b, chosen))
    return out


def neutral(value, stacks: Iterable[str], ids: Dict[str, str]):
    """Replace stack names, object IDs and version suffixes so two deployments compare."""
    text = json.dumps(value, sort_keys=True)
    for obj_id, name in ids.items():
        text = text.replace(obj_id, name)
    for stack in sorted(stacks, key=len, reverse=True):
        text = text.replace(stack, "STACK")
    text = re.sub(r'("(?:Config|Secret)ID": )"[A-Za-z0-9_.-]+"', r'\1"ID"', text)
    text = re.sub(r'"(STACK_[A-Za-z0-9_.-]+)-[0-9a-f]{10}"', r'"\1"', text)
    out = json.loads(text)

    def drop(obj):
        if isinstance(obj, dict):
            for k in [k for k in obj if k in BOOKKEEPING]:
                del obj[k]
            for v in obj.values():
                drop(v)
        elif isinstance(obj, list):
            for v in obj:
                drop(v)
    drop(out)
    # docker's CLI collects config/secret references in a map keyed by target (docker/cli
    # ParseConfigs/ParseSecrets), so its order is random; the order has no meaning to Swarm.
    spec = out.get("TaskTemplate", {}).get("ContainerSpec", {}) if isinstance(out, dict) else {}
    for key in ("Configs", "Secrets"):
        if isinstance(spec.get(key), list):
            spec[key] = sorted(spec[key], key=lambda r: json.dumps(r, sort_keys=True))
    return out


def snapshot(engine, stack: str, others: Iterable[str] = ()) -> Dict[str, dict]:
    """Every object of ``stack`` as stored: kind -> short name -> neutral JSON.

    Short names drop the ``<stack>_`` prefix and a config/secret version suffix. ``others``:
    further stack names to neutralize (e.g. the other deployer's, when an image name holds it).
    """
    flt = {"label": f"{NAMESPACE}={stack}"}
    ids = {n.id: n.name for n in engine.networks.list()}
    stacks = [stack, *others]
    out: Dict[str, dict] = {"services": {}, "networks": {}, "configs": {}, "secrets": {}}
    for s in engine.services.list(filters=flt):
        out["services"][s.name[len(stack) + 1:]] = neutral(s.attrs["Spec"], stacks, ids)
    for n in engine.networks.list(filters=flt, greedy=True):
        attrs = {k: n.attrs.get(k) for k in NETWORK_KEYS}
        out["networks"][n.name[len(stack) + 1:]] = neutral(attrs, stacks, ids)
    for kind, coll in (("configs", engine.configs), ("secrets", engine.secrets)):
        for obj in coll.list(filters=flt):
            spec = neutral(obj.attrs["Spec"], stacks, ids)
            out[kind][spec["Name"][len("STACK_"):]] = spec
    return out


def compare(theirs: Dict[str, dict], ours: Dict[str, dict]) -> Dict[str, Dict[str, dict]]:
    """kind -> name -> {path: (docker, keelson)}; objects on one side only use path ``""``."""
    report: Dict[str, Dict[str, dict]] = {}
    for kind in ("services", "networks", "configs", "secrets"):
        a, b = theirs.get(kind, {}), ours.get(kind, {})
        for name in sorted(set(a) | set(b)):
            if name not in a or name not in b:
                diff = {"": ("present" if name in a else ABSENT,
                             "present" if name in b else ABSENT)}
            else:
                diff = differing(a[name], b[name])
            if diff:
                report.setdefault(kind, {})[name] = diff
    return report


def docker_deploy(path: pathlib.Path, stack: str, env: Optional[dict] = None,
                  resolve: str = "always") -> subprocess.CompletedProcess:
    """``docker stack deploy -c path stack`` (CLI on PATH), run in the file's folder."""
    return subprocess.run(["docker", "stack", "deploy", "--detach=true", "--resolve-image",
                           resolve, "-c", str(path), stack], capture_output=True, text=True,
                          cwd=path.parent, env=dict(os.environ, **(env or {})))


def remove_services(engine, stack: str) -> None:
    """Remove a stack's services only (frees its published ports; networks stay to inspect)."""
    for s in engine.services.list(filters={"label": f"{NAMESPACE}={stack}"}):
        s.remove()


def keelson_folder(src: pathlib.Path, base: pathlib.Path, stack: str,
                   stack_file: Optional[str] = None) -> pathlib.Path:
    """Copy a stack folder to ``base/manifests/<stack>/`` (``stack_file`` -> ``stack.yml``).

    Returns:
        ``base`` (the repo folder Keelson reads as a plain folder).
    """
    dest = base / "manifests" / stack
    if stack_file is None:
        shutil.copytree(src, dest)
    else:
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*.yml", "*.yaml", "*.md"))
        shutil.copy(src / stack_file, dest / "stack.yml")
    return base


def _one(want, got) -> bool:
    return want is ... or (callable(want) and want(got)) or (not callable(want) and want == got)


def _matches(want, theirs, ours) -> bool:
    return want is not None and _one(want[0], theirs) and _one(want[1], ours)


def unexplained(report: Dict[str, Dict[str, dict]], justified: Dict[Tuple[str, str, str], tuple],
                general: Optional[Dict[Tuple[str, str], tuple]] = None,
                ) -> Tuple[List[str], List[str]]:
    """Match a report against justified differences.

    Args:
        report: :func:`compare`'s result.
        justified: (kind, name, path) -> (docker value, keelson value, reason) for one object;
            each must occur. A value of ``...`` matches anything.
        general: (kind, path) -> (docker value, keelson value, reason) for any object of that
            kind: systematic differences, which apply only where the values match exactly.
    Returns:
        (differences not justified, specific justifications that did not occur), as lines.
    """
    bad, seen = [], set()
    general = GENERAL if general is None else general
    for kind, objs in report.items():
        for name, diff in objs.items():
            for path, (theirs, ours) in sorted(diff.items()):
                key = (kind, name, path)
                if _matches(justified.get(key), theirs, ours):
                    seen.add(key)
                    continue
                if _matches(general.get((kind, path)), theirs, ours):
                    continue
                bad.append(f"{kind}/{name}: {path}: docker={json.dumps(theirs)} "
                           f"keelson={json.dumps(ours)}")
    stale = [f"{k[0]}/{k[1]}: {k[2]} ({v[2]})" for k, v in justified.items() if k not in seen]
    return bad, stale


KEELSON_DEFAULT_UPDATE = {"FailureAction": "rollback", "MaxFailureRatio": 0,
                          "Monitor": 5000000000, "Order": "stop-first", "Parallelism": 1}
_OWNER = {
    "Labels/io.keelson.managed-by": (ABSENT, "keelson", "Keelson's owner label on every object "
                                     "it creates (DESIGN: state lives in labels)"),
    "Labels/io.keelson.instance": (ABSENT, ..., "which Keelson instance owns the object, so one "
                                   "never prunes another's stacks"),
}
# Systematic differences, (kind, path) -> (docker value, keelson value, why); a value may be
# ``...`` (anything) or a predicate. They apply wherever the values match.
GENERAL: Dict[Tuple[str, str], tuple] = {
    **{("services", p): v for p, v in _OWNER.items()},
    **{("networks", p): v for p, v in _OWNER.items()},
    **{("configs", p): v for p, v in _OWNER.items()},
    **{("secrets", p): v for p, v in _OWNER.items()},
    ("configs", ""): (ABSENT, "present", "Keelson's per-stack state record config "
                      "<stack>_keelson-state (what it must remember, as labels)"),
    # docker's Go structs always send these, empty; Keelson sends only keys the stack sets.
    ("services", "TaskTemplate/ContainerSpec/Privileges"): (
        {"CredentialSpec": None, "SELinuxContext": None}, ABSENT,
        "docker always sends Privileges {CredentialSpec: null, SELinuxContext: null}"),
    ("services", "TaskTemplate/Resources"): ({}, ABSENT, "docker always sends Resources {}"),
    ("services", "EndpointSpec"): ({"Mode": "vip"}, ABSENT,
                                   "docker always sends EndpointSpec {Mode: ''} (stored vip)"),
    # Both pin Placement.Platforms from the registry (docker: --resolve-image always), so
    # Platforms is compared like any other key and must be equal.
    ("services", "UpdateConfig"): (ABSENT, KEELSON_DEFAULT_UPDATE,
                                   "Keelson always sends an UpdateConfig: FailureAction rollback "
                                   "(Swarm: pause), Parallelism 1 and Monitor 5s stated"),
    # Allocated by Swarm for each network: two networks never share them.
    ("networks", "IPAM/Config/0/Subnet"): (..., ..., "subnet allocated by Swarm"),
    ("networks", "IPAM/Config/0/Gateway"): (..., ..., "gateway allocated by Swarm"),
    ("networks", "Options/com.docker.network.driver.overlay.vxlanid_list"): (
        ..., ..., "VXLAN id allocated by Swarm"),
}


def docker_copy(src: pathlib.Path, dest: pathlib.Path, stack_file: str,
                images: Dict[str, str]) -> pathlib.Path:
    """A copy of a stack folder for docker: each ``build:`` replaced by ``image: images[svc]``.

    ``docker stack deploy`` ignores ``build:``; it gets the reference Keelson built and pushed.
    Returns:
        the copied stack file's path.
    """
    import yaml  # only the copy needs it; anchors are expanded, the content is the same
    shutil.copytree(src, dest)
    path = dest / stack_file
    if images:
        data = yaml.safe_load(path.read_text())
        for svc_name, svc in data["services"].items():
            if "build" in svc:
                svc.pop("build")
                svc["image"] = images[svc_name]
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def service_labels(engine, stack: str, key: str) -> Dict[str, str]:
    """compose service name -> the value of service label ``key``."""
    return {s.name[len(stack) + 1:]: s.attrs["Spec"]["Labels"].get(key)
            for s in engine.services.list(filters={"label": f"{NAMESPACE}={stack}"})}
