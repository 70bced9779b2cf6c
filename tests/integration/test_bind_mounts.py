"""Relative bind mounts (issue 8, kind 8) on the real swarm: refused with a hint by default,
resolved under ``KEELSON_BIND_ROOT/<stack>`` when the operator sets it; never a path into
Keelson's own checkout.
"""
from __future__ import annotations

import pytest

from tests.integration.test_cli import clean_env, describe, keelson

pytestmark = pytest.mark.integration

NS = "com.docker.stack.namespace"


def stack(registry: str, message: str = "one") -> str:
    return f"""services:
  app:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "cat /data/hello && sleep 3600"]
    environment: {{MESSAGE: {message}}}
    volumes:
      - ./data:/data:ro
"""


def test_relative_bind_refused_then_resolved_under_bind_root(engine, registry, manifest_repo,
                                                             stack_names, tmp_path):
    """Without KEELSON_BIND_ROOT: exit 1, Failed with the hint, no service. Setting it is a new
    input, so the stack is retried (not Stalled): the mount source is ``<root>/<stack>/data``
    (the same on the next commit), the task runs."""
    name = stack_names("bind")
    manifest_repo.write(f"manifests/{name}/stack.yml", stack(registry))
    manifest_repo.commit("relative bind")
    args = ["--repo", manifest_repo.url, "--registry", registry, "--stack", name]

    proc = keelson(["sync", *args], clean_env(tmp_path), module=True)
    assert proc.returncode == 1, describe(proc)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(f"  {name}:"))
    assert line == (
        f"  {name}: Failed / Unknown: stack {name}: manifests/{name}/stack.yml:7: key "
        "services.app.volumes.0: relative bind source './data' would point into Keelson's "
        "checkout, which no node has: a bind mount source must be an absolute path on the node; "
        "use a config (configs:) for files from the repo, a named volume for data, an absolute "
        "path, or set KEELSON_BIND_ROOT so relative sources resolve to "
        "KEELSON_BIND_ROOT/<stack>/<source>"), proc.stdout
    assert not engine.services.list(filters={"label": f"{NS}={name}"})

    root = tmp_path / "binds"
    (root / name / "data").mkdir(parents=True)
    (root / name / "data" / "hello").write_text("hi\n")
    env = clean_env(tmp_path, KEELSON_BIND_ROOT=str(root))
    proc = keelson(["sync", *args], env, module=True)
    assert proc.returncode == 0, describe(proc)
    assert f"  {name}: Synced / Healthy" in proc.stdout, proc.stdout
    mounts = engine.services.get(f"{name}_app").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Mounts"]
    assert mounts == [{"Type": "bind", "Source": str(root / name / "data"), "Target": "/data",
                       "ReadOnly": True}]

    manifest_repo.write(f"manifests/{name}/stack.yml", stack(registry, "two"))
    manifest_repo.commit("another commit")
    proc = keelson(["sync", *args], env, module=True)
    assert proc.returncode == 0, describe(proc)
    spec = engine.services.get(f"{name}_app").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert spec["Mounts"][0]["Source"] == str(root / name / "data")
    assert "MESSAGE=two" in spec["Env"]
