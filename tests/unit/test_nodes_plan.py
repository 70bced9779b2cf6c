"""Node plans and guard rails (controller.nodes), from recorded node and service JSON.

``fixtures/nodes/node.json`` is ``docker node inspect`` of a manager, ``service.json``
``docker service inspect`` of a replicated service with a pinned platform; each case varies them
(hostname, role, labels, availability, state, constraints).
"""
from __future__ import annotations

import copy
import json
import pathlib

import pytest

from controller.model import labels as L
from controller.nodes.constraints import can_run, placement_of, satisfies
from controller.nodes.moves import drain_report
from controller.model.live import LiveTask
from controller.nodes.plan import plan_nodes, tolerance
from controller.nodes.spec import parse_nodes
from controller.swarm.parse import parse_live_node

FIX = pathlib.Path(__file__).parent / "fixtures" / "nodes"
NODE = json.loads((FIX / "node.json").read_text())
SERVICE = json.loads((FIX / "service.json").read_text())
INSTANCE = "keelson-test"


def node(hostname, role="worker", labels=None, availability="active", state="ready",
         engine_labels=None):
    js = copy.deepcopy(NODE)
    js["ID"] = f"id-{hostname}"
    js["Description"]["Hostname"] = hostname
    js["Description"]["Engine"]["Labels"] = engine_labels or {}
    js["Spec"].update(Role=role, Availability=availability, Labels=dict(labels or {}))
    js["Status"]["State"] = state
    if role == "worker":
        js.pop("ManagerStatus", None)
    return parse_live_node(js)


def service(name, constraints=(), replicas=1, max_per_node=0, mode=None):
    spec = copy.deepcopy(SERVICE["Spec"])
    spec["Name"] = name
    placement = spec["TaskTemplate"].setdefault("Placement", {})
    placement["Constraints"] = list(constraints)
    if max_per_node:
        placement["MaxReplicas"] = max_per_node
    spec["Mode"] = mode or {"Replicated": {"Replicas": replicas}}
    return placement_of(name, spec)


def lab(**overrides):
    """m1 manager, w1 and w2 workers (overrides: hostname -> node)."""
    nodes = {"m1": node("m1", "manager"), "w1": node("w1"), "w2": node("w2")}
    nodes.update(overrides)
    return list(nodes.values())


def plan(text, nodes, services=(), self_node="id-m1"):
    return plan_nodes(parse_nodes(text, "cluster/nodes.yml"), nodes, services,
                      instance=INSTANCE, self_node_id=self_node)


def test_recorded_node_parses():
    n = parse_live_node(NODE)
    assert (n.hostname, n.role, n.availability, n.state, n.os, n.arch, n.leader) == (
        "vm", "manager", "active", "ready", "linux", "x86_64", True)
    assert n.version == NODE["Version"]["Index"]


def test_labels_added_with_bookkeeping_and_spec_sent_whole():
    p = plan("nodes:\n  w1:\n    labels: {mem: max}\n", lab())
    assert not p.refused
    (ch,) = p.changes
    assert ch.hostname == "w1" and ch.add == {"mem": "max"} and not ch.remove
    assert ch.spec["Labels"] == {"mem": "max", L.NODE_LABELS: "mem", L.INSTANCE: INSTANCE}
    assert ch.spec["Role"] == "worker" and ch.spec["Availability"] == "active"
    assert ch.describe() == "node w1: +mem=max"


def test_applied_labels_are_a_noop():
    w1 = node("w1", labels={"mem": "max", L.NODE_LABELS: "mem", L.INSTANCE: INSTANCE})
    assert plan("nodes:\n  w1:\n    labels: {mem: max}\n", lab(w1=w1)).changes == ()


def test_prunes_only_labels_it_set_hand_set_label_stays():
    w1 = node("w1", labels={"mem": "max", "zone": "a", "hand": "yes",
                            L.NODE_LABELS: "mem,zone", L.INSTANCE: INSTANCE})
    (ch,) = plan("nodes:\n  w1:\n    labels: {zone: a}\n", lab(w1=w1)).changes
    assert ch.remove == ("mem",)
    assert ch.spec["Labels"] == {"zone": "a", "hand": "yes", L.NODE_LABELS: "zone",
                                 L.INSTANCE: INSTANCE}
    # the entry gone from the file: every label Keelson set goes, the hand-set one stays
    (ch,) = plan("nodes: {}\n", lab(w1=w1)).changes
    assert ch.spec["Labels"] == {"hand": "yes"}


def test_labels_of_another_instance_are_not_pruned():
    w1 = node("w1", labels={"mem": "max", L.NODE_LABELS: "mem", L.INSTANCE: "other"})
    assert plan("nodes: {}\n", lab(w1=w1)).changes == ()


def test_groups_then_entry_win_in_order():
    text = """groups:
  - match: {hostname: "w*"}
    labels: {tier: worker, zone: a}
  - match: {labels: {disk: ssd}}
    labels: {zone: b}
    availability: pause
nodes:
  w2:
    labels: {zone: c}
    availability: active
"""
    w1 = node("w1", labels={"disk": "ssd"})
    w2 = node("w2", labels={"disk": "ssd"})
    p = plan(text, lab(w1=w1, w2=w2))
    by = {c.hostname: c for c in p.changes}
    assert set(by) == {"w1", "w2"}
    assert by["w1"].add == {"tier": "worker", "zone": "b"}
    assert by["w1"].availability == ("active", "pause")
    assert by["w2"].add == {"tier": "worker", "zone": "c"} and by["w2"].availability is None
    assert p.declared["m1"].labels == {}


def test_unknown_node_refused_unless_optional():
    p = plan("nodes:\n  w9:\n    labels: {a: b}\n  w1:\n    labels: {a: b}\n", lab())
    assert [r.rule for r in p.refusals] == ["unknown-node"]
    assert "w9 (cluster/nodes.yml:2)" in p.refusals[0].message
    p = plan("nodes:\n  w9:\n    labels: {a: b}\n    optional: true\n", lab())
    assert not p.refused and "skipped (optional)" in p.notes[0]


def test_node_down_refused_but_a_group_match_waits():
    w2 = node("w2", state="down")
    p = plan("nodes:\n  w2:\n    labels: {a: b}\n", lab(w2=w2))
    assert [r.rule for r in p.refusals] == ["node-down"] and "w2 is down" in p.refusals[0].message
    p = plan("groups:\n  - match: {hostname: 'w*'}\n    labels: {a: b}\n", lab(w2=w2))
    assert not p.refused and [c.hostname for c in p.changes] == ["w1"]
    # nothing to change on a down node: no refusal
    w2 = node("w2", state="down", labels={"a": "b", L.NODE_LABELS: "a", L.INSTANCE: INSTANCE})
    assert not plan("nodes:\n  w2:\n    labels: {a: b}\n", lab(w2=w2)).refused


def test_drain_of_last_eligible_node_refused_naming_the_service():
    svc = service("db", ["node.labels.disk==ssd"], replicas=1)
    w1 = node("w1", labels={"disk": "ssd"})
    p = plan("nodes:\n  w1:\n    availability: drain\n", lab(w1=w1), [svc])
    assert [r.rule for r in p.refusals] == ["nowhere-to-go"]
    assert "db (node.labels.disk==ssd)" in p.refusals[0].message
    assert "w1: availability active->drain" in p.refusals[0].message
    # pause too; and removing the label it needs
    assert plan("nodes:\n  w1:\n    availability: pause\n", lab(w1=w1), [svc]).refused
    # another eligible node remains: allowed
    w2 = node("w2", labels={"disk": "ssd"})
    assert not plan("nodes:\n  w1:\n    availability: drain\n", lab(w1=w1, w2=w2), [svc]).refused


def test_label_removal_that_strands_a_service_is_refused():
    w1 = node("w1", labels={"disk": "ssd", L.NODE_LABELS: "disk", L.INSTANCE: INSTANCE})
    p = plan("nodes: {}\n", lab(w1=w1), [service("db", ["node.labels.disk == ssd"])])
    assert [r.rule for r in p.refusals] == ["nowhere-to-go"]


def test_service_with_nowhere_to_go_already_is_not_blamed():
    p = plan("nodes:\n  w1:\n    availability: drain\n", lab(),
             [service("x", ["node.labels.none==1"])])
    assert not p.refused


def test_short_of_replicas_is_a_note():
    svc = service("web", ["node.role==worker"], replicas=2, max_per_node=1)
    p = plan("nodes:\n  w2:\n    availability: drain\n", lab(), [svc])
    assert not p.refused
    assert p.notes == ("service web would be short: 2 replicas, at most 1 per node, "
                       "1 eligible node(s) left",)


def test_demote_to_two_managers_refused_unless_forced():
    three = lab(w1=node("w1", "manager"), w2=node("w2", "manager"))
    p = plan("nodes:\n  w2:\n    role: worker\n", three)
    assert [r.rule for r in p.refusals] == ["quorum"]
    assert "leaves 2 manager(s), which tolerate 0" in p.refusals[0].message
    p = plan("nodes:\n  w2:\n    role: worker\n    force: true\n", three)
    assert not p.refused and p.changes[0].role == ("manager", "worker")
    # 2 -> 1 keeps the tolerance (0): allowed
    assert not plan("nodes:\n  w2:\n    role: worker\n", lab(w2=node("w2", "manager"))).refused


def test_never_demotes_the_node_keelson_runs_on_even_forced():
    three = lab(w1=node("w1", "manager"), w2=node("w2", "manager"))
    p = plan("nodes:\n  m1:\n    role: worker\n    force: true\n", three)
    assert [r.rule for r in p.refusals] == ["self-demote"]


def test_promotion_goes_first_drain_last():
    p = plan("nodes:\n  w1:\n    availability: drain\n  w2:\n    role: manager\n", lab())
    assert [c.hostname for c in p.changes] == ["w2", "w1"]
    assert p.changes[0].spec["Role"] == "manager"


def test_tolerance():
    assert [tolerance(n) for n in range(1, 8)] == [0, 0, 1, 1, 2, 2, 3]


@pytest.mark.parametrize("constraint,expected", [
    ("node.role==worker", True), ("node.role == manager", False),
    ("node.hostname==W1", True), ("node.hostname!=w1", False), ("node.id==id-w1", True),
    ("node.labels.zone==a", True), ("node.labels.Zone==a", False),  # label keys keep their case
    ("node.labels.missing!=x", True), ("node.labels.missing==", True),
    ("engine.labels.gpu==yes", True), ("node.platform.os==linux", True),
    ("node.platform.arch==x86_64", True), ("node.ip==10.0.0.1", True),  # unknown key: met
])
def test_constraints(constraint, expected):
    n = node("w1", labels={"zone": "a"}, engine_labels={"gpu": "yes"})
    assert satisfies(n, [constraint]) is expected


def test_platforms_match_amd64_to_x86_64():
    n = node("m1", "manager")
    assert can_run(n, placement_of("web", SERVICE["Spec"]))  # node.role==manager, linux/amd64
    spec = copy.deepcopy(SERVICE["Spec"])
    spec["TaskTemplate"]["Placement"]["Platforms"] = [{"OS": "linux", "Architecture": "arm64"}]
    assert not can_run(n, placement_of("web", spec))


def test_placement_of_skips_zero_replicas_and_jobs():
    assert service("a", replicas=0) is None
    assert service("b", mode={"ReplicatedJob": {}}) is None
    assert service("c", mode={"Global": {}}).replicas is None


def _task(tid, sid, slot, node_id, state="running", desired="running"):
    return LiveTask(tid, slot, node_id, desired, state, service_id=sid)


def test_drain_report_moves_and_short():
    before = [_task("t1", "s1", 1, "n2"), _task("t2", "s1", 2, "n1"), _task("t3", "s2", 1, "n2"),
              _task("t4", "s2", 2, "n1"), _task("t5", "s3", None, "n2")]
    now = [_task("t6", "s1", 1, "n1"), _task("t2", "s1", 2, "n1"),
           _task("t7", "s2", 1, "n1", state="pending"), _task("t4", "s2", 2, "n1")]
    report = drain_report(before, now, {"n2"}, {"n1": "w1", "n2": "w2"},
                          {"s1": "web", "s2": "db", "s3": "agent"}, {"s1": 2, "s2": 2, "s3": None})
    assert [m.describe() for m in report.moves] == [
        "agent: w2 -> nowhere", "db.1: w2 -> nowhere", "web.1: w2 -> w1"]
    assert report.short == (("db", 1, 2),) and report.degraded and not report.settled
    # the scheduler says no node fits db.1's replacement: settled (waiting changes nothing)
    now[2] = LiveTask("t7", 1, "", "running", "pending", service_id="s2",
                      error="no suitable node (max replicas per node limit exceed)")
    report = drain_report(before, now, {"n2"}, {"n1": "w1", "n2": "w2"},
                          {"s1": "web", "s2": "db", "s3": "agent"}, {"s1": 2, "s2": 2, "s3": None})
    assert report.settled and report.degraded and report.moves[1].stuck
