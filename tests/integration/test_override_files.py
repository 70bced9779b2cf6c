"""Stacks split across files (issue 8, kind 2) on the real swarm: the Compose override file is
merged by Compose's rules, an explicit order comes from ``.keelson.yml``, ``plan`` and
``validate`` show the merged result, and two base files fail only their own stack, naming both.
"""
from __future__ import annotations

import pytest

from tests.integration.test_cli import clean_env, describe, keelson

pytestmark = pytest.mark.integration

NS = "com.docker.stack.namespace"


def base(registry: str) -> str:
    return f"""services:
  app:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "sleep 3600"]
    environment:
      - LEVEL=info
      - COLOR=blue
    deploy:
      replicas: 1
      labels: [tier=base]
"""


OVERRIDE = """services:
  app:
    command: ["sh", "-c", "exec sleep 3601"]
    environment:
      COLOR: green
      EXTRA: "yes"
    deploy:
      replicas: 2
"""


def env_of(engine, service: str) -> dict:
    spec = engine.services.get(service).attrs["Spec"]
    return dict(e.split("=", 1) for e in spec["TaskTemplate"]["ContainerSpec"].get("Env", []))


def test_override_file_is_merged_and_shown(engine, registry, manifest_repo, stack_names,
                                           tmp_path):
    """compose.yml + compose.override.yml deploy as one merged stack: replicas and command
    from the override, environment merged by name, labels kept from the base. ``plan`` and
    ``validate --show-merged`` print the files and the merged document; a folder with two base
    files fails alone (exit 1, both names in the message, nothing deployed for it)."""
    good, ambiguous = stack_names("ovr"), stack_names("ovramb")
    manifest_repo.write(f"manifests/{good}/compose.yml", base(registry))
    manifest_repo.write(f"manifests/{good}/compose.override.yml", OVERRIDE)
    manifest_repo.write(f"manifests/{ambiguous}/stack.yml", base(registry))
    manifest_repo.write(f"manifests/{ambiguous}/compose.yml", base(registry))
    manifest_repo.commit("split stack")
    env = clean_env(tmp_path)
    args = ["--repo", manifest_repo.url, "--registry", registry, "--stack", good,
            "--stack", ambiguous]

    proc = keelson(["plan", "--show-merged", *args], env, module=True)
    assert proc.returncode == 1, describe(proc)  # the ambiguous stack cannot be planned
    assert f"  files: {good}/compose.yml + {good}/compose.override.yml" in proc.stdout, proc.stdout
    assert "      COLOR: green" in proc.stdout and "      replicas: 2" in proc.stdout, proc.stdout
    assert (f"stack {ambiguous}: cannot plan: stack {ambiguous}: manifests/{ambiguous}: more than one base "
            "stack file: stack.yml, compose.yml; keep one, or list the files to merge in order "
            "in .keelson.yml (files: [...])") in proc.stdout, proc.stdout

    proc = keelson(["sync", *args], env, module=True)
    assert proc.returncode == 1, describe(proc)
    assert f"  {good}: Synced / Healthy" in proc.stdout, proc.stdout
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(f"  {ambiguous}:"))
    assert line.startswith(f"  {ambiguous}: Failed / Unknown: ") and \
        "more than one base stack file: stack.yml, compose.yml" in line, proc.stdout
    assert not engine.services.list(filters={"label": f"{NS}={ambiguous}"})

    svc = engine.services.get(f"{good}_app")
    spec = svc.attrs["Spec"]
    assert spec["Mode"]["Replicated"]["Replicas"] == 2
    assert spec["TaskTemplate"]["ContainerSpec"]["Args"] == ["sh", "-c", "exec sleep 3601"]
    assert env_of(engine, f"{good}_app") == {"LEVEL": "info", "COLOR": "green", "EXTRA": "yes"}
    assert spec["Labels"]["tier"] == "base"

    proc = keelson(["validate", "--show-merged", str(manifest_repo.work / "manifests" / good)],
                   env, module=True)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.splitlines()[:2] == [
        f"ok   {good}: 1 service(s)", f"     files: {good}/compose.yml + {good}/compose.override.yml"]
    assert "         EXTRA: 'yes'" in proc.stdout, proc.stdout


def test_keelson_file_orders_the_files(engine, registry, manifest_repo, stack_names, tmp_path):
    """``.keelson.yml`` (files: [base.yml, prod.yml]) picks the files and their order; a later
    file wins; the stack converges and a second sync writes nothing (exit 0 both times)."""
    name = stack_names("ovrk")
    manifest_repo.write(f"manifests/{name}/.keelson.yml", "files: [base.yml, env/prod.yml]\n")
    manifest_repo.write(f"manifests/{name}/base.yml", base(registry))
    manifest_repo.write(f"manifests/{name}/env/prod.yml",
                        "services:\n  app:\n    deploy:\n      replicas: 3\n")
    manifest_repo.commit("explicit order")
    env = clean_env(tmp_path)
    args = ["--repo", manifest_repo.url, "--registry", registry, "--stack", name]
    proc = keelson(["sync", *args], env, module=True)
    assert proc.returncode == 0, describe(proc)
    assert engine.services.get(f"{name}_app").attrs["Spec"]["Mode"]["Replicated"]["Replicas"] == 3
    index = engine.services.get(f"{name}_app").attrs["Version"]["Index"]
    proc = keelson(["plan", "--detailed-exitcode", *args], env, module=True)
    assert proc.returncode == 0, describe(proc)
    assert f"  files: {name}/base.yml + {name}/env/prod.yml" in proc.stdout, proc.stdout
    assert engine.services.get(f"{name}_app").attrs["Version"]["Index"] == index
