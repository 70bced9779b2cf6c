"""Issue 8.1 (pure): services meant to finish, judged from their tasks as Swarm does."""
from controller.health.assess import assess, is_finite, stack_health
from controller.model.live import LiveService, LiveTask

T0 = 1000.0


def svc(mode=None, condition=None, replicas=1):
    spec = {"Name": "s_job", "TaskTemplate": {"ContainerSpec": {"Image": "img"}},
            "Mode": mode or {"Replicated": {"Replicas": replicas}}}
    if condition:
        spec["TaskTemplate"]["RestartPolicy"] = {"Condition": condition}
    return LiveService("sid", "s_job", 5, {}, spec)


def task(i, state, *, desired="complete", created=T0 + 1, updated=T0 + 2, slot=1, code=None,
         err=""):
    return LiveTask(f"task{i}", slot, "node1", desired, state, error=err, created_at=created,
                    updated_at=updated, service_id="sid", exit_code=code)


def judge(service, tasks, now=T0 + 5, created=True):
    return assess(service, tasks, started_at=T0, now=now, pending_timeout_s=60, created=created)


def test_finite_kinds():
    assert is_finite(svc({"ReplicatedJob": {}}).spec) and is_finite(svc({"GlobalJob": {}}).spec)
    assert is_finite(svc(condition="none").spec) and is_finite(svc(condition="on-failure").spec)
    assert not is_finite(svc(condition="any").spec) and not is_finite(svc().spec)


def test_job_converges_when_every_completion_is_done():
    job = svc({"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 2}})
    running = judge(job, [task(1, "complete", code=0), task(2, "running", slot=2)])
    assert (running.phase, running.reason) == ("progressing", "Running")
    done = judge(job, [task(1, "complete", code=0), task(2, "complete", slot=2, code=0)])
    assert (done.phase, done.message) == ("completed", "2/2 tasks complete or running")


def test_non_zero_exit_fails_with_code_and_error():
    job = svc({"ReplicatedJob": {}})
    a = judge(job, [task(1, "failed", desired="shutdown", code=3, err="task: non-zero exit (3)")])
    assert (a.phase, a.reason) == ("failed", "TaskFailed")
    assert a.message == "task task1 exit code 3: task: non-zero exit (3)"


def test_tasks_of_an_earlier_run_do_not_count():
    job = svc({"ReplicatedJob": {}})
    old = task(0, "complete", created=T0 - 1, code=0)
    assert judge(job, [old]).phase == "progressing"


def test_run_once_service_counts_running_only_after_monitor():
    once = svc(condition="none")
    fresh = task(1, "running", desired="running", updated=T0 + 4)
    assert judge(once, [fresh], now=T0 + 5).phase == "progressing"
    assert judge(once, [fresh], now=T0 + 10).phase == "completed"
    assert judge(once, [task(1, "complete", desired="shutdown", code=0)]).phase == "completed"


def test_update_without_new_tasks_judged_from_newest_task_per_slot():
    once = svc(condition="on-failure")
    once.previous_spec = dict(once.spec)  # same task template: no rolling update
    old_fail = task(0, "failed", desired="shutdown", created=T0 - 100, updated=T0 - 99, code=1)
    newest = task(1, "complete", desired="shutdown", created=T0 - 50, code=0)
    assert judge(once, [old_fail, newest], created=False).phase == "completed"


def test_stack_health_never_calls_a_finished_task_degraded():
    job, once = svc({"ReplicatedJob": {}}), svc(condition="none")
    once.id = "sid2"
    done = [task(1, "complete", code=0), LiveTask("t2", 1, "node1", "shutdown", "complete",
                                                 service_id="sid2", exit_code=0)]
    assert stack_health([job, once], done).reason == "Healthy"
    died = LiveTask("t3", 1, "node1", "shutdown", "failed", error="task: non-zero exit (137)",
                    service_id="sid2", exit_code=137, created_at=T0 + 9)
    judged = stack_health([job, once], done + [died])
    assert judged.reason == "Degraded"
    assert judged.message == "s_job 0/1 running (task t3 exit code 137: task: non-zero exit (137))"
