"""Values docker reads differently (issue 8, kind 10), on the real swarm: the same stack file
deployed by ``docker stack deploy`` and by Keelson. Keelson keeps a number's spelling in string
fields (``VERSION: 1.10`` stays ``1.10``) where docker sends ``1.1``, ``0755`` -> ``493`` and
``1e3`` -> ``1000``; ``validate`` and ``plan`` warn with stack, file and line.
"""
from __future__ import annotations

import subprocess

import pytest

from tests.integration.test_cli import clean_env, describe, keelson

pytestmark = pytest.mark.integration


def stack(registry: str) -> str:
    return f"""services:
  app:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "sleep 3600"]
    environment:
      VERSION: 1.10
      MODE: 0755
      COUNT: 1e3
      QUOTED: "1.10"
"""


def env_of(engine, service: str) -> dict:
    spec = engine.services.get(service).attrs["Spec"]
    return dict(e.split("=", 1) for e in spec["TaskTemplate"]["ContainerSpec"].get("Env", []))


def test_keelson_keeps_the_spelling_docker_does_not(engine, registry, manifest_repo,
                                                    stack_names, tmp_path):
    """docker stack deploy stores VERSION=1.1, MODE=493, COUNT=1000; Keelson stores what is
    written; ``validate`` (exit 0) and ``plan`` print one warning per differing value."""
    theirs, ours = stack_names("numd"), stack_names("numk")
    text = stack(registry)
    path = tmp_path / "docker-stack.yml"
    path.write_text(text)
    done = subprocess.run(["docker", "stack", "deploy", "-c", str(path), theirs],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert env_of(engine, f"{theirs}_app") == {"VERSION": "1.1", "MODE": "493", "COUNT": "1000",
                                               "QUOTED": "1.10"}

    manifest_repo.write(f"manifests/{ours}/stack.yml", text)
    manifest_repo.commit("numbers")
    env = clean_env(tmp_path)
    proc = keelson(["validate", str(manifest_repo.work / "manifests" / ours)], env, module=True)
    assert proc.returncode == 0, describe(proc)
    warnings = [ln.strip() for ln in proc.stdout.splitlines() if "docker stack deploy would" in ln]
    assert warnings == [
        f"warning: {ours}/stack.yml:6: key services.app.environment.VERSION: 1.10 is kept as the "
        "string '1.10'; docker stack deploy would send '1.1' (quote the value to make both agree)",
        f"warning: {ours}/stack.yml:7: key services.app.environment.MODE: 0755 is kept as the "
        "string '0755'; docker stack deploy would send '493' (quote the value to make both agree)",
        f"warning: {ours}/stack.yml:8: key services.app.environment.COUNT: 1e3 is kept as the "
        "string '1e3'; docker stack deploy would send '1000' (quote the value to make both agree)",
    ], proc.stdout

    args = ["--repo", manifest_repo.url, "--registry", registry, "--stack", ours]
    proc = keelson(["plan", *args], env, module=True)
    assert proc.returncode == 0, describe(proc)
    assert (f"  warning: manifests/{ours}/stack.yml:6: key services.app.environment.VERSION: "
            "1.10 is kept as the string '1.10'") in proc.stdout, proc.stdout
    proc = keelson(["sync", *args], env, module=True)
    assert proc.returncode == 0, describe(proc)
    assert env_of(engine, f"{ours}_app") == {"VERSION": "1.10", "MODE": "0755", "COUNT": "1e3",
                                             "QUOTED": "1.10"}
