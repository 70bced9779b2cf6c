"""Behaviour: Keelson's conversion of a stack file matches ``docker stack deploy`` of the same
file; every difference is listed here with its justification.

For each stack file, the docker CLI deploys it under one stack name and Keelson's objects are
created with the docker SDK from ``to_desired()`` under another. The Service specs the engine
stores (``service inspect`` .Spec) are compared key by key after replacing the stack names,
network IDs and config/secret IDs and version suffixes. A difference not listed in
``JUSTIFIED`` fails the test, and so does a listed one that no longer occurs.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess

import pytest
import yaml

from controller.model.manifest import StackManifest
from controller.render.convert import to_desired
from tests.integration.conftest import remove_stack

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
IMAGE = "127.0.0.1:5000/keelson-parity/busybox:1"

# Paths (after flattening, list items by index) where Keelson deliberately differs, and why.
COMMON = {
    # DESIGN.md ownership: Keelson marks what it owns; docker has no such label.
    "Labels/io.keelson.managed-by": "Keelson's owner label on every object it creates",
}
NO_UPDATE_CONFIG = {
    # Keelson difference: rollback instead of Swarm's pause, sent even when the stack has no
    # update_config; Parallelism/Monitor are Swarm's own defaults, stated so the engine does
    # not read 0 as "all at once, no monitoring".
    "UpdateConfig": "Keelson sends {Parallelism 1, FailureAction rollback, Monitor 5s}; docker none",
}
FAILURE_ACTION_DEFAULT = {
    "UpdateConfig/FailureAction": "Keelson defaults failure_action to rollback (Swarm: pause)",
}
# docker's Go structs always send these, empty; Keelson sends only keys the stack sets (the
# engine stores what it is sent, and both mean "nothing set"), so sparse input stays sparse.
PRIVILEGES = {"TaskTemplate/ContainerSpec/Privileges": "docker always sends Privileges "
              "{CredentialSpec: null, SELinuxContext: null}"}
EMPTY_PLACEMENT = {"TaskTemplate/Placement": "docker always sends Placement {}"}
EMPTY_RESOURCES = {"TaskTemplate/Resources": "docker always sends Resources {}"}
NO_ENDPOINT = {"EndpointSpec": "docker always sends EndpointSpec {Mode: ''} (stored as vip)"}
JUSTIFIED = {
    ("full", "web"): {**COMMON, **PRIVILEGES},
    ("full", "worker"): {**COMMON, **NO_UPDATE_CONFIG, **PRIVILEGES, **EMPTY_PLACEMENT,
                         **EMPTY_RESOURCES},
    ("full", "sparse"): {**COMMON, **FAILURE_ACTION_DEFAULT, **PRIVILEGES, **EMPTY_PLACEMENT,
                         **EMPTY_RESOURCES, **NO_ENDPOINT},
}


def flatten(value, prefix=""):
    """JSON value -> {"A/B/0/C" path: leaf}; empty dicts/lists are leaves ('/': labels hold dots)."""
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
    """The value at a ``A/B/0`` path, or ``"<absent>"``."""
    for part in path.split("/"):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return "<absent>"
    return value


def neutral(spec: dict, stack: str, net_names: dict) -> dict:
    """Replace stack-name-dependent parts so two stacks' specs can be compared."""
    text = json.dumps(spec)
    for net_id, name in net_names.items():
        text = text.replace(net_id, name)
    text = text.replace(stack, "STACK")
    text = re.sub(r'("(?:Config|Secret)ID": )"[a-z0-9]+"', r'\1"ID"', text)
    text = re.sub(r"(STACK_[A-Za-z0-9_]+)-[0-9a-f]{10}\b", r"\1", text)  # content version
    out = json.loads(text)
    labels = out.get("Labels", {})
    for k in [k for k in labels if k.startswith("io.keelson.") and k != "io.keelson.managed-by"]:
        del labels[k]  # revision/spec-hash: per-revision bookkeeping
    return out


def differing(a: dict, b: dict) -> set:
    """Top-most differing paths between two specs (a whole key when only one side has it)."""
    fa, fb = flatten(a), flatten(b)
    paths = set()
    for p in set(fa) | set(fb):
        if fa.get(p, "<absent>") != fb.get(p, "<absent>"):
            paths.add(p)
    # collapse to the shortest prefix that exists on one side only
    out = set()
    for p in paths:
        parts = p.split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            in_a = any(k == prefix or k.startswith(prefix + "/") for k in fa)
            in_b = any(k == prefix or k.startswith(prefix + "/") for k in fb)
            if in_a != in_b:
                out.add(prefix)
                break
        else:
            out.add(p)
    return out


def manifest_for(path: pathlib.Path, stack: str) -> StackManifest:
    """Build the StackManifest the loader would give for these simple parity files."""
    compose = yaml.safe_load(path.read_text())
    compose.pop("version", None)
    for section in ("configs", "secrets"):
        for obj in (compose.get(section) or {}).values():
            if obj.get("file"):
                obj["file"] = str((path.parent / obj["file"]).resolve())
    return StackManifest(name=stack, file=str(path), directory=str(path.parent), compose=compose)


def create_keelson_objects(engine, desired) -> None:
    """Create networks, configs, secrets, then services, from a DesiredStack, via the SDK."""
    for net in desired.networks.values():
        if net.external:
            continue
        s = net.spec
        ipam = None
        engine.networks.create(s["Name"], driver=s.get("Driver"), options=s.get("Options"),
                               ipam=ipam, internal=s.get("Internal", False),
                               attachable=s.get("Attachable", False), labels=s.get("Labels"),
                               scope="swarm")
    ids = {}
    for kind, coll in (("Config", engine.configs), ("Secret", engine.secrets)):
        objs = desired.configs if kind == "Config" else desired.secrets
        for obj in objs.values():
            created = coll.create(name=obj.name, data=obj.data, labels=obj.labels)
            ids[(kind, obj.name)] = created.id
    api = engine.api
    for svc in desired.services.values():
        spec = json.loads(json.dumps(svc.spec))
        cspec = spec["TaskTemplate"]["ContainerSpec"]
        for kind in ("Config", "Secret"):
            for ref in cspec.get(kind + "s", []):
                ref[kind + "ID"] = ids[(kind, ref[kind + "Name"])]
        resp = api._post_json(api._url("/services/create"), data=spec)
        api._result(resp, True)


def service_specs(engine, stack: str) -> dict:
    """compose service name -> stored Spec, for one stack."""
    out = {}
    for s in engine.services.list(filters={"label": f"com.docker.stack.namespace={stack}"}):
        out[s.name[len(stack) + 1:]] = s.attrs["Spec"]
    return out


def parity_files():
    """(case name, stack file) pairs: our parity files, plus bundled manifests without build:."""
    files = [(p.stem, p) for p in sorted(HERE.glob("parity/*.yml"))]
    for p in sorted((ROOT / "manifests").glob("*/stack.yml")):
        text = p.read_text()
        if "build:" not in text and "${" not in text:
            files.append((f"manifest-{p.parent.name}", p))
    return files


@pytest.fixture(scope="module")
def parity_image(engine):
    """busybox pushed under the name the parity stacks use."""
    engine.images.get("busybox:latest").tag(IMAGE)
    subprocess.run(["docker", "push", "-q", IMAGE], check=True, capture_output=True)
    return IMAGE


@pytest.mark.parametrize("case,path", parity_files(), ids=[c for c, _ in parity_files()])
def test_conversion_matches_docker_stack_deploy(engine, stack_names, parity_image, case, path):
    """Same stack file, two deployers: stored specs equal except the justified differences."""
    docker_stack, keelson_stack = stack_names("pd"), stack_names("pk")
    done = subprocess.run(["docker", "stack", "deploy", "--detach=true", "--resolve-image",
                           "never", "-c", str(path), docker_stack], capture_output=True,
                          text=True, cwd=path.parent, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    net_names = {n.id: n.name for n in engine.networks.list()}
    theirs = {k: neutral(v, docker_stack, net_names) for k, v in service_specs(engine, docker_stack).items()}
    remove_stack(engine, docker_stack)  # frees the published ports for Keelson's copy

    desired = to_desired(manifest_for(path, keelson_stack), images={})
    create_keelson_objects(engine, desired)
    net_names = {n.id: n.name for n in engine.networks.list()}
    ours = {k: neutral(v, keelson_stack, net_names) for k, v in service_specs(engine, keelson_stack).items()}
    assert sorted(theirs) == sorted(ours)
    report = {}
    for svc in sorted(ours):
        diff = differing(theirs[svc], ours[svc])
        justified = set(JUSTIFIED.get((case, svc), COMMON))
        if diff != justified:
            report[svc] = {
                "unjustified": {p: (at(theirs[svc], p), at(ours[svc], p)) for p in diff - justified},
                "no longer differs": sorted(justified - diff),
            }
    assert not report, json.dumps(report, indent=1, default=str)
