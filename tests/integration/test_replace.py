"""Issue 8.3 on the real swarm: changes Swarm cannot apply in place. A network's (or a
volume's) immutable field changed in git is planned ``replace`` with the field path; by default
the stack is refused with an error naming object, field and how to proceed, and nothing
changes; with ``x-keelson: {recreate: [networks]}`` (or KEELSON_RECREATE=networks) the network
is recreated and the services re-attached in one watched pass."""
from __future__ import annotations

import io
import time

import pytest

from controller.report import print_plan
from tests.integration.conftest import remove_stack
from tests.integration.keelson_app import make_app, writes

pytestmark = pytest.mark.integration


@pytest.fixture
def names(engine, stack_names):
    """``stack_names``, plus removal of the node-local volumes the stacks' tasks created."""
    made = []

    def make(prefix: str) -> str:
        made.append(stack_names(prefix))
        return made[-1]

    yield make
    for stack in made:
        remove_stack(engine, stack)  # services first: a volume in use cannot go
        for _ in range(240):  # up to 2 min: the engine removes the task containers first
            left = engine.volumes.list(filters={"label": f"com.docker.stack.namespace={stack}"})
            for vol in left:
                try:
                    vol.remove()
                except Exception:  # still in use by a stopping task: retry
                    pass
            if not left:
                break
            time.sleep(0.5)


def stack_text(registry: str, net_label: str, options: str = "", volume_opts: str = "") -> str:
    return f"""{options}services:
  app:
    image: {registry}/library/busybox:latest
    command: ["sleep", "3600"]
    networks: [back]
    deploy:
      replicas: 2
      update_config: {{parallelism: 1, delay: 0s, monitor: 1s}}
  peer:
    image: {registry}/library/busybox:latest
    command: ["sleep", "3600"]
    networks: [back]
    volumes: ["data:/data"]
networks:
  back:
    driver: overlay
    labels: {{tier: "{net_label}"}}
volumes:
  data:
{volume_opts}"""


def net_id(engine, name: str) -> str:
    return engine.networks.get(name).id


def running_on(engine, service: str, network_id: str) -> int:
    """Tasks of ``service`` that run attached to ``network_id``."""
    n = 0
    for t in engine.services.get(service).tasks(filters={"desired-state": "running"}):
        nets = [a["Network"]["ID"] for a in t.get("NetworksAttachments") or []]
        if t["Status"]["State"] == "running" and network_id in nets:
            n += 1
    return n


def test_network_change_is_refused_by_default(engine, registry, manifest_repo, names,
                                              tmp_path):
    stack = names("nr")
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_text(registry, "one"))
    manifest_repo.commit("network")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [stack])
    assert app.sync().converged, app.store.snapshot()
    before = net_id(engine, f"{stack}_back")

    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_text(registry, "two"))
    manifest_repo.commit("network label changed")
    plan = app.sync(dry_run=True)
    ch = [c for c in plan.runs[stack].plan.changes if c.kind == "network"][0]
    assert (ch.action, ch.reason) == ("replace", "immutable: Labels.tier")
    text = io.StringIO()
    print_plan(plan, text)
    assert f"-/+ network {stack}_back  (immutable: Labels.tier)" in text.getvalue()
    assert "a pass would refuse this stack" in text.getvalue()

    w = writes(app)
    out = app.sync()
    assert not out.converged
    st = app.store.snapshot()["stacks"][stack]
    assert st["sync_status"] == "Failed" and st["reason"] == "ImmutableChange", st
    assert f"network {stack}_back: Labels.tier cannot change in place in Swarm" in st["last_error"]
    assert "x-keelson: {recreate: [networks]}" in st["last_error"]
    assert "KEELSON_RECREATE=networks" in st["last_error"]
    # nothing changed: same network, both services still running on it
    assert writes(app) == w  # no object written (the failure goes to the state record only)
    assert net_id(engine, f"{stack}_back") == before
    assert running_on(engine, f"{stack}_app", before) == 2
    assert running_on(engine, f"{stack}_peer", before) == 1
    app.sync()
    assert app.store.snapshot()["stacks"][stack]["sync_status"] == "Stalled"


def test_network_recreated_with_opt_in(engine, registry, manifest_repo, names, tmp_path):
    stack = names("nc")
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_text(registry, "one"))
    manifest_repo.commit("network")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [stack])
    assert app.sync().converged, app.store.snapshot()
    before = net_id(engine, f"{stack}_back")

    manifest_repo.write(f"manifests/{stack}/stack.yml",
                        stack_text(registry, "two", "x-keelson: {recreate: [networks]}\n"))
    manifest_repo.commit("network label changed, recreate allowed")
    t0 = time.monotonic()
    out = app.sync()
    took = time.monotonic() - t0
    assert out.converged, app.store.snapshot()
    after = engine.networks.get(f"{stack}_back")
    assert after.id != before and after.attrs["Labels"]["tier"] == "two"
    # both services re-attached to the new network and running there
    assert running_on(engine, f"{stack}_app", after.id) == 2
    assert running_on(engine, f"{stack}_peer", after.id) == 1
    st = app.store.snapshot()["stacks"][stack]
    assert (st["sync_status"], st["health_status"]) == ("Synced", "Healthy"), st
    assert {r["service"] for r in st["rollouts"]} == {f"{stack}_app", f"{stack}_peer"}
    assert took < 90, took
    w = writes(app)
    assert app.sync().result == "noop" and writes(app) == w


def test_network_recreated_with_operator_setting(engine, registry, manifest_repo, names,
                                                 tmp_path):
    stack = names("ns")
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_text(registry, "one"))
    manifest_repo.commit("network")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [stack], recreate=("networks",))
    assert app.sync().converged, app.store.snapshot()
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_text(registry, "two"))
    manifest_repo.commit("network label changed")
    assert app.sync().converged, app.store.snapshot()
    assert engine.networks.get(f"{stack}_back").attrs["Labels"]["tier"] == "two"


def test_volume_change_is_refused(engine, registry, manifest_repo, names, tmp_path):
    stack = names("vr")
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_text(registry, "one"))
    manifest_repo.commit("volume")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [stack],
                   recreate=("networks",))
    assert app.sync().converged, app.store.snapshot()
    assert engine.volumes.get(f"{stack}_data")  # created on this node by the task
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_text(
        registry, "one", volume_opts="    driver_opts: {type: tmpfs, device: tmpfs}\n"))
    manifest_repo.commit("volume options changed")
    out = app.sync()
    assert not out.converged
    st = app.store.snapshot()["stacks"][stack]
    assert st["sync_status"] == "Failed" and st["reason"] == "ImmutableChange", st
    assert f"volume {stack}_data: Options.device, Options.type cannot change" in st["last_error"]
    assert "Keelson never recreates volumes" in st["last_error"]
    assert engine.services.get(f"{stack}_peer").attrs["Spec"]["TaskTemplate"]["ContainerSpec"][
        "Mounts"][0].get("VolumeOptions", {}).get("DriverConfig") is None  # not updated
