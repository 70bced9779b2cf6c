"""SwarmClient against the real dockerd in swarm mode: specs sent raw, answers as model data."""
from __future__ import annotations

import time

import pytest

from controller.errors import SpecConflictError, SwarmError
from controller.model import labels as L
from controller.model.live import LiveService, LiveStack, StackRecord
from controller.swarm.client import SwarmClient, engine_call

pytestmark = pytest.mark.integration

SECOND_NS = 1_000_000_000


@pytest.fixture
def swarm(engine):
    client = SwarmClient(engine)
    yield client
    client.close()


def service_spec(stack: str, name: str = "web", env=None, configs=None, secrets=None,
                 replicas: int = 1) -> dict:
    """A short-lived busybox ServiceSpec in the Engine's shape (durations ns)."""
    container = {"Image": "busybox:latest", "Command": ["sleep", "3600"],
                 "Labels": {L.NAMESPACE: stack}, "Env": env or [], "StopGracePeriod": 0}
    if configs:
        container["Configs"] = configs
    if secrets:
        container["Secrets"] = secrets
    fast = {"Parallelism": 1, "Delay": 0, "FailureAction": "pause", "Monitor": 2 * SECOND_NS,
            "Order": "stop-first"}
    return {"Name": f"{stack}_{name}", "Labels": dict(L.owner_labels(stack)),
            "TaskTemplate": {"ContainerSpec": container},
            "Mode": {"Replicated": {"Replicas": replicas}},
            "UpdateConfig": fast, "RollbackConfig": fast}


def file_ref(kind: str, obj_id: str, name: str, target: str) -> dict:
    key = "ConfigID" if kind == "config" else "SecretID"
    return {key: obj_id, f"{kind.capitalize()}Name": name,
            "File": {"Name": target, "UID": "0", "GID": "0", "Mode": 0o444}}


def wait_for(predicate, timeout_s: float = 30.0, step_s: float = 0.5):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError("condition not met in time")


def test_ping_manager_nodes(swarm):
    assert swarm.ping()
    assert swarm.is_manager()
    nodes = swarm.nodes()
    assert nodes and set(nodes[0]) == {"ID", "Hostname", "Role", "State", "Availability"}
    assert any(n["Role"] == "manager" for n in nodes)


def test_create_update_rollback_remove(swarm, stack_names):
    stack = stack_names("sc")
    spec = service_spec(stack, env=["A=1"])
    sid = swarm.create_service(spec)
    svc = swarm.service(f"{stack}_web")
    assert isinstance(svc, LiveService) and svc.id == sid
    # the spec is stored as sent: our fields survive unchanged
    assert svc.spec["TaskTemplate"]["ContainerSpec"]["Env"] == ["A=1"]
    assert svc.spec["UpdateConfig"]["Monitor"] == 2 * SECOND_NS
    assert svc.labels[L.MANAGED_BY] == L.MANAGED_BY_VALUE

    tasks = wait_for(lambda: [t for t in swarm.tasks(sid) if t.state == "running"])
    assert tasks[0].image == "busybox:latest" and tasks[0].slot == 1
    assert tasks[0].created_at > 1e9

    swarm.update_service(sid, service_spec(stack, env=["A=2"]))
    svc2 = swarm.service(sid)
    assert svc2.version > svc.version
    assert svc2.spec["TaskTemplate"]["ContainerSpec"]["Env"] == ["A=2"]
    assert svc2.previous_spec["TaskTemplate"]["ContainerSpec"]["Env"] == ["A=1"]

    swarm.rollback_service(sid)
    svc3 = swarm.service(sid)
    assert svc3.spec["TaskTemplate"]["ContainerSpec"]["Env"] == ["A=1"]
    assert svc3.update_status and svc3.update_status["State"].startswith("rollback")

    swarm.remove_service(sid)
    assert swarm.service(sid) is None
    swarm.remove_service(sid)  # already gone: not an error


def test_create_service_refused_is_swarm_error(swarm, stack_names):
    stack = stack_names("sc")
    spec = service_spec(stack)
    swarm.create_service(spec)
    with pytest.raises(SwarmError):
        swarm.create_service(spec)  # name in use


class RacingClient(SwarmClient):
    """Lets a second real client update the service between our inspect and our update."""

    def __init__(self, docker_client, rival: SwarmClient, races: int):
        super().__init__(docker_client)
        self.rival, self.races, self.attempts = rival, races, 0

    def _post_update(self, service_id, version, spec, rollback, registry_auth=None):
        self.attempts += 1
        if self.races > 0:
            self.races -= 1
            current = self.rival.service(service_id)
            self.rival._post_update(service_id, current.version, current.spec, False)
        super()._post_update(service_id, version, spec, rollback, registry_auth)


def test_update_out_of_sequence_is_retried(engine, swarm, stack_names):
    stack = stack_names("sc")
    sid = swarm.create_service(service_spec(stack, replicas=0))
    racer = RacingClient(engine, swarm, races=2)
    racer.update_service(sid, service_spec(stack, env=["B=1"], replicas=0))
    assert racer.attempts == 3
    assert swarm.service(sid).spec["TaskTemplate"]["ContainerSpec"]["Env"] == ["B=1"]

    always = RacingClient(engine, swarm, races=5)
    with pytest.raises(SpecConflictError):
        always.update_service(sid, service_spec(stack, env=["B=2"], replicas=0))


def test_stale_version_raises_spec_conflict(swarm, stack_names):
    stack = stack_names("sc")
    sid = swarm.create_service(service_spec(stack, replicas=0))
    old = swarm.service(sid).version
    swarm.update_service(sid, service_spec(stack, env=["C=1"], replicas=0))
    with pytest.raises(SpecConflictError):
        with engine_call("stale update"):
            swarm._post_update(sid, old, service_spec(stack, env=["C=2"], replicas=0), False)


def test_network_config_secret_round_trip(swarm, stack_names):
    stack = stack_names("sc")
    own = L.owner_labels(stack)
    nid = swarm.create_network({"Name": f"{stack}_net", "Driver": "overlay",
                                "Attachable": True, "Labels": own})
    net = swarm.network(f"{stack}_net")
    assert net["Id"] == nid and net["Scope"] == "swarm" and net["Driver"] == "overlay"
    assert net["Labels"] == own
    assert swarm.network(f"{stack}_missing") is None

    cid = swarm.create_config(f"{stack}_app-1", b"x=1", own, "golang")
    assert swarm.config(f"{stack}_app-1").id == cid
    assert swarm.config(f"{stack}_app") is None  # exact names only, not prefixes
    sec = swarm.create_secret(f"{stack}_pw-1", b"pw", own)
    assert swarm.secret(f"{stack}_pw-1").id == sec

    swarm.remove_config(cid)
    swarm.remove_secret(sec)
    swarm.remove_network(nid)
    assert swarm.config(f"{stack}_app-1") is None and swarm.secret(f"{stack}_pw-1") is None
    swarm.remove_config(cid)  # 404 is fine
    swarm.remove_network(nid)


def test_referenced_ids_include_previous_spec(swarm, stack_names):
    stack = stack_names("sc")
    own = L.owner_labels(stack)
    c1 = swarm.create_config(f"{stack}_app-1", b"one", own)
    c2 = swarm.create_config(f"{stack}_app-2", b"two", own)
    s1 = swarm.create_secret(f"{stack}_pw-1", b"pw", own)
    free = swarm.create_config(f"{stack}_unused-1", b"free", own)
    sid = swarm.create_service(service_spec(
        stack, replicas=0, configs=[file_ref("config", c1, f"{stack}_app-1", "/app")],
        secrets=[file_ref("secret", s1, f"{stack}_pw-1", "pw")]))
    swarm.update_service(sid, service_spec(
        stack, replicas=0, configs=[file_ref("config", c2, f"{stack}_app-2", "/app")]))
    configs = swarm.referenced_config_ids()
    assert {c1, c2} <= configs and free not in configs
    assert s1 in swarm.referenced_secret_ids()  # only PreviousSpec still has it


def test_live_stacks_groups_and_record_round_trip(swarm, stack_names):
    a, b, foreign = stack_names("sa"), stack_names("sb"), stack_names("sf")
    swarm.create_service(service_spec(a, replicas=0))
    swarm.create_network({"Name": f"{a}_default", "Driver": "overlay",
                          "Labels": L.owner_labels(a)})
    swarm.create_config(f"{b}_app-1", b"b", L.owner_labels(b))
    swarm.create_secret(f"{b}_pw-1", b"b", L.owner_labels(b))
    # made by `docker stack deploy`, not by Keelson: namespace label only
    swarm.create_config(f"{foreign}_x", b"f", {L.NAMESPACE: foreign})

    swarm.write_record(a, StackRecord(applied_revision="a" * 40, applied_source_hash="h1"))
    live = swarm.live_stacks([a, b, foreign])
    assert set(live) == {a, b, foreign}
    assert isinstance(live[a], LiveStack)
    assert set(live[a].services) == {f"{a}_web"}
    assert set(live[a].networks) == {f"{a}_default"}
    assert live[a].configs == {}  # the record is not a config of the stack
    assert live[a].record == StackRecord(applied_revision="a" * 40, applied_source_hash="h1")
    assert set(live[b].configs) == {f"{b}_app-1"} and set(live[b].secrets) == {f"{b}_pw-1"}
    assert live[b].record is None and live[b].managed
    assert not live[foreign].managed

    # update in place: labels only, emptied fields dropped
    rec = StackRecord(applied_revision="a" * 40, failed_revision="f" * 40,
                      failed_reason="RolledBack", failed_message="web: task exited (1)")
    swarm.write_record(a, rec)
    cfg = swarm.config(L.state_record_name(a))
    assert L.APPLIED_SOURCE_HASH not in cfg.labels and cfg.labels[L.STATE] == "1"
    assert swarm.live_stacks([a])[a].record == rec
    assert set(swarm.live_stacks()) >= {a, b, foreign}

    swarm.remove_record(a, "")
    assert swarm.live_stacks([a])[a].record is None
    swarm.remove_record(a, "")  # nothing to remove: fine
