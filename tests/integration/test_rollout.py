"""RolloutWatcher on the real swarm: good update, Swarm's rollback (c09), the watcher's own
rollback of a start-first task Pending on a host port (c10), and a new service.

Services are busybox httpd with a wget healthcheck; the bad version's check is ``false``.
Rollouts are short: delay 0, monitor 3 s, 1 s health intervals.
"""
from __future__ import annotations

import time
import uuid

import pytest

from controller.health.rollout import RolloutWatcher
from controller.model.status import Rollout
from controller.swarm.client import SwarmClient

pytestmark = pytest.mark.integration

NS = "com.docker.stack.namespace"
S = 1_000_000_000  # ns per second
# busybox httpd answers 404 for a folder without index.html, which fails wget: write one first
HTTPD = "echo ok > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"


def spec(name: str, *, version: int = 1, healthy: bool = True, replicas: int = 2,
         order: str = "stop-first", host_port: int = 0) -> dict:
    """ServiceSpec of the test service (``version`` goes into an env var to force new tasks)."""
    test = (["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"] if healthy
            else ["CMD", "false"])
    out = {
        "Name": name, "Labels": {NS: name},
        "TaskTemplate": {
            "ContainerSpec": {"Image": "busybox:latest", "Args": ["sh", "-c", HTTPD],
                              "Env": [f"VERSION={version}"], "StopGracePeriod": 1 * S,
                              "Healthcheck": {"Test": test, "Interval": 1 * S, "Timeout": 1 * S,
                                              "Retries": 1}},
            "RestartPolicy": {"Condition": "any", "Delay": 1 * S},
        },
        "Mode": {"Replicated": {"Replicas": replicas}},
        "UpdateConfig": {"Parallelism": 1, "Delay": 0, "FailureAction": "rollback",
                         "Monitor": 3 * S, "Order": order},
        "RollbackConfig": {"Parallelism": 1, "Delay": 0, "FailureAction": "pause",
                           "Monitor": 3 * S, "Order": "stop-first"},
    }
    if host_port:
        out["EndpointSpec"] = {"Ports": [{"Protocol": "tcp", "TargetPort": 8080,
                                          "PublishedPort": host_port, "PublishMode": "host"}]}
    return out


@pytest.fixture
def client(engine):
    """SwarmClient on the test engine."""
    return SwarmClient(engine)


def running_versions(client: SwarmClient, sid: str) -> list:
    """VERSION env of the tasks that run, from the Engine's raw task list."""
    out = []
    for t in client.api.tasks(filters={"service": sid}):
        if t["DesiredState"] == "running" and t["Status"]["State"] == "running":
            out.append(t["Spec"]["ContainerSpec"]["Env"][0])
    return sorted(out)


def rollout(service_id: str, created: bool, started_at: float) -> Rollout:
    """A Rollout of one service, as an apply returns it."""
    return Rollout("t", "", service_id, created, "", started_at)


def create_running(client: SwarmClient, watcher: RolloutWatcher, service_spec: dict) -> str:
    """Create a service and wait (with the watcher) until it runs."""
    t0 = time.time()
    sid = client.create_service(service_spec)
    [res] = watcher.watch([rollout(sid, True, t0)])
    assert res.outcome == "completed", res
    return sid


def wait_for(predicate, timeout_s: float = 30.0):
    """Poll ``predicate`` every 0.5 s until it is truthy; returns its last value."""
    deadline = time.time() + timeout_s
    value = predicate()
    while not value and time.time() < deadline:
        time.sleep(0.5)
        value = predicate()
    return value


def test_new_service_completes_once_all_replicas_run(client, stack_names):
    name = stack_names("ro")
    watcher = RolloutWatcher(client, timeout_s=60, pending_timeout_s=30, poll_s=0.3)
    t0 = time.time()
    sid = client.create_service(spec(name, replicas=3))
    [res] = watcher.watch([rollout(sid, True, t0)])
    assert (res.outcome, res.reason, res.service) == ("completed", "Succeeded", name)
    assert running_versions(client, sid) == ["VERSION=1"] * 3
    assert res.image == "busybox:latest" and 0 < res.duration_s < 60


def test_good_update_completes(client, stack_names):
    name = stack_names("ro")
    watcher = RolloutWatcher(client, timeout_s=90, pending_timeout_s=30, poll_s=0.3)
    sid = create_running(client, watcher, spec(name))
    t0 = time.time()
    client.update_service(sid, spec(name, version=2))
    [res] = watcher.watch([rollout(sid, False, t0)])
    assert (res.outcome, res.reason) == ("completed", "Succeeded"), res
    assert running_versions(client, sid) == ["VERSION=2"] * 2


def test_bad_update_rolled_back_by_swarm_is_reported(client, stack_names):
    """c09: Swarm rolls back by itself; the rollout is a failure, and v1 still runs."""
    name = stack_names("ro")
    watcher = RolloutWatcher(client, timeout_s=90, pending_timeout_s=30, poll_s=0.3)
    sid = create_running(client, watcher, spec(name))
    t0 = time.time()
    client.update_service(sid, spec(name, version=2, healthy=False))
    [res] = watcher.watch([rollout(sid, False, t0)])
    assert (res.outcome, res.reason) == ("rolled_back", "RolledBack"), res
    assert "unhealthy" in res.message
    assert client.service(sid).update_status["State"] == "rollback_completed"
    assert wait_for(lambda: running_versions(client, sid) == ["VERSION=1"] * 2)


def test_start_first_host_port_pending_is_rolled_back_by_the_watcher(client, stack_names):
    """c10: the new task can never bind the host port; Swarm waits forever, the watcher not."""
    name = stack_names("ro")
    port = 20000 + uuid.uuid4().int % 10000
    watcher = RolloutWatcher(client, timeout_s=90, pending_timeout_s=8, poll_s=0.3)
    sid = create_running(client, watcher,
                         spec(name, replicas=1, order="start-first", host_port=port))
    t0 = time.time()
    client.update_service(sid, spec(name, version=2, replicas=1, order="start-first",
                                    host_port=port))
    [res] = watcher.watch([rollout(sid, False, t0)])
    assert (res.outcome, res.reason) == ("rolled_back", "RolledBack"), res
    assert "host-mode port already in use" in res.message
    assert res.duration_s >= 8
    svc = client.service(sid)
    assert svc.spec["TaskTemplate"]["ContainerSpec"]["Env"] == ["VERSION=1"]
    assert wait_for(lambda: running_versions(client, sid) == ["VERSION=1"])


def test_services_are_watched_together(client, stack_names):
    """A new service and a bad update in one call: each gets its own outcome."""
    good, bad = stack_names("ro"), stack_names("ro")
    watcher = RolloutWatcher(client, timeout_s=90, pending_timeout_s=30, poll_s=0.3)
    bad_id = create_running(client, watcher, spec(bad, replicas=1))
    t0 = time.time()
    good_id = client.create_service(spec(good, replicas=1))
    client.update_service(bad_id, spec(bad, version=2, healthy=False, replicas=1))
    res = watcher.watch([rollout(good_id, True, t0), rollout(bad_id, False, t0)])
    assert [r.service for r in res] == [good, bad]
    assert [r.outcome for r in res] == ["completed", "rolled_back"]


def test_timeout_reports_rollout_timeout(client, stack_names):
    """A new service that cannot start within the timeout is failed with RolloutTimeout."""
    name = stack_names("ro")
    watcher = RolloutWatcher(client, timeout_s=3, pending_timeout_s=30, poll_s=0.3)
    t0 = time.time()
    sid = client.create_service(spec(name, replicas=1, healthy=False))
    [res] = watcher.watch([rollout(sid, True, t0)])
    assert (res.outcome, res.reason) == ("failed", "RolloutTimeout"), res
    assert 3 <= res.duration_s < 10
