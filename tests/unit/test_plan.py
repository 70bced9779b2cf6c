"""Plan cases (pure): desired + live -> create / update / unchanged / remove."""
from controller.deploy.diff import plan_stack, prune_changes
from controller.model import (DesiredConfig, DesiredNetwork, DesiredService, DesiredStack,
                              LiveObject, LiveService, LiveStack)
from controller.model import labels as L

OWNED = {L.NAMESPACE: "s", L.MANAGED_BY: "keelson", L.INSTANCE: "me"}


def svc_spec(image="img@sha256:1", replicas=1, env=()):
    return {"Name": "s_web", "Labels": dict(OWNED),
            "TaskTemplate": {"ContainerSpec": {"Image": image, "Env": list(env)}},
            "Mode": {"Replicated": {"Replicas": replicas}}}


def desired(**kw):
    d = DesiredStack("s")
    d.services["s_web"] = DesiredService("s_web", "web", svc_spec(**kw))
    d.networks["s_default"] = DesiredNetwork("s_default", {"Name": "s_default", "Driver": "overlay",
                                                           "Labels": L.owner_labels("s")})
    d.configs["s_conf-abc"] = DesiredConfig("s_conf-abc", "s_conf", b"x",
                                            labels=L.owner_labels("s"))
    return d


def live(hash_="h1", **kw):
    labels = dict(OWNED, **{L.SPEC_HASH: hash_})
    spec = svc_spec(**kw)
    spec["Labels"] = labels
    return LiveStack("s", services={"s_web": LiveService("id1", "s_web", 10, labels, spec)},
                     networks={"s_default": LiveObject("n1", "s_default", dict(OWNED),
                                                       spec={"Driver": "overlay"})},
                     configs={"s_conf-abc": LiveObject("c1", "s_conf-abc", dict(OWNED)),
                              "s_conf-old": LiveObject("c0", "s_conf-old", dict(OWNED))})


def actions(plan):
    return {(c.kind, c.name): c.action for c in plan.changes}


def test_new_stack_creates_everything():
    p = plan_stack(desired(), None, {"s_web": "h1"}, "me")
    assert actions(p) == {("network", "s_default"): "create", ("config", "s_conf-abc"): "create",
                          ("service", "s_web"): "create"}


def test_same_hash_is_unchanged_and_old_config_pruned():
    p = plan_stack(desired(), live(), {"s_web": "h1"}, "me")
    a = actions(p)
    assert a[("service", "s_web")] == "unchanged"
    assert a[("config", "s_conf-old")] == "remove"
    assert a[("network", "s_default")] == "unchanged"


def test_changed_hash_updates():
    p = plan_stack(desired(), live(hash_="h0"), {"s_web": "h1"}, "me")
    assert actions(p)[("service", "s_web")] == "update"


def test_drift_by_hand_is_reverted():
    p = plan_stack(desired(replicas=3), live(replicas=1), {"s_web": "h1"}, "me")
    ch = [c for c in p.changes if c.name == "s_web"][0]
    assert ch.action == "update" and ch.reason == "drift: Mode.Replicated.Replicas"
    assert [str(d) for d in p.drift] == ["service s_web: Mode.Replicated.Replicas"]


def test_objects_not_owned_are_never_pruned():
    lv = live()
    lv.services["s_manual"] = LiveService("id2", "s_manual", 1, {L.NAMESPACE: "s"}, {})
    names = {c.name for c in prune_changes(None, lv, "me")}
    assert "s_manual" not in names and "s_web" in names


def test_objects_of_another_keelson_are_never_pruned():
    lv = live()
    other = dict(OWNED, **{L.INSTANCE: "other"})
    lv.configs["s_conf-theirs"] = LiveObject("c9", "s_conf-theirs", other)
    assert "s_conf-theirs" not in {c.name for c in prune_changes(None, lv, "me")}
    assert lv.owned_by("me")


def test_unmanaged_service_is_adopted():
    lv = live()
    lv.services["s_web"].labels.pop(L.MANAGED_BY)
    p = plan_stack(desired(), lv, {"s_web": "h1"}, "me")
    assert actions(p)[("service", "s_web")] == "update"
