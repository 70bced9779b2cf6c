"""Drift detection (pure, issue 8.4): desired spec + live spec -> field paths, on fixtures
recorded from a real Engine 20.10 (tests/unit/fixtures/drift/<case>/{desired,live,case}.json)."""
import json
import pathlib

import pytest

from controller.deploy.diff import plan_stack, refuse_replacements
from controller.deploy.drift import (label_drift, network_drift, remaining_drift,
                                     resolve_options, service_drift, volume_drift)
from controller.errors import ImmutableChangeError
from controller.model import (DesiredNetwork, DesiredService, DesiredStack, LiveObject,
                              LiveService, LiveStack)
from controller.model import labels as L
from controller.model.drift import DriftKind, DriftMode, StackOptions
from controller.swarm.parse import parse_object

CASES = pathlib.Path(__file__).parent / "fixtures" / "drift"


def _load(case):
    d = CASES / case
    return (json.loads((d / "desired.json").read_text()), json.loads((d / "live.json").read_text()),
            json.loads((d / "case.json").read_text()))


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir()))
def test_fixture(case):
    desired, live, meta = _load(case)
    if meta["kind"] == "network":
        got = network_drift(desired, parse_object(live))
    else:
        got = service_drift(desired, live, meta.get("networks"))
    assert list(got) == meta["expected"], meta["note"]


def test_keelson_labels_and_config_ids_are_never_drift():
    desired, live, meta = _load("in-sync-after-apply")
    live["Labels"][L.REVISION] = "another"
    desired["TaskTemplate"]["ContainerSpec"]["Configs"] = [
        {"ConfigName": "c", "ConfigID": "", "File": {"Name": "c"}}]
    live["TaskTemplate"]["ContainerSpec"]["Configs"] = [
        {"ConfigName": "c", "ConfigID": "abc", "File": {"Name": "c"}}]
    assert service_drift(desired, live, meta["networks"]) == ()


def test_default_written_in_git_is_no_drift():
    desired, live, meta = _load("in-sync-after-apply")
    desired["UpdateConfig"]["Order"] = "stop-first"
    desired["TaskTemplate"]["ContainerSpec"]["Isolation"] = "default"
    assert service_drift(desired, live, meta["networks"]) == ()


def test_volume_and_label_drift():
    vol = {"Name": "s_data", "Driver": "local", "DriverOpts": {"type": "tmpfs"}}
    live = LiveObject("s_data", "s_data", spec={"Driver": "local", "Options": {}})
    assert volume_drift(vol, live) == ("Options.type",)
    assert label_drift({"a": "1", L.INSTANCE: "x"}, {"a": "2", "b": "3"}) == ("Labels.a", "Labels.b")


def _stack(instance="me"):
    desired, live, meta = _load("hand-update")
    owned = {**L.owner_labels("s"), L.INSTANCE: instance, L.SPEC_HASH: "h"}
    live["Labels"] = dict(live["Labels"], **owned)
    name = desired["Name"]
    d = DesiredStack("s", services={name: DesiredService(name, "app", desired)})
    lv = LiveStack("s", services={name: LiveService("id", name, 1, live["Labels"], live)})
    return d, lv, name, meta["networks"]


def test_plan_heals_or_reports():
    d, lv, name, nets = _stack()
    healed = plan_stack(d, lv, {name: "h"}, "me", network_names=nets)
    ch = [c for c in healed.changes if c.name == name][0]
    assert ch.action == "update" and ch.reason.startswith("drift: EndpointSpec.Ports, ")
    assert remaining_drift(healed) == []
    reported = plan_stack(d, lv, {name: "h"}, "me", network_names=nets, drift_mode=DriftMode.REPORT)
    ch = [c for c in reported.changes if c.name == name][0]
    assert ch.action == "unchanged" and ch.reason.startswith("out of sync: ")
    assert [x.kind for x in remaining_drift(reported)] == [DriftKind.SERVICE]


def test_changed_hash_is_a_git_change_not_drift():
    d, lv, name, nets = _stack()
    p = plan_stack(d, lv, {name: "new"}, "me", network_names=nets)
    assert p.drift == [] and [c.reason for c in p.changes if c.name == name] == ["spec changed"]


def test_unmanaged_service_is_reported_not_removed():
    d, lv, name, nets = _stack()
    lv.services["s_manual"] = LiveService("id2", "s_manual", 1, {L.NAMESPACE: "s"}, {})
    p = plan_stack(d, lv, {name: "h"}, "me", network_names=nets)
    assert [(x.kind, x.name) for x in remaining_drift(p)] == [(DriftKind.UNMANAGED, "s_manual")]
    assert "s_manual" not in {c.name for c in p.changes}


def test_network_replace_is_refused_unless_allowed():
    _, live, _ = _load("network-immutable-fields")
    desired, _, _ = _load("network-in-sync")
    net = parse_object(live)
    net.labels[L.INSTANCE] = "me"
    d = DesiredStack("s", networks={net.name: DesiredNetwork(net.name, desired)})
    p = plan_stack(d, LiveStack("s", networks={net.name: net}), {}, "me")
    ch = p.changes[0]
    assert (ch.kind, ch.action, ch.reason) == (
        "network", "replace", "immutable: Attachable, Labels.tier, Options.encrypted")
    with pytest.raises(ImmutableChangeError) as err:
        refuse_replacements(p, frozenset())
    assert f"network {net.name}: Attachable, Labels.tier, Options.encrypted cannot change" in str(err.value)
    assert "x-keelson: {recreate: [networks]}" in str(err.value)
    refuse_replacements(p, frozenset({"networks"}))  # allowed: no error


def test_options_resolution():
    assert resolve_options(StackOptions(), "report", ()).drift == DriftMode.REPORT
    opts = resolve_options(StackOptions(DriftMode.HEAL, frozenset({"networks"})), "report", ())
    assert opts.drift == DriftMode.HEAL and opts.recreate == {"networks"}
