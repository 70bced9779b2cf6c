"""dockerd restarting in the middle of a pass (runs last among the integration tests: it stops
the shared engine). The pass ends without a crash, and the next pass converges with nothing
duplicated or lost."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import docker
import pytest

from tests.integration.conftest import ROOT
from tests.integration.keelson_app import make_app, versions

pytestmark = pytest.mark.integration

PIDFILE = "/var/run/docker.pid"


def slow_stack(registry: str, message: str, replicas: int = 2) -> str:
    """Two replicas updated one at a time with a pause: a rollout that takes a while."""
    return f"""services:
  a:
    image: {registry}/library/busybox:latest
    command: ["sleep", "3600"]
    environment:
      MESSAGE: {message}
    configs: [{{source: conf, target: /conf}}]
    deploy:
      replicas: {replicas}
      update_config: {{parallelism: 1, delay: 3s, monitor: 1s}}
configs:
  conf:
    content: "{message}"
"""


def restart_dockerd() -> None:
    """Stop the engine (SIGTERM, as a restart or an upgrade does), then start it again."""
    with open(PIDFILE, encoding="utf-8") as fh:
        pid = int(fh.read().strip())
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    subprocess.run(["bash", str(ROOT / "scripts" / "dev-env.sh")], check=True)


def env_of(engine, service: str) -> list:
    spec = engine.api.inspect_service(service)["Spec"]
    return spec["TaskTemplate"]["ContainerSpec"].get("Env") or []


@pytest.mark.skipif(not os.path.exists(PIDFILE), reason="no dockerd started by dev-env.sh")
def test_dockerd_restart_mid_pass_next_pass_converges(engine, registry, manifest_repo, stack_names,
                                                      tmp_path):
    a, b = stack_names("dra"), stack_names("drb")
    manifest_repo.write(f"manifests/{a}/stack.yml", slow_stack(registry, "one"))
    manifest_repo.write(f"manifests/{b}/stack.yml", slow_stack(registry, "one", replicas=1))
    manifest_repo.commit("two stacks")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [a, b], rollout_timeout_s=120)
    assert app.sync().converged, app.store.snapshot()

    manifest_repo.write(f"manifests/{a}/stack.yml", slow_stack(registry, "two"))
    manifest_repo.write(f"manifests/{b}/stack.yml", slow_stack(registry, "two", replicas=2))
    manifest_repo.commit("roll both")
    passes = []
    worker = threading.Thread(target=lambda: passes.append(app.sync()))
    worker.start()
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until the rolling update is under way
        status = engine.api.inspect_service(f"{a}_a").get("UpdateStatus") or {}
        if status.get("State") == "updating":
            break
        time.sleep(0.2)
    restart_dockerd()
    worker.join(300)
    assert not worker.is_alive(), "the pass must end after the engine comes back"
    assert passes and passes[0].result in ("success", "partial", "failed")

    client = docker.from_env(timeout=120)
    out = app.sync()
    assert out.converged, app.store.snapshot()
    # nothing duplicated, nothing lost
    assert set(versions(client, a)) == {f"{a}_a"} and set(versions(client, b)) == {f"{b}_a"}
    assert "MESSAGE=two" in env_of(client, f"{a}_a") and "MESSAGE=two" in env_of(client, f"{b}_a")
    assert client.api.inspect_service(f"{b}_a")["Spec"]["Mode"]["Replicated"]["Replicas"] == 2
    for stack in (a, b):
        configs = [c for c in client.api.configs(filters={"label": f"com.docker.stack.namespace={stack}"})
                   if not c["Spec"]["Name"].endswith("keelson-state")]
        names = [c["Spec"]["Name"] for c in configs]
        # the new content's config, plus the old one while PreviousSpec still names it
        assert len(names) == len(set(names)) <= 2, names
    again = app.sync()
    assert again.result == "noop" and again.converged
    client.close()
