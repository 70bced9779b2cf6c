"""The moment right after an update call: Swarm still shows the previous update's status.

Seen on Engine 20.10 (a config-only change reported done 6 ms after the update, a bad image
reported done in 0.06 s): the old ``completed`` UpdateStatus and tasks that all run the same
image look converged. A changed task template means Swarm will roll tasks, so the rollout is
progressing until Swarm reports the new update.
"""
from controller.health.assess import UPDATE_START_GRACE_S, assess
from controller.model.status import RolloutPhase
from controller.model import LiveService, LiveTask

OLD = "2026-11-29T07:00:00.000000000Z"


def service(new_template: dict, old_template: dict, status: dict) -> LiveService:
    spec = {"Mode": {"Replicated": {"Replicas": 2}}, "TaskTemplate": new_template}
    prev = {"Mode": {"Replicated": {"Replicas": 2}}, "TaskTemplate": old_template}
    return LiveService("id", "s_web", 10, {}, spec, prev, status)


def tasks(image: str):
    return [LiveTask(f"t{i}", i, "n1", "running", "running", image=image, created_at=1.0)
            for i in (1, 2)]


CONFIG_A = {"ContainerSpec": {"Image": "img@sha256:1", "Configs": [{"ConfigName": "a"}]}}
CONFIG_B = {"ContainerSpec": {"Image": "img@sha256:1", "Configs": [{"ConfigName": "b"}]}}


def test_stale_completed_status_of_the_previous_update_is_not_ours():
    svc = service(CONFIG_B, CONFIG_A, {"State": "completed", "StartedAt": OLD})
    a = assess(svc, tasks("img@sha256:1"), started_at=1000.0, now=1000.1,
               pending_timeout_s=60, created=False, prior_update_started=OLD)
    assert a.phase == RolloutPhase.PROGRESSING and a.reason == "Updating"


def test_no_status_yet_after_a_template_change_is_progressing():
    svc = service(CONFIG_B, CONFIG_A, None)
    a = assess(svc, tasks("img@sha256:1"), started_at=1000.0, now=1000.1,
               pending_timeout_s=60, created=False)
    assert a.phase == RolloutPhase.PROGRESSING


def test_a_template_change_swarm_never_rolls_is_judged_by_tasks_after_the_grace():
    svc = service(CONFIG_B, CONFIG_A, None)
    a = assess(svc, tasks("img@sha256:1"), started_at=1000.0,
               now=1000.0 + UPDATE_START_GRACE_S + 1, pending_timeout_s=60, created=False)
    assert a.phase == RolloutPhase.COMPLETED


def test_replicas_only_change_completes_from_tasks_at_once():
    svc = service(CONFIG_A, CONFIG_A, {"State": "completed", "StartedAt": OLD})
    a = assess(svc, tasks("img@sha256:1"), started_at=1000.0, now=1000.1,
               pending_timeout_s=60, created=False, prior_update_started=OLD)
    assert a.phase == RolloutPhase.COMPLETED


def test_stack_health_counts_running_tasks_per_service():
    from controller.health.assess import stack_health
    svc = LiveService("sid", "s_web", 1, {}, {"Mode": {"Replicated": {"Replicas": 3}}})
    glob = LiveService("gid", "s_agent", 1, {}, {"Mode": {"Global": {}}})
    job = LiveService("jid", "s_once", 1, {}, {"Mode": {"ReplicatedJob": {}}})
    run = [LiveTask(f"t{i}", i, "n", "running", "running", service_id="sid") for i in (1, 2)]
    run += [LiveTask("g1", None, "n", "running", "running", service_id="gid")]
    a = stack_health([svc, glob, job], run)
    assert a.reason == "Degraded" and a.message == "s_web 2/3 running"
    run.append(LiveTask("t3", 3, "n", "running", "running", service_id="sid"))
    assert stack_health([svc, glob, job], run).reason == "Healthy"
