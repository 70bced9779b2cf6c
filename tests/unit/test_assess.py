"""assess() on Engine JSON recorded from a real swarm (tests/unit/fixtures/health/record.py).

Each case folder holds the raw ``GET /services/{id}`` answer, the raw ``GET /tasks`` list and
``expected.json`` (assess() inputs: started_at, now, created, pending_timeout_s; and the phase and
reason the rules must give).
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from controller.health.assess import Assessment, assess
from controller.model.live import LiveService, LiveTask
from controller.swarm.parse import parse_service, parse_task

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "health"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.json").exists())


def load(case: str):
    """(LiveService, [LiveTask], expected dict) of one recorded case."""
    d = FIXTURES / case
    svc = parse_service(json.loads((d / "service.json").read_text()))
    tasks = [parse_task(t) for t in json.loads((d / "tasks.json").read_text())]
    return svc, tasks, json.loads((d / "expected.json").read_text())


def run(case: str, **override) -> Assessment:
    """assess() on a case with its recorded inputs (``override`` replaces some)."""
    svc, tasks, exp = load(case)
    kw = dict(started_at=exp["started_at"], now=exp["now"], created=exp["created"],
              pending_timeout_s=exp["pending_timeout_s"])
    kw.update(override)
    return assess(svc, tasks, **kw)


def test_every_state_is_recorded():
    assert {"create-progressing", "create-completed", "create-failing", "update-updating",
            "update-completed", "update-paused", "rollback-started", "rollback-completed",
            "rollback-paused", "start-first-pending-timeout", "start-first-pending-young",
            "global-completed", "replicas-zero"} <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_recorded_case(case):
    exp = load(case)[2]
    got = run(case)
    assert (got.phase, got.reason) == (exp["phase"], exp["reason"]), got.message


def test_rolled_back_message_names_the_failing_task():
    got = run("rollback-completed")
    assert got.message.startswith("rollback completed")
    assert "unhealthy container" in got.message


def test_pending_failure_carries_the_task_error():
    got = run("start-first-pending-timeout")
    assert "host-mode port already in use" in got.message
    assert got.settled


def test_pending_timeout_is_measured_from_the_rollout_start():
    # same snapshot, judged long after: the timeout is crossed
    svc, tasks, exp = load("start-first-pending-young")
    got = assess(svc, tasks, started_at=exp["started_at"], now=exp["now"] + 120,
                 pending_timeout_s=60, created=False)
    assert got.phase == "failed"


def test_pending_clock_restarts_when_the_engine_answers_again():
    # the same crossed timeout, but the engine was down until 30 s ago: not stuck yet
    svc, tasks, exp = load("start-first-pending-young")
    got = assess(svc, tasks, started_at=exp["started_at"], now=exp["now"] + 120,
                 pending_timeout_s=60, created=False, pending_since=exp["now"] + 90)
    assert got.phase != "failed"


def test_failing_new_service_reports_task_error():
    got = run("create-failing")
    assert "unhealthy container" in got.message


def test_new_service_not_failed_below_failure_limit():
    svc, tasks, exp = load("create-failing")
    one_failure = [t for t in tasks if t.state != "failed"][:1] + \
        [t for t in tasks if t.state == "failed"][:1]
    got = assess(svc, one_failure, started_at=exp["started_at"], now=exp["now"],
                 pending_timeout_s=60, created=True)
    assert got.phase == "progressing"


def test_stale_update_status_is_ignored():
    # an UpdateStatus that began long before this rollout belongs to an older update
    svc, tasks, exp = load("rollback-completed")
    later = exp["now"] + 3600
    got = assess(svc, tasks, started_at=later, now=later + 1, pending_timeout_s=60,
                 created=False)
    assert got.phase != "rolled_back"


def test_start_first_replacement_holds_back_completion():
    # no UpdateStatus, but a slot has a second wanted task still starting
    svc = LiveService(id="s", name="s", version=1, labels={},
                      spec={"Mode": {"Replicated": {"Replicas": 1}},
                            "TaskTemplate": {"ContainerSpec": {"Image": "busybox:latest"}}})
    tasks = [LiveTask("a", 1, "n", "running", "running", image="busybox:latest", created_at=5),
             LiveTask("b", 1, "n", "running", "starting", image="busybox:latest", created_at=6)]
    got = assess(svc, tasks, started_at=4, now=7, pending_timeout_s=60, created=True)
    assert got.phase == "progressing"
    tasks[1].state = "running"
    assert assess(svc, tasks, started_at=4, now=7, pending_timeout_s=60,
                  created=True).phase == "completed"


def test_global_service_counts_tasks_wanted_running():
    svc, tasks, exp = load("global-completed")
    tasks.append(LiveTask("x", None, "other-node", "running", "pending",
                          created_at=exp["now"]))
    assert run("global-completed").phase == "completed"
    got = assess(svc, tasks, started_at=exp["started_at"], now=exp["now"],
                 pending_timeout_s=60, created=True)
    assert (got.phase, got.message) == ("progressing", "1/2 replicas running")


def test_assess_imports_no_io_library():
    code = ("import sys, controller.health.assess\n"
            "bad = {'docker', 'git', 'watchdog', 'prometheus_client'} & set(sys.modules)\n"
            "assert not bad, bad\n")
    root = pathlib.Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)
