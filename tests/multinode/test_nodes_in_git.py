"""Nodes declared in git (issue 11 part 1) on a real 3-node swarm (m1 manager, w1 and w2 workers).

One Keelson, one repo, a sequence of commits (each step builds on the last, to keep the lab run
short): labels added and pruned (a hand-set label stays), a constraint on a new label placed in
the same pass, an unknown node refused (then optional), a drain that moves tasks (reported) and
leaves a service short (Degraded), a drain of the last eligible node refused, promotions to 3
managers, a demotion to 2 refused unless forced, the node Keelson runs on never demoted, and a
change to a node that is down refused. Every refusal changes no node and the stack still syncs.
"""
from __future__ import annotations

import collections
import io
import json
import os
import time
import urllib.request
import uuid

import docker
import pytest
import yaml

from controller.app import App
from controller.config import Settings
from controller.http.server import StatusServer
from controller.model import labels as L
from controller.report import print_plan
from controller.swarm.client import SwarmClient

pytestmark = [pytest.mark.integration, pytest.mark.multinode]

WAIT_S = 120
NODES_FILE = "cluster/nodes.yml"


def wait_until(what, probe, timeout_s=WAIT_S):
    """Poll ``probe()`` every second until truthy; fail with its last value after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        try:
            last = probe()
        except docker.errors.APIError as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")
        time.sleep(1)


def stack_yml(reg: str, extra: str = "", db_constraint: str = "node.labels.knd-disk == ssd") -> str:
    return f"""services:
  db:
    image: {reg}/library/busybox:latest
    command: ["sleep", "3600"]
    deploy:
      placement:
        constraints: [{db_constraint}]
      update_config: {{delay: 0s, monitor: 1s}}
      restart_policy: {{condition: any, delay: 0s}}
    stop_grace_period: 1s
{extra}"""


MOVERS = """  mover:
    image: {reg}/library/busybox:latest
    command: ["sleep", "3600"]
    deploy:
      replicas: 2
      placement:
        constraints: [node.role == worker]
      update_config: {{delay: 0s, monitor: 1s}}
      restart_policy: {{condition: any, delay: 0s}}
    stop_grace_period: 1s
  tight:
    image: {reg}/library/busybox:latest
    command: ["sleep", "3600"]
    deploy:
      replicas: 2
      placement:
        constraints: [node.role == worker]
        max_replicas_per_node: 1
      update_config: {{delay: 0s, monitor: 1s}}
      restart_policy: {{condition: any, delay: 0s}}
    stop_grace_period: 1s
"""


def nodes_yml(**entries) -> str:
    """A nodes file with one entry per hostname (a comment first, so lines are known)."""
    return "# nodes of the lab\n# (knd: test of issue 11)\n" + yaml.safe_dump(
        {"nodes": entries}, sort_keys=False)


def node_attrs(cluster, hostname):
    (n,) = [n for n in cluster.manager.nodes.list()
            if n.attrs["Description"]["Hostname"] == hostname]
    return n.attrs


def labels_of(cluster, hostname):
    return node_attrs(cluster, hostname)["Spec"].get("Labels") or {}


def running_per_node(cluster, service):
    names = {n.id: n.attrs["Description"]["Hostname"] for n in cluster.manager.nodes.list()}
    tasks = cluster.manager.services.get(service).tasks(filters={"desired-state": "running"})
    return collections.Counter(names[t["NodeID"]] for t in tasks
                               if t["Status"]["State"] == "running")


def node_versions(cluster):
    return {n.attrs["Description"]["Hostname"]: n.attrs["Version"]["Index"]
            for n in cluster.manager.nodes.list()}


def roles(cluster):
    return {n.attrs["Description"]["Hostname"]: n.attrs["Spec"]["Role"]
            for n in cluster.manager.nodes.list()}


def test_nodes_in_git_on_three_nodes(cluster, manifest_repo, tmp_path):
    reg = cluster.registry
    stack = f"knd{uuid.uuid4().hex[:6]}"
    mgr = cluster.manager
    # a label set by hand, under a key the file never names: it must survive every prune
    w1 = mgr.nodes.get(node_attrs(cluster, "w1")["ID"])
    spec = dict(w1.attrs["Spec"], Labels=dict(w1.attrs["Spec"].get("Labels") or {}, hand="kept"))
    w1.update(spec)

    settings = Settings(repo=manifest_repo.url, registry=reg, workdir=str(tmp_path / "wd"),
                        listen="", stacks=(stack,), rollout_timeout_s=120,
                        pending_timeout_s=60)
    client = SwarmClient(docker.DockerClient(base_url=cluster.sockets["m1"], timeout=120))
    app = App(settings.validated(), environ=dict(os.environ), client=client)

    def sync_ok():
        out = app.sync()
        assert out.runs[stack].status.sync_status == "Synced", json.dumps(
            app.store.snapshot(), indent=1, default=str)
        return out

    def refused_count():
        return app.metrics.registry.get_sample_value(
            "keelson_node_changes_total", {"result": "refused"})

    # 1. labels added, and a constraint on a new label placed in the same pass
    manifest_repo.write(NODES_FILE, """groups:
  - match: {hostname: "w*"}
    labels: {knd-tier: worker}
nodes:
  w1:
    labels: {knd-disk: ssd}
""")
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_yml(reg))
    manifest_repo.commit("labels and a service that needs one")
    out = sync_ok()
    assert out.nodes.result == "applied"
    assert labels_of(cluster, "w1") == {"knd-disk": "ssd", "knd-tier": "worker", "hand": "kept",
                                        L.NODE_LABELS: "knd-disk,knd-tier",
                                        L.INSTANCE: app.settings.instance}
    assert labels_of(cluster, "w2")["knd-tier"] == "worker"
    wait_until("db on w1", lambda: running_per_node(cluster, f"{stack}_db")
               == collections.Counter(w1=1))
    section = app.store.snapshot()["nodes"]
    assert section["result"] == "applied" and section["file"] == NODES_FILE
    assert section["nodes"]["w1"]["declared"]["labels"] == {"knd-disk": "ssd", "knd-tier": "worker"}
    assert section["nodes"]["w1"]["live"]["labels"]["hand"] == "kept"
    assert section["nodes"]["m1"]["declared"]["labels"] == {}
    # applied again: nothing to change, no node written
    before = node_versions(cluster)
    assert sync_ok().nodes.result == "noop"
    assert node_versions(cluster) == before

    # 2. the group leaves the file: its label is pruned; the hand-set label stays
    manifest_repo.write(NODES_FILE, "nodes:\n  w1:\n    labels: {knd-disk: ssd}\n")
    manifest_repo.commit("drop the group")
    sync_ok()
    assert labels_of(cluster, "w1") == {"knd-disk": "ssd", "hand": "kept",
                                        L.NODE_LABELS: "knd-disk",
                                        L.INSTANCE: app.settings.instance}
    assert not {"knd-tier", L.NODE_LABELS} & set(labels_of(cluster, "w2"))

    # an invalid nodes file: a located error, no node changed, the stack still syncs
    manifest_repo.write(NODES_FILE, "nodes:\n  w1:\n    availability: drian\n")
    manifest_repo.commit("invalid nodes file")
    before = node_versions(cluster)
    out = sync_ok()
    assert out.nodes.result == "invalid" and not out.converged and out.result == "partial"
    assert "cluster/nodes.yml:3: key nodes.w1.availability" in out.nodes.error
    assert app.store.snapshot()["nodes"]["result"] == "invalid"
    assert app.metrics.registry.get_sample_value(
        "keelson_node_changes_total", {"result": "invalid"}) == 1
    assert node_versions(cluster) == before

    # 3. a typo'd hostname: refused, no node changed, the stack still syncs; optional: applied
    w1_labels = {"labels": {"knd-disk": "ssd", "knd-x": "1"}}
    manifest_repo.write(NODES_FILE, nodes_yml(w1=w1_labels, w9={"labels": {"knd-x": "1"}}))
    manifest_repo.commit("typo")
    before = node_versions(cluster)
    out = sync_ok()
    assert out.nodes.result == "refused" and not out.converged
    assert node_versions(cluster) == before
    section = app.store.snapshot()["nodes"]
    assert section["refusals"][0]["rule"] == "unknown-node"
    assert "w9 (cluster/nodes.yml:8) is not in the swarm" in section["error"], section["error"]
    assert refused_count() == 1
    manifest_repo.write(NODES_FILE, nodes_yml(w1=w1_labels, w9={"labels": {"knd-x": "1"},
                                                               "optional": True}))
    manifest_repo.commit("optional")
    out = sync_ok()
    assert out.nodes.result == "applied" and out.converged
    assert labels_of(cluster, "w1")["knd-x"] == "1"
    assert "w9" in app.store.snapshot()["nodes"]["notes"][0]

    # 4. a drain moves tasks (reported) and leaves `tight` short: Degraded
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_yml(reg, MOVERS.format(reg=reg)))
    manifest_repo.commit("movers")
    sync_ok()
    wait_until("tight on w1 and w2", lambda: running_per_node(cluster, f"{stack}_tight")
               == collections.Counter(w1=1, w2=1))
    wait_until("2 movers", lambda: sum(running_per_node(cluster, f"{stack}_mover").values()) == 2)
    on_w2 = running_per_node(cluster, f"{stack}_mover")["w2"]
    w2_drained = {"availability": "drain"}
    manifest_repo.write(NODES_FILE, nodes_yml(w1=w1_labels, w2=w2_drained))
    manifest_repo.commit("drain w2")
    plan = io.StringIO()
    print_plan(app.sync(dry_run=True), plan)  # `keelson plan` shows it and changes nothing
    assert "~ node w2: availability active->drain" in plan.getvalue(), plan.getvalue()
    assert f"service {stack}_tight would be short" in plan.getvalue()
    assert node_attrs(cluster, "w2")["Spec"]["Availability"] == "active"
    out = sync_ok()
    assert out.nodes.result == "applied" and str(out.nodes.health) == "Degraded"
    section = app.store.snapshot()["nodes"]
    moves = section["moves"]
    assert sum(m.startswith(f"{stack}_mover.") and m.endswith(": w2 -> w1") for m in moves) \
        == on_w2, moves
    assert any(m.startswith(f"{stack}_tight.") and m.endswith(": w2 -> nowhere") for m in moves)
    assert section["health"] == "Degraded"
    # (services of earlier tests in the session may be short too: only ours are checked)
    assert [s for s in section["short"] if s["service"].startswith(stack)] == [
        {"service": f"{stack}_tight", "running": 1, "desired": 2}]
    assert running_per_node(cluster, f"{stack}_mover") == collections.Counter(w1=2)
    # /api/status serves the nodes section (what `keelson status` shows)
    server = StatusServer("127.0.0.1:0", metrics=app.metrics, status=app.store.snapshot,
                          ready=lambda: True, on_webhook=lambda: None)
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/api/status",
                                    timeout=10) as resp:
            api = json.loads(resp.read())["nodes"]
    finally:
        server.stop()
    assert api["health"] == "Degraded" and api["moves"] == moves
    assert api["nodes"]["w2"]["declared"]["availability"] == "drain"
    assert api["nodes"]["w2"]["live"]["availability"] == "drain"
    assert api["plan"] == ["node w2: availability active->drain"]

    # 5. draining w1 too would leave db, mover and tight nowhere to go: refused
    manifest_repo.write(NODES_FILE, nodes_yml(w1=dict(w1_labels, availability="drain"),
                                              w2=w2_drained))
    manifest_repo.commit("drain w1 as well")
    before = node_versions(cluster)
    out = sync_ok()
    assert out.nodes.result == "refused"
    (refusal,) = out.nodes.plan.refusals
    assert refusal.rule == "nowhere-to-go"
    for svc in ("db", "mover", "tight"):
        assert f"{stack}_{svc}" in refusal.message
    assert node_versions(cluster) == before and refused_count() == 2

    # 6. promote w1 and w2 (3 managers); demoting to 2 is refused unless forced; Keelson's
    #    own node (m1) is never demoted, even forced. First the services that need a worker
    #    go (the guard reads the live services, so they would have nowhere to go).
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_yml(reg))
    manifest_repo.commit("no more movers")
    sync_ok()
    w1_mgr = dict(w1_labels, role="manager")
    w2_mgr = dict(w2_drained, role="manager")
    manifest_repo.write(NODES_FILE, nodes_yml(w1=w1_mgr, w2=w2_mgr))
    manifest_repo.commit("promote")
    sync_ok()
    wait_until("3 managers", lambda: roles(cluster) == {"m1": "manager", "w1": "manager",
                                                         "w2": "manager"})
    wait_until("3 managers in the raft", lambda: mgr.info()["Swarm"]["Managers"] == 3)
    manifest_repo.write(NODES_FILE, nodes_yml(w1=w1_mgr, w2=w2_mgr,
                                              m1={"role": "worker", "force": True}))
    manifest_repo.commit("demote m1")
    out = sync_ok()
    assert [r.rule for r in out.nodes.plan.refusals] == ["self-demote"]
    w2_worker = dict(w2_drained, role="worker")
    manifest_repo.write(NODES_FILE, nodes_yml(w1=w1_mgr, w2=w2_worker))
    manifest_repo.commit("demote w2")
    out = sync_ok()
    assert [r.rule for r in out.nodes.plan.refusals] == ["quorum"]
    assert "leaves 2 manager(s)" in out.nodes.error
    assert roles(cluster)["w2"] == "manager"
    manifest_repo.write(NODES_FILE, nodes_yml(w1=w1_mgr, w2=dict(w2_worker, force=True)))
    manifest_repo.commit("demote w2, forced")
    assert sync_ok().nodes.result == "applied"
    wait_until("w2 a worker again", lambda: roles(cluster)["w2"] == "worker")
    wait_until("2 managers in the raft", lambda: mgr.info()["Swarm"]["Managers"] == 2)
    # 2 -> 1 manager keeps the fault tolerance (none): allowed without force
    manifest_repo.write(NODES_FILE, nodes_yml(w1=dict(w1_labels, role="worker"), w2=w2_worker))
    manifest_repo.commit("demote w1")
    assert sync_ok().nodes.result == "applied"
    wait_until("m1 the only manager", lambda: roles(cluster) == {
        "m1": "manager", "w1": "worker", "w2": "worker"})
    wait_until("1 manager in the raft", lambda: mgr.info()["Swarm"]["Managers"] == 1)

    # a commit dropping a label together with the constraint that needs it: the guard reads
    # the running services, so the first pass refuses the prune (and updates the stack), the
    # next pass applies it
    manifest_repo.write(NODES_FILE, nodes_yml(w1={"labels": {"knd-x": "1"}, "role": "worker"},
                                              w2=w2_worker))
    manifest_repo.write(f"manifests/{stack}/stack.yml",
                        stack_yml(reg, db_constraint="node.platform.os == linux"))
    manifest_repo.commit("no more ssd")
    out = sync_ok()
    assert [r.rule for r in out.nodes.plan.refusals] == ["nowhere-to-go"]
    assert labels_of(cluster, "w1")["knd-disk"] == "ssd"
    assert sync_ok().nodes.result == "applied"
    assert "knd-disk" not in labels_of(cluster, "w1")
    assert labels_of(cluster, "w1")["hand"] == "kept"

    # 7. a node that is down is never changed: w2 back to active is refused while it is down
    cluster.stop_node("w2")
    wait_until("w2 down", lambda: node_attrs(cluster, "w2")["Status"]["State"] == "down",
               timeout_s=60)
    manifest_repo.write(NODES_FILE, nodes_yml(w1=w1_labels, w2={"availability": "active"}))
    manifest_repo.commit("w2 active while down")
    before = node_versions(cluster)
    out = sync_ok()
    assert [r.rule for r in out.nodes.plan.refusals] == ["node-down"]
    assert "w2 is down" in out.nodes.error
    assert node_versions(cluster) == before
    assert app.store.snapshot()["nodes"]["nodes"]["w2"]["live"]["state"] == "down"
