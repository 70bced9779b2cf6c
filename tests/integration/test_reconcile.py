"""The main job end to end on a real swarm, registry and git repo (issue #2, behaviours 1-7)."""
from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from controller.model import labels as L
from tests.integration.keelson_app import (BROKEN_DOCKERFILE, WEB_DOCKERFILE, make_app,
                                           tools_stack, versions, web_stack, writes)

pytestmark = pytest.mark.integration


def wait_until(check, timeout_s: float = 60.0, every_s: float = 0.5) -> bool:
    """Poll ``check`` until it is true or ``timeout_s`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every_s)


def seed(repo, web: str, tools: str, registry: str) -> str:
    repo.write(f"manifests/{web}/stack.yml", web_stack())
    repo.write(f"manifests/{web}/site/Dockerfile", WEB_DOCKERFILE)
    repo.write(f"manifests/{web}/page.conf", "colour=blue\n")
    repo.write(f"manifests/{tools}/stack.yml", tools_stack(registry))
    return repo.commit("two stacks")


def service_image(engine, name: str) -> str:
    return engine.services.get(name).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def builds(app) -> float:
    """Image builds this app ran (keelson_image_builds_total), whatever other tests build."""
    return sum(s.value for m in app.metrics.registry.collect() if m.name == "keelson_image_builds"
               for s in m.samples if s.name.endswith("_total"))


def test_first_pass_then_one_stack_change_then_noop(engine, registry, manifest_repo, stack_names, tmp_path):
    web, tools = stack_names("web"), stack_names("tools")
    sha1 = seed(manifest_repo, web, tools, registry)
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [web, tools])

    # 1. first pass: services, networks, configs with the namespace label; built image pinned
    out = app.sync()
    assert out.converged, app.store.snapshot()
    ls = subprocess.run(["docker", "stack", "ls", "--format", "{{.Name}} {{.Services}}"],
                        capture_output=True, text=True, check=True).stdout
    assert f"{web} 1" in ls and f"{tools} 2" in ls
    ps = subprocess.run(["docker", "stack", "ps", web, "--format", "{{.Name}} {{.CurrentState}}"],
                        capture_output=True, text=True, check=True).stdout
    assert ps.count("Running") == 2
    image = service_image(engine, f"{web}_web")
    assert image.startswith(f"{registry}/{web}_web:{sha1[:12]}@sha256:"), image
    svc = engine.services.get(f"{web}_web").attrs["Spec"]
    assert svc["Labels"][L.NAMESPACE] == web and svc["Labels"][L.MANAGED_BY] == "keelson"
    assert engine.networks.get(f"{web}_front").attrs["Labels"][L.NAMESPACE] == web
    cfgs = engine.configs.list(filters={"label": f"{L.NAMESPACE}={web}"})
    assert [c.name for c in cfgs if c.name.startswith(f"{web}_page-")]
    assert "@sha256:" in service_image(engine, f"{tools}_ticker")

    # 2. a commit changing one stack (replicas + env) updates only that service
    before = {**versions(engine, web), **versions(engine, tools)}
    builds_before = builds(app)
    manifest_repo.write(f"manifests/{tools}/stack.yml", tools_stack(registry, replicas=2))
    manifest_repo.commit("scale ticker")
    out = app.sync()
    assert out.converged, app.store.snapshot()
    after = {**versions(engine, web), **versions(engine, tools)}
    changed = {n for n in after if after[n] != before[n]}
    assert changed == {f"{tools}_ticker"}
    assert builds(app) == builds_before  # unchanged build context: no rebuild
    assert service_image(engine, f"{web}_web") == image

    # a pass with no new commit makes no write to Docker
    w = writes(app)
    out = app.sync()
    assert out.result == "noop" and writes(app) == w
    assert {**versions(engine, web), **versions(engine, tools)} == after

    # 7. a restarted Keelson (new process state, same swarm) redeploys nothing
    app2 = make_app(manifest_repo.url, tmp_path / "wd2", registry, [web, tools])
    out = app2.sync()
    assert out.converged and writes(app2) == 0
    assert {**versions(engine, web), **versions(engine, tools)} == after


def test_config_rotation_and_env_change(engine, registry, manifest_repo, stack_names, tmp_path):
    web, tools = stack_names("web"), stack_names("tools")
    seed(manifest_repo, web, tools, registry)
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [web, tools])
    assert app.sync().converged
    old_cfg = engine.services.get(f"{web}_web").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Configs"][0]
    tools_before = versions(engine, tools)

    # 6. a changed config file -> a new versioned config object; the service moves to it
    manifest_repo.write(f"manifests/{web}/page.conf", "colour=green\n")
    manifest_repo.commit("green")
    assert app.sync().converged, app.store.snapshot()
    new_cfg = engine.services.get(f"{web}_web").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Configs"][0]
    assert new_cfg["ConfigID"] != old_cfg["ConfigID"]
    assert engine.configs.get(new_cfg["ConfigID"]).name != old_cfg["ConfigName"]
    # the old one stays while the service's PreviousSpec references it (a rollback needs it)
    assert engine.configs.get(old_cfg["ConfigID"])
    # the running task sees the new content
    tasks = engine.services.get(f"{web}_web").tasks(filters={"desired-state": "running"})
    for task in tasks:
        container = engine.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
        assert "green" in container.exec_run("cat /etc/page.conf").output.decode()
    # another change moves PreviousSpec on: the first config is no longer referenced -> removed
    manifest_repo.write(f"manifests/{web}/stack.yml", web_stack(env="v2"))
    manifest_repo.commit("env v2")
    assert app.sync().converged
    assert not engine.configs.list(filters={"id": old_cfg["ConfigID"]})
    env = engine.services.get(f"{web}_web").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert "MESSAGE=v2" in env
    assert versions(engine, tools) == tools_before


def test_failed_health_rolls_back_and_is_not_retried(engine, registry, manifest_repo, stack_names, tmp_path):
    web, tools = stack_names("web"), stack_names("tools")
    seed(manifest_repo, web, tools, registry)
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [web, tools])
    assert app.sync().converged
    good_image = service_image(engine, f"{web}_web")

    # 3. a commit whose new image fails its healthcheck: Swarm rolls back, old tasks keep serving
    manifest_repo.write(f"manifests/{web}/site/Dockerfile", BROKEN_DOCKERFILE)
    bad = manifest_repo.commit("broken image")
    out = app.sync()
    assert not out.converged
    st = app.store.snapshot()["stacks"][web]
    assert st["sync_status"] == "Failed" and st["reason"] == "RolledBack", st
    assert bad[:12] in st["last_error"]
    assert st["last_attempted_revision"] == bad
    assert service_image(engine, f"{web}_web") == good_image
    # Swarm reports rollback_completed while the rolled-back task may still be starting
    assert wait_until(lambda: len([t for t in engine.services.get(f"{web}_web").tasks(
        filters={"desired-state": "running"}) if t["Status"]["State"] == "running"]) == 2)
    body, _ = app.metrics.exposition()
    assert f'keelson_rollouts_total{{result="rolled_back",stack="{web}"}} 1.0' in body.decode()
    assert st["sync_status"] == "Failed"

    # not re-applied on later polls, nor by a restarted Keelson (memory lives in Swarm labels)
    v = versions(engine, web)
    w = writes(app)
    out = app.sync()
    assert app.store.snapshot()["stacks"][web]["sync_status"] == "Stalled"
    assert writes(app) == w and versions(engine, web) == v
    app2 = make_app(manifest_repo.url, tmp_path / "wd2", registry, [web, tools])
    app2.sync()
    st2 = app2.store.snapshot()["stacks"][web]
    assert st2["sync_status"] == "Stalled" and bad[:12] in st2["last_error"]
    assert writes(app2) == 0 and versions(engine, web) == v

    # the next good commit deploys normally
    manifest_repo.write(f"manifests/{web}/site/Dockerfile", WEB_DOCKERFILE.replace("revision", "fixed"))
    good = manifest_repo.commit("fix")
    out = app.sync()
    assert out.converged, app.store.snapshot()
    assert service_image(engine, f"{web}_web").startswith(f"{registry}/{web}_web:{good[:12]}@")


def test_prune_and_nothing_removed_on_failures(engine, registry, manifest_repo, stack_names, tmp_path):
    web, tools = stack_names("web"), stack_names("tools")
    seed(manifest_repo, web, tools, registry)
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [web, tools])
    assert app.sync().converged

    # a stack that fails to load is neither changed nor pruned; the other stack still syncs
    manifest_repo.write(f"manifests/{tools}/stack.yml", "services:\n  ticker:\n    image: [oops\n")
    manifest_repo.write(f"manifests/{web}/stack.yml", web_stack(replicas=3))
    manifest_repo.commit("break tools, scale web")
    before = versions(engine, tools)
    out = app.sync()
    st = app.store.snapshot()["stacks"]
    assert st[tools]["sync_status"] == "Failed" and "stack.yml" in st[tools]["last_error"]
    assert st[web]["sync_status"] == "Synced"
    assert versions(engine, tools) == before

    # an unreachable repo changes nothing
    before = {**versions(engine, web), **versions(engine, tools)}
    shutil.move(manifest_repo.url, str(tmp_path / "moved.git"))
    out = app.sync()
    assert out.result == "failed"
    assert {**versions(engine, web), **versions(engine, tools)} == before
    shutil.move(str(tmp_path / "moved.git"), manifest_repo.url)

    # 4. removing a service, then a whole stack folder, removes them from the swarm
    manifest_repo.write(f"manifests/{tools}/stack.yml", tools_stack(registry).split("  other:")[0])
    manifest_repo.commit("drop other")
    assert app.sync().converged
    assert set(versions(engine, tools)) == {f"{tools}_ticker"}
    manifest_repo.remove(f"manifests/{tools}")
    manifest_repo.commit("drop tools")
    out = app.sync()
    assert tools in out.removed
    assert versions(engine, tools) == {}
    assert versions(engine, web)


def test_broken_input_names_stack_file_line_key(engine, registry, manifest_repo, stack_names, tmp_path):
    good, bad1, bad2, bad3, bad4 = (stack_names("ok"), stack_names("yaml"), stack_names("key"),
                                    stack_names("ctx"), stack_names("ext"))
    manifest_repo.write(f"manifests/{good}/stack.yml", tools_stack(registry))
    manifest_repo.write(f"manifests/{bad1}/stack.yml", "services:\n  a:\n    image: x\n   bad: [\n")
    manifest_repo.write(f"manifests/{bad2}/stack.yml",
                        "services:\n  a:\n    image: x\n    replicaz: 2\n")
    manifest_repo.write(f"manifests/{bad3}/stack.yml", "services:\n  a:\n    build: ./missing\n")
    manifest_repo.write(f"manifests/{bad4}/stack.yml", f"""services:
  a:
    image: {registry}/library/busybox:latest
    networks: [ext]
    secrets: [token]
networks:
  ext:
    external: true
    name: keelson-test-no-such-network
secrets:
  token:
    external: true
    name: keelson-test-no-such-secret
""")
    manifest_repo.commit("mixed")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [good, bad1, bad2, bad3, bad4])
    out = app.sync()
    assert not out.converged
    st = app.store.snapshot()["stacks"]
    assert st[good]["sync_status"] == "Synced"
    assert bad1 in st[bad1]["last_error"] and "stack.yml:" in st[bad1]["last_error"]
    assert "replicaz" in st[bad2]["last_error"] and "stack.yml:4" in st[bad2]["last_error"]
    assert "missing" in st[bad3]["last_error"] and "build" in st[bad3]["last_error"]
    # external objects are checked before the first write (preflight), not half-way through
    assert st[bad4]["reason"] == "PreflightFailed", st[bad4]
    assert "keelson-test-no-such-network" in st[bad4]["last_error"]
    assert "keelson-test-no-such-secret" in st[bad4]["last_error"]
    for name in (bad1, bad2, bad3, bad4):
        assert versions(engine, name) == {}
    print(json.dumps({n: st[n]["last_error"] for n in (bad1, bad2, bad3)}, indent=1))


def test_config_only_change_is_health_gated(engine, registry, manifest_repo, stack_names, tmp_path):
    """A commit that only changes a config file still rolls tasks: it is watched like any other
    rollout, and a config that breaks health is rolled back (found by a newcomer's trial: the
    previous update's stale 'completed' status was once taken for this one)."""
    stack = stack_names("cfg")
    manifest_repo.write(f"manifests/{stack}/stack.yml", f"""services:
  app:
    image: {registry}/library/busybox:latest
    command: ["sleep", "3600"]
    healthcheck:
      test: ["CMD", "grep", "-q", "healthy", "/etc/app.conf"]
      interval: 1s
      timeout: 1s
      retries: 1
      start_period: 0s
    configs:
      - source: app
        target: /etc/app.conf
    deploy:
      replicas: 2
      update_config: {{parallelism: 1, delay: 0s, monitor: 4s, failure_action: rollback}}
      rollback_config: {{parallelism: 0, monitor: 1s}}
configs:
  app:
    file: ./app.conf
""")
    manifest_repo.write(f"manifests/{stack}/app.conf", "healthy v1\n")
    manifest_repo.commit("v1")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [stack])
    assert app.sync().converged, app.store.snapshot()
    good = engine.services.get(f"{stack}_app").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Configs"]

    manifest_repo.write(f"manifests/{stack}/app.conf", "broken v2\n")
    bad = manifest_repo.commit("v2 breaks health")
    out = app.sync()
    st = app.store.snapshot()["stacks"][stack]
    assert not out.converged and st["reason"] == "RolledBack", st
    assert bad[:12] in st["last_error"]
    svc = engine.services.get(f"{stack}_app").attrs
    assert svc["UpdateStatus"]["State"] == "rollback_completed"
    assert svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Configs"] == good


def test_health_of_an_unchanged_stack_is_judged_every_pass(engine, registry, manifest_repo,
                                                          stack_names, tmp_path):
    """Between commits the status follows what runs: a task that died and is not restarted
    makes the stack Degraded (still Synced: the spec matches), without any write."""
    stack = stack_names("hl")
    manifest_repo.write(f"manifests/{stack}/stack.yml", f"""services:
  app:
    image: {registry}/library/busybox:latest
    command: ["sleep", "3600"]
    deploy:
      replicas: 1
      restart_policy: {{condition: none}}
""")
    manifest_repo.commit("one task, never restarted")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [stack])
    assert app.sync().converged
    assert app.sync().result == "noop"
    assert app.store.snapshot()["stacks"][stack]["health_status"] == "Healthy"

    task = engine.services.get(f"{stack}_app").tasks(filters={"desired-state": "running"})[0]
    engine.containers.get(task["Status"]["ContainerStatus"]["ContainerID"]).kill()
    assert wait_until(lambda: not [t for t in engine.services.get(f"{stack}_app").tasks()
                                   if t["Status"]["State"] == "running"])
    w = writes(app)
    app.sync()
    st = app.store.snapshot()["stacks"][stack]
    assert st["sync_status"] == "Synced" and st["health_status"] == "Degraded", st
    assert any(f"{stack}_app 0/1 running" in x for x in st["warnings"]), st["warnings"]
    assert writes(app) == w
    body, _ = app.metrics.exposition()
    assert f'health_status="Degraded",revision=' in body.decode()
