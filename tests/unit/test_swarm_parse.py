"""Pure Engine JSON -> model translation, on JSON captured from a real dockerd 20.10."""
from __future__ import annotations

import json
import pathlib

import pytest

from controller.model import labels as L
from controller.model.live import StackRecord
from controller.swarm import parse

FIX = pathlib.Path(__file__).parent / "fixtures" / "swarm"


def load(name: str):
    return json.loads((FIX / name).read_text())


@pytest.mark.parametrize("text,expected", [
    ("2026-11-29T07:18:34Z", 1795936714.0),
    ("2026-11-29T07:18:34.391829919Z", 1795936714.391829919),
    ("2026-11-29T08:18:34.5+01:00", 1795936714.5),
    ("0001-01-01T00:00:00Z", 0.0),
    ("", 0.0),
    (None, 0.0),
    ("yesterday", 0.0),
])
def test_parse_time(text, expected):
    assert parse.parse_time(text) == pytest.approx(expected, abs=1e-6)


def test_parse_service_keeps_spec_and_previous_spec():
    svc = parse.parse_service(load("service_updated.json"))
    assert svc.id == "qxm3uc58d8kwjy4d5zm928gj8" and svc.name == "capfx1_web"
    assert svc.version == 74
    assert svc.labels[L.NAMESPACE] == "capfx1" and svc.labels[L.SPEC_HASH] == "x"
    assert svc.spec["TaskTemplate"]["ContainerSpec"]["Configs"][0]["ConfigName"] == "capfx1_app-2"
    assert svc.previous_spec["TaskTemplate"]["ContainerSpec"]["Configs"][0]["ConfigName"] == \
        "capfx1_app-1"
    assert svc.update_status["State"] == "updating"


def test_parse_tasks():
    tasks = sorted((parse.parse_task(t) for t in load("tasks.json")), key=lambda t: t.created_at)
    old, new = tasks
    assert (old.desired_state, old.state, old.slot) == ("shutdown", "running", 1)
    assert (new.desired_state, new.state, new.message) == ("ready", "ready", "prepared")
    assert new.image == "busybox:latest" and new.node_id == "2c2q3wl27ldoqta926h4x6vwh"
    assert new.created_at == pytest.approx(1795936718.409911463, abs=1e-6)
    assert new.updated_at >= new.created_at
    assert new.spec_version is None  # API 1.41 does not report it


def test_parse_task_error_and_spec_version():
    task = parse.parse_task({"ID": "t1", "DesiredState": "shutdown", "SpecVersion": {"Index": 9},
                             "Status": {"State": "failed", "Err": "task: non-zero exit (1)"}})
    assert task.error == "task: non-zero exit (1)" and task.spec_version == 9 and task.slot is None


def test_parse_objects_networks_nodes():
    cfg = parse.parse_object(load("configs.json")[0])
    assert cfg.name.startswith("capfx1_") and cfg.version > 0 and cfg.labels[L.NAMESPACE] == "capfx1"
    net = parse.parse_object(load("networks.json")[0])
    assert (net.id, net.name, net.version) == ("wq78lxppyvl7ylv30sjaiwe0n", "capfx1_default", 0)
    assert parse.parse_network(load("network_inspect.json")) == {
        "Id": "wq78lxppyvl7ylv30sjaiwe0n", "Name": "capfx1_default", "Scope": "swarm",
        "Driver": "overlay", "Labels": L.owner_labels("capfx1")}
    assert parse.parse_node(load("nodes.json")[0]) == {
        "ID": "2c2q3wl27ldoqta926h4x6vwh", "Hostname": "vm", "Role": "manager",
        "State": "ready", "Availability": "active"}


def test_group_stacks_separates_record():
    stacks = parse.group_stacks(load("services.json"), load("networks.json"),
                                load("configs.json"), load("secrets.json"))
    st = stacks["capfx1"]
    assert set(st.services) == {"capfx1_web"} and set(st.networks) == {"capfx1_default"}
    assert set(st.configs) == {"capfx1_app-1", "capfx1_app-2"}
    assert set(st.secrets) == {"capfx1_pw-1"}
    assert st.record == StackRecord(applied_revision="a" * 40, failed_reason="RolledBack")
    assert st.managed
    assert parse.group_stacks(load("services.json"), [], [], [], stacks=["other"]) == {}


def test_group_stacks_ignores_unlabelled_and_keeps_foreign():
    foreign = {"ID": "c9", "Version": {"Index": 1},
               "Spec": {"Name": "x_cfg", "Labels": {L.NAMESPACE: "x"}}}
    bare = {"ID": "c8", "Version": {"Index": 1}, "Spec": {"Name": "loose", "Labels": {}}}
    stacks = parse.group_stacks([], [], [foreign, bare], [])
    assert set(stacks) == {"x"} and not stacks["x"].managed


def test_record_labels_round_trip():
    rec = StackRecord(applied_revision="abc", failed_message="boom")
    lbls = parse.record_labels("s1", rec)
    assert lbls == {L.NAMESPACE: "s1", L.MANAGED_BY: L.MANAGED_BY_VALUE, L.STATE: "1",
                    L.APPLIED_REVISION: "abc", L.FAILED_MESSAGE: "boom"}
    assert parse.parse_record(lbls) == rec


def test_referenced_ids_include_previous_spec():
    svc = load("service_updated.json")
    assert parse.referenced_ids([svc], "Configs") == {"5b7tvu6hi2px5x89d8z1lkwz6",
                                                     "hls2uzdxymhmrc1ibcevvqfc8"}
    assert parse.referenced_ids([svc], "Secrets") == {"xblzz33fj22gd5yldol1gruml"}
    assert parse.referenced_ids([{"ID": "s", "Spec": {}}], "Configs") == set()


def test_scan_build_streams():
    image_id, lines, error = parse.scan_build_stream(load("build_ok_stream.json"))
    assert error is None and image_id.startswith("sha256:7ee348e3440f")
    assert lines[0] == "Step 1/4 : FROM busybox:latest" and lines[-1].startswith("Successfully tagged")
    image_id, lines, error = parse.scan_build_stream(load("build_error_stream.json"))
    assert image_id == "" and "returned a non-zero code: 1" in error
    assert lines[-1].startswith("ERROR: The command")


def test_scan_push_streams():
    digest, error = parse.scan_push_stream(load("push_ok_stream.json"))
    assert error is None
    assert digest == "sha256:5c2c3ee589b1cdcae367924dc92eb9227826d1ed15d0e5d7cae4303bb9db5fd4"
    # without the aux message the status line still gives the digest
    no_aux = [c for c in load("push_ok_stream.json") if "aux" not in c]
    assert parse.scan_push_stream(no_aux) == (digest, None)
    digest, error = parse.scan_push_stream(load("push_refused_stream.json"))
    assert digest == "" and "connection refused" in error
    assert parse.stream_error({"errorDetail": {"message": "denied"}}) == "denied"
