"""Issue 10 on the real swarm: stack-atomic rollback, ``rollback: service``, depends_on waves,
and a stack rollback that a restart interrupted.

Every service runs the registry's busybox; a service's health is ``HEALTH=ok`` in its
environment, so a commit breaks one service by changing one line. Rollouts are short: one
replica, delay 0, monitor 2 s, 1 s health intervals.
"""
from __future__ import annotations

import threading
import time

import pytest

from controller.model import StackRecord
from controller.model.timestamps import parse_time
from controller.swarm.client import SwarmClient
from tests.integration.keelson_app import make_app, writes

pytestmark = pytest.mark.integration


def service(registry: str, name: str, health: str = "ok", version: str = "v1",
            extra: str = "") -> str:
    """One service of the test stacks: healthy when ``health`` is ``ok``."""
    return f"""  {name}:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "sleep 3600"]
    environment:
      HEALTH: "{health}"
      VERSION: "{version}"
    healthcheck:
      test: ["CMD-SHELL", "test \\"$$HEALTH\\" = ok"]
      interval: 1s
      timeout: 1s
      retries: 1
      start_period: 0s
    stop_grace_period: 1s
    deploy:
      replicas: 1
      update_config: {{parallelism: 1, delay: 0s, monitor: 2s, failure_action: rollback}}
      rollback_config: {{parallelism: 0, delay: 0s, monitor: 1s}}
{extra}"""


def stack(registry: str, services: dict, page: str = "one", options: str = "") -> str:
    """A stack file: ``services`` name -> (health, version, extra); ``a`` reads config page."""
    out = options + "services:\n"
    for name, (health, version, extra) in services.items():
        if name == "a":
            extra += "    configs: [{source: page, target: /etc/page.conf}]\n"
        out += service(registry, name, health, version, extra)
    return out + "configs:\n  page:\n    file: ./page.conf\n"


def write(repo, name: str, text: str, page: str = "one") -> None:
    repo.write(f"manifests/{name}/stack.yml", text)
    repo.write(f"manifests/{name}/page.conf", page + "\n")


def spec_of(engine, full: str) -> dict:
    return engine.services.get(full).attrs["Spec"]


def env_of(engine, full: str) -> list:
    return spec_of(engine, full)["TaskTemplate"]["ContainerSpec"]["Env"]


def config_of(engine, full: str) -> str:
    return spec_of(engine, full)["TaskTemplate"]["ContainerSpec"]["Configs"][0]["ConfigName"]


def running_env(engine, full: str) -> list:
    """The environment of the tasks that run (desired and actual state running)."""
    tasks = engine.api.tasks(filters={"service": full, "desired-state": "running"})
    return sorted(tuple(sorted(t["Spec"]["ContainerSpec"]["Env"])) for t in tasks
                  if t["Status"]["State"] == "running")


def wait_for(predicate, timeout_s: float = 60.0):
    deadline = time.time() + timeout_s
    value = predicate()
    while not value and time.time() < deadline:
        time.sleep(0.5)
        value = predicate()
    return value


def status(app, name: str) -> dict:
    return app.store.snapshot()["stacks"][name]


def stack_rollbacks(app, name: str, scope: str) -> float:
    return app.metrics.registry.get_sample_value("keelson_stack_rollbacks_total",
                                                 {"stack": name, "scope": scope}) or 0


def test_a_failing_service_returns_every_service_and_the_config(engine, registry, manifest_repo,
                                                               stack_names, tmp_path):
    """Three services and a config change; the third fails health: all three and the config
    are back on the previous revision (spec and running tasks), the stack is Failed then
    Stalled at that commit, and the next good commit deploys normally."""
    name = stack_names("krb")
    good = {n: ("ok", "v1", "") for n in "abc"}
    write(manifest_repo, name, stack(registry, good))
    rev1 = manifest_repo.commit("good")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [name])
    assert app.sync().converged, app.store.snapshot()
    before = {n: env_of(engine, f"{name}_{n}") for n in "abc"}
    page1 = config_of(engine, f"{name}_a")

    bad = {"a": ("ok", "v2", ""), "b": ("ok", "v2", ""), "c": ("broken", "v2", "")}
    write(manifest_repo, name, stack(registry, bad), page="two")
    rev2 = manifest_repo.commit("three services and a config; c is broken")
    assert not app.sync().converged
    st = status(app, name)
    assert (st["sync_status"], st["health_status"], st["reason"]) == (
        "Failed", "RolledBack", "RolledBack"), st
    for n in "abc":
        full = f"{name}_{n}"
        assert env_of(engine, full) == before[n], full
        assert spec_of(engine, full)["Labels"]["io.keelson.revision"] == rev1
        assert wait_for(lambda: running_env(engine, full) == [tuple(sorted(before[n]))]), full
    assert config_of(engine, f"{name}_a") == page1  # the config is back, and still exists
    assert engine.configs.list(filters={"name": page1})
    # one history entry names every service returned and why
    entry = st["history"][0]
    assert entry["revision"] == rev2 and entry["result"] == "RolledBack"
    assert f"{name}_c: rolled_back" in entry["message"]
    assert f"{name}_a returned to {rev1[:12]}" in entry["message"]
    assert f"{name}_b returned to {rev1[:12]}" in entry["message"]
    assert len(st["rolled_back"]) == 3 and stack_rollbacks(app, name, "stack") == 1
    image = spec_of(engine, f"{name}_a")["TaskTemplate"]["ContainerSpec"]["Image"]
    assert "@sha256:" in image  # the digest now running is named
    assert f"{name}_a returned to {rev1[:12]} ({image})" in st["rolled_back"]
    record = SwarmClient(engine).live_stacks([name])[name].record
    assert (record.failed_revision, record.rollback_source_hash) == (rev2, "")

    written = writes(app)
    app.sync()  # the same inputs: Stalled at the failing commit, nothing written
    assert writes(app) == written
    st = status(app, name)
    assert (st["sync_status"], st["last_attempted_revision"]) == ("Stalled", rev2), st
    assert st["last_applied_revision"] == rev1

    fixed = {n: ("ok", "v3", "") for n in "abc"}
    write(manifest_repo, name, stack(registry, fixed), page="three")
    rev3 = manifest_repo.commit("good again")
    assert app.sync().converged, app.store.snapshot()
    assert status(app, name)["last_applied_revision"] == rev3
    for n in "abc":
        assert "VERSION=v3" in env_of(engine, f"{name}_{n}")


def test_an_added_service_is_removed_and_a_removed_one_kept(engine, registry, manifest_repo,
                                                           stack_names, tmp_path):
    """The failing commit adds d and removes b: d is removed by the rollback, b was never
    removed (removals wait until every wave is healthy) and still runs its spec."""
    name = stack_names("krb")
    write(manifest_repo, name, stack(registry, {n: ("ok", "v1", "") for n in "abc"}))
    rev1 = manifest_repo.commit("good")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [name])
    assert app.sync().converged, app.store.snapshot()
    before = {n: env_of(engine, f"{name}_{n}") for n in "abc"}
    b_version = engine.services.get(f"{name}_b").attrs["Version"]["Index"]

    bad = {"a": ("ok", "v2", ""), "c": ("broken", "v2", ""), "d": ("ok", "v2", "")}
    write(manifest_repo, name, stack(registry, bad))
    manifest_repo.commit("add d, remove b, break c")
    assert not app.sync().converged
    st = status(app, name)
    assert (st["sync_status"], st["reason"]) == ("Failed", "RolledBack"), st
    assert not engine.services.list(filters={"name": f"{name}_d"})
    assert f"{name}_d removed (created by the failing revision)" in st["last_error"]
    assert engine.services.get(f"{name}_b").attrs["Version"]["Index"] == b_version
    for n in "abc":
        assert env_of(engine, f"{name}_{n}") == before[n]
        assert spec_of(engine, f"{name}_{n}")["Labels"]["io.keelson.revision"] == rev1


def test_rollback_service_keeps_the_per_service_behaviour(engine, registry, manifest_repo,
                                                          stack_names, tmp_path):
    """``x-keelson: {rollback: service}``: only c goes back; a and b keep the new spec."""
    name = stack_names("krb")
    opts = "x-keelson:\n  rollback: service\n"
    write(manifest_repo, name, stack(registry, {n: ("ok", "v1", "") for n in "abc"}, options=opts))
    manifest_repo.commit("good")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [name])
    assert app.sync().converged, app.store.snapshot()
    c_before = env_of(engine, f"{name}_c")

    bad = {"a": ("ok", "v2", ""), "b": ("ok", "v2", ""), "c": ("broken", "v2", "")}
    write(manifest_repo, name, stack(registry, bad, options=opts), page="two")
    manifest_repo.commit("break c")
    assert not app.sync().converged
    st = status(app, name)
    assert (st["sync_status"], st["reason"], st["rolled_back"]) == ("Failed", "RolledBack", [])
    assert "VERSION=v2" in env_of(engine, f"{name}_a") and "VERSION=v2" in env_of(engine, f"{name}_b")
    assert env_of(engine, f"{name}_c") == c_before
    assert stack_rollbacks(app, name, "stack") == 0 and stack_rollbacks(app, name, "service") == 1


def healthy_events(engine, since: float, out: list, stop: threading.Event) -> None:
    """Collect ``health_status: healthy`` container events (service name, unix seconds)."""
    stream = engine.api.events(since=int(since), decode=True,
                               filters={"type": "container", "event": "health_status"})
    for ev in stream:
        if stop.is_set():
            break
        attrs = (ev.get("Actor") or {}).get("Attributes") or {}
        if ev.get("status", "").endswith("healthy") and "unhealthy" not in ev.get("status", ""):
            out.append((attrs.get("com.docker.swarm.service.name", ""), ev["timeNano"] / 1e9))
    stream.close()


def test_depends_on_waves_order_the_rollout_and_a_failing_wave_stops_the_next(
        engine, registry, manifest_repo, stack_names, tmp_path):
    """web depends on db (service_healthy): web's task is created only after db's container
    was healthy (engine timestamps); then a commit breaking db and changing web leaves web
    untouched, and ``keelson plan`` shows the waves and the rollback scope."""
    name = stack_names("krb")
    dep = "    depends_on:\n      db: {condition: service_healthy}\n"

    def text(db_health, version):
        return ("services:\n" + service(registry, "db", db_health, version)
                + service(registry, "web", "ok", version, dep))

    write(manifest_repo, name, text("ok", "v1"))
    manifest_repo.commit("db then web")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [name])
    plan = app.sync(dry_run=True).runs[name]
    assert plan.waves == ((f"{name}_db",), (f"{name}_web",)) and plan.rollback_scope == "stack"
    events, stop = [], threading.Event()
    started = time.time() - 1
    watcher = threading.Thread(target=healthy_events, args=(engine, started, events, stop),
                               daemon=True)
    watcher.start()
    assert app.sync().converged, app.store.snapshot()
    assert status(app, name)["waves"] == [[f"{name}_db"], [f"{name}_web"]]
    [web_task] = engine.api.tasks(filters={"service": f"{name}_web"})
    web_created = parse_time(web_task["CreatedAt"])
    assert wait_for(lambda: any(s == f"{name}_db" for s, _ in events), 20), events
    stop.set()
    db_healthy = min(t for s, t in events if s == f"{name}_db")
    assert db_healthy < web_created, (db_healthy, web_created)

    web_version = engine.services.get(f"{name}_web").attrs["Version"]["Index"]
    write(manifest_repo, name, text("broken", "v2"))
    manifest_repo.commit("break db, change web")
    assert not app.sync().converged
    st = status(app, name)
    assert st["sync_status"] == "Failed", st
    assert engine.services.get(f"{name}_web").attrs["Version"]["Index"] == web_version
    assert "VERSION=v1" in env_of(engine, f"{name}_web")
    assert "VERSION=v1" in env_of(engine, f"{name}_db")


def test_a_restart_finishes_an_interrupted_stack_rollback(engine, registry, manifest_repo,
                                                          stack_names, tmp_path):
    """The state record says a stack rollback of revision R is in progress while a and b
    still run R's spec: a new App returns them to their PreviousSpec and remembers R failed."""
    name = stack_names("krb")
    opts = "x-keelson:\n  rollback: service\n"  # leaves a and b on the failing spec
    write(manifest_repo, name, stack(registry, {n: ("ok", "v1", "") for n in "abc"}, options=opts))
    rev1 = manifest_repo.commit("good")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [name])
    assert app.sync().converged, app.store.snapshot()
    before = {n: env_of(engine, f"{name}_{n}") for n in "abc"}
    bad = {"a": ("ok", "v2", ""), "b": ("ok", "v2", ""), "c": ("broken", "v2", "")}
    write(manifest_repo, name, stack(registry, bad, options=opts), page="two")
    rev2 = manifest_repo.commit("break c")
    assert not app.sync().converged
    assert "VERSION=v2" in env_of(engine, f"{name}_a")

    # what a Keelson stopped right after starting the stack rollback leaves behind
    client = SwarmClient(engine)
    record = client.live_stacks([name])[name].record
    client.write_record(name, StackRecord(
        applied_revision=record.applied_revision, applied_source_hash=record.applied_source_hash,
        instance=record.instance, rollback_revision=rev2,
        rollback_source_hash=record.failed_source_hash))

    fresh = make_app(manifest_repo.url, tmp_path / "wd2", registry, [name])
    assert not fresh.sync().converged
    st = status(fresh, name)
    assert (st["sync_status"], st["reason"], st["last_attempted_revision"]) == (
        "Failed", "RolledBack", rev2), st
    assert "interrupted" in st["last_error"]
    for n in "abc":
        assert env_of(engine, f"{name}_{n}") == before[n], n
        assert spec_of(engine, f"{name}_{n}")["Labels"]["io.keelson.revision"] == rev1
        assert wait_for(lambda: running_env(engine, f"{name}_{n}") == [tuple(sorted(before[n]))])
    record = client.live_stacks([name])[name].record
    assert (record.failed_revision, record.rollback_source_hash) == (rev2, "")
    fresh.sync()
    assert status(fresh, name)["sync_status"] == "Stalled"


def test_a_failed_post_check_rolls_the_stack_back(engine, registry, manifest_repo, stack_names,
                                                  tmp_path):
    """The post-rollout check hook (issue 10 part 2 plugs in here): a wave whose rollouts
    completed but whose check fails is a failed rollout, and the stack goes back."""
    name = stack_names("krb")
    write(manifest_repo, name, stack(registry, {n: ("ok", "v1", "") for n in "ab"}))
    rev1 = manifest_repo.commit("good")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [name])
    assert app.sync().converged, app.store.snapshot()
    seen = []

    def post_check(stack_name, services):
        seen.append((stack_name, sorted(services)))
        return "error rate 12% > 5%"

    app.reconciler.line.post_check = post_check
    write(manifest_repo, name, stack(registry, {n: ("ok", "v2", "") for n in "ab"}))
    manifest_repo.commit("healthy, but the analysis says no")
    assert not app.sync().converged
    st = status(app, name)
    assert (st["sync_status"], st["health_status"], st["reason"]) == (
        "Failed", "RolledBack", "AnalysisFailed"), st
    assert seen == [(name, [f"{name}_a", f"{name}_b"])]
    assert "failed (error rate 12% > 5%)" in st["last_error"]
    for n in "ab":
        assert "VERSION=v1" in env_of(engine, f"{name}_{n}")
        assert spec_of(engine, f"{name}_{n}")["Labels"]["io.keelson.revision"] == rev1


KILLED_SYNC = """
import pathlib, sys
from tests.integration.keelson_app import make_app, writes
app = make_app(sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3], [sys.argv[4]],
               lease_ttl_s=3)
app.sync()
"""


def test_keelson_killed_during_a_stack_rollback_finishes_it_on_the_next_start(
        engine, registry, manifest_repo, stack_names, tmp_path):
    """A Keelson process is killed (SIGKILL) as soon as its state record says a stack rollback
    is in progress; a new App finishes it: every service back on the good revision."""
    import os
    import subprocess
    import sys
    name = stack_names("krb")
    write(manifest_repo, name, stack(registry, {n: ("ok", "v1", "") for n in "abc"}))
    rev1 = manifest_repo.commit("good")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [name])
    assert app.sync().converged, app.store.snapshot()
    before = {n: env_of(engine, f"{name}_{n}") for n in "abc"}
    bad = {"a": ("ok", "v2", ""), "b": ("ok", "v2", ""), "c": ("broken", "v2", "")}
    write(manifest_repo, name, stack(registry, bad), page="two")
    rev2 = manifest_repo.commit("break c")

    client = SwarmClient(engine)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SYNC, manifest_repo.url,
                             str(tmp_path / "killed"), registry, name],
                            cwd=str(os.getcwd()), env=dict(os.environ))
    try:
        def in_progress():
            record = client.live_stacks([name])[name].record
            return record is not None and record.rollback_revision == rev2
        assert wait_for(in_progress, 120), "the stack rollback never started"
    finally:
        proc.kill()
        proc.wait(30)
    # the killed process held the writer lease (issue 11): the new one waits out its TTL
    fresh = make_app(manifest_repo.url, tmp_path / "wd2", registry, [name], lease_ttl_s=3)
    assert wait_for(lambda: fresh.sync().result != "standby", 30), "the lease never expired"
    st = status(fresh, name)
    assert (st["sync_status"], st["last_attempted_revision"]) == ("Failed", rev2), st
    for n in "abc":
        full = f"{name}_{n}"
        assert env_of(engine, full) == before[n], full
        assert spec_of(engine, full)["Labels"]["io.keelson.revision"] == rev1
        assert wait_for(lambda: running_env(engine, full) == [tuple(sorted(before[n]))]), full
    fresh.sync()
    assert status(fresh, name)["sync_status"] == "Stalled"


def test_with_rollback_service_a_failed_post_check_returns_only_its_wave(
        engine, registry, manifest_repo, stack_names, tmp_path):
    """``rollback: service``: the post-rollout check fails for the wave of b (a is in an earlier
    wave and passed): only b goes back, a keeps the new spec."""
    name = stack_names("krb")
    opts = "x-keelson:\n  rollback: service\n"
    dep = "    depends_on: [a]\n"

    def text(version):
        return (opts + "services:\n" + service(registry, "a", "ok", version)
                + service(registry, "b", "ok", version, dep))

    write(manifest_repo, name, text("v1"))
    rev1 = manifest_repo.commit("good")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [name])
    assert app.sync().converged, app.store.snapshot()
    app.reconciler.line.post_check = (
        lambda stack_name, services: "latency too high" if f"{name}_b" in services else None)
    write(manifest_repo, name, text("v2"))
    manifest_repo.commit("b fails its analysis")
    assert not app.sync().converged
    st = status(app, name)
    assert (st["sync_status"], st["reason"], st["rolled_back"]) == (
        "Failed", "AnalysisFailed", []), st
    assert "VERSION=v2" in env_of(engine, f"{name}_a")
    assert "VERSION=v1" in env_of(engine, f"{name}_b")
    assert spec_of(engine, f"{name}_b")["Labels"]["io.keelson.revision"] == rev1
    assert stack_rollbacks(app, name, "service") == 1 and stack_rollbacks(app, name, "stack") == 0
