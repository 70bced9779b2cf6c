"""Issue 8.1 on the real swarm: services meant to finish (jobs, restart condition none /
on-failure) converge when their tasks complete, fail with the exit code when one exits
non-zero, re-run only when their spec changes, and are never called Degraded for finishing."""
from __future__ import annotations

import time

import pytest

from tests.integration.keelson_app import make_app, versions, writes

pytestmark = pytest.mark.integration


def _job_iteration(engine, name: str) -> int:
    return int(((engine.services.get(name).attrs.get("JobStatus") or {})
                .get("JobIteration") or {}).get("Index", 0))


def test_job_completes_converges_and_is_not_rerun(engine, registry, manifest_repo, stack_names,
                                                   tmp_path):
    stack = stack_names("jb")
    manifest_repo.write(f"manifests/{stack}/stack.yml", f"""services:
  migrate:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "sleep 1; echo done"]
    deploy:
      mode: replicated-job
      replicas: 2
  once:
    image: {registry}/library/busybox:latest
    command: ["true"]
    deploy:
      restart_policy: {{condition: none}}
  every:
    image: {registry}/library/busybox:latest
    command: ["true"]
    deploy:
      mode: global-job
  server:
    image: {registry}/library/busybox:latest
    command: ["sleep", "3600"]
    deploy:
      restart_policy: {{condition: on-failure}}
      update_config: {{monitor: 2s}}
""")
    manifest_repo.commit("jobs, a run-once service and a long-running on-failure service")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [stack], rollout_timeout_s=60)
    t0 = time.monotonic()
    out = app.sync()
    assert out.converged, app.store.snapshot()
    assert time.monotonic() - t0 < 40, "a finished job must not wait for the rollout timeout"
    st = app.store.snapshot()["stacks"][stack]
    assert (st["sync_status"], st["health_status"]) == ("Synced", "Healthy"), st
    done = [t for t in engine.services.get(f"{stack}_migrate").tasks()
            if t["Status"]["State"] == "complete"]
    assert len(done) == 2
    assert [t["Status"]["State"] for t in engine.services.get(f"{stack}_every").tasks()] == ["complete"]
    assert [t["Status"]["State"] for t in engine.services.get(f"{stack}_server").tasks()] == ["running"]

    # a no-op pass: nothing written, the job is not run again, and finishing is not Degraded
    before_v, before_i, w = versions(engine, stack), _job_iteration(engine, f"{stack}_migrate"), writes(app)
    again = app.sync()
    assert again.result == "noop" and again.converged, app.store.snapshot()
    assert versions(engine, stack) == before_v and writes(app) == w
    assert _job_iteration(engine, f"{stack}_migrate") == before_i
    st = app.store.snapshot()["stacks"][stack]
    assert (st["sync_status"], st["health_status"]) == ("Synced", "Healthy"), st
    assert not [x for x in st["warnings"] if "degraded" in x], st["warnings"]

    # a spec change re-runs the job (like `docker service update --force`) and converges
    manifest_repo.write(f"manifests/{stack}/stack.yml", manifest_repo.work.joinpath(
        f"manifests/{stack}/stack.yml").read_text().replace("echo done", "echo again"))
    manifest_repo.commit("job: new command")
    out = app.sync()
    assert out.converged, app.store.snapshot()
    assert _job_iteration(engine, f"{stack}_migrate") == before_i + 1


def test_failing_job_reports_exit_code(engine, registry, manifest_repo, stack_names, tmp_path):
    stack = stack_names("jf")
    manifest_repo.write(f"manifests/{stack}/stack.yml", f"""services:
  migrate:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "echo boom; exit 3"]
    deploy:
      mode: replicated-job
""")
    manifest_repo.commit("a job that fails")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [stack], rollout_timeout_s=60)
    t0 = time.monotonic()
    out = app.sync()
    assert time.monotonic() - t0 < 40
    assert not out.converged and out.result == "partial"
    st = app.store.snapshot()["stacks"][stack]
    assert st["sync_status"] == "Failed" and st["reason"] == "TaskFailed", st
    assert "exit code 3" in st["last_error"] and "non-zero exit (3)" in st["last_error"], st
    # what is left: the job service stays (Swarm retries a failed job task), nothing else
    assert engine.services.get(f"{stack}_migrate") is not None
    # the failed content is not applied again: the next pass is Stalled, no write
    w = writes(app)
    app.sync()
    st = app.store.snapshot()["stacks"][stack]
    assert st["sync_status"] == "Stalled" and "exit code 3" in st["last_error"], st
    assert writes(app) == w


def test_run_once_service_updates_without_rollback(engine, registry, manifest_repo, stack_names,
                                                   tmp_path):
    """A condition-none service finishes during Swarm's update monitor; Keelson gives it
    failure_action continue, so its update is not rolled back, and judges its exit itself."""
    stack = stack_names("ro")
    text = f"""services:
  seed:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "echo $$V"]
    environment: {{V: "one"}}
    deploy:
      restart_policy: {{condition: none}}
      update_config: {{monitor: 3s}}
"""
    manifest_repo.write(f"manifests/{stack}/stack.yml", text)
    manifest_repo.commit("run once")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [stack], rollout_timeout_s=60)
    assert app.sync().converged, app.store.snapshot()
    manifest_repo.write(f"manifests/{stack}/stack.yml", text.replace('"one"', '"two"'))
    manifest_repo.commit("run once: new value")
    out = app.sync()
    assert out.converged, app.store.snapshot()
    spec = engine.services.get(f"{stack}_seed").attrs
    assert "V=two" in spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert (spec.get("UpdateStatus") or {}).get("State") != "rollback_completed", spec.get("UpdateStatus")
    assert spec["Spec"]["UpdateConfig"]["FailureAction"] == "continue"
    st = app.store.snapshot()["stacks"][stack]
    assert (st["sync_status"], st["health_status"]) == ("Synced", "Healthy"), st
    # and then a run-once service that exits non-zero fails its stack with the code
    manifest_repo.write(f"manifests/{stack}/stack.yml", text.replace('echo $$V', 'exit 7'))
    manifest_repo.commit("run once: fails")
    app.sync()
    st = app.store.snapshot()["stacks"][stack]
    assert st["sync_status"] == "Failed" and "exit code 7" in st["last_error"], st
