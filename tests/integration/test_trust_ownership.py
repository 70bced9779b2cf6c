"""Ownership you can trust (issue 7, item 4), on the real swarm, registry and git repos.

A hand-deployed stack of the same name is refused with its owner named and left untouched, then
adopted with ``x-keelson: {adopt: true}``; a second Keelson instance sharing a stack name is
refused and the first one's record stays as it was; Keelson's own stack is never changed nor
pruned; Keelson's own service is detected from a real task container.
"""
from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from controller.errors import OwnershipError
from controller.model import labels as L
from controller.model.live import StackRecord
from controller.swarm.identity import detect_identity
from tests.integration.keelson_app import make_app, tools_stack, versions

pytestmark = pytest.mark.integration


def hand_stack(registry: str) -> str:
    return f"""version: "3.8"
services:
  ticker:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "sleep 3600"]
"""


def objects(engine, stack: str) -> dict:
    """Every object in ``stack``'s namespace: kind -> {name: (version, labels)}."""
    flt = {"label": f"{L.NAMESPACE}={stack}"}
    return {
        "services": {s.name: (s.attrs["Version"]["Index"], s.attrs["Spec"].get("Labels"))
                     for s in engine.services.list(filters=flt)},
        "networks": {n.name: (n.id, n.attrs.get("Labels")) for n in engine.networks.list(filters=flt)},
        "configs": {c.name: (c.attrs["Version"]["Index"], c.attrs["Spec"].get("Labels"))
                    for c in engine.configs.list(filters=flt)},
        "secrets": {c.name: (c.attrs["Version"]["Index"], c.attrs["Spec"].get("Labels"))
                    for c in engine.secrets.list(filters=flt)},
    }


def test_hand_deployed_stack_is_refused_untouched_then_adopted_on_opt_in(
        engine, registry, manifest_repo, stack_names, tmp_path):
    hand, other = stack_names("hand"), stack_names("ok")
    compose = tmp_path / "hand.yml"
    compose.write_text(hand_stack(registry))
    subprocess.run(["docker", "stack", "deploy", "-c", str(compose), hand], check=True,
                   capture_output=True)
    before = objects(engine, hand)
    assert before["services"] and before["networks"]

    manifest_repo.write(f"manifests/{hand}/stack.yml", tools_stack(registry))
    manifest_repo.write(f"manifests/{other}/stack.yml", tools_stack(registry))
    manifest_repo.commit("same name as a hand-deployed stack")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [hand, other])
    out = app.sync()

    st = app.store.get(hand)
    assert st.sync_status == "Failed" and st.reason == "NotOwned", st
    assert f"service {hand}_ticker" in st.last_error
    assert "owned by hand-deployed / docker stack deploy" in st.last_error
    assert "x-keelson: {adopt: true}" in st.last_error
    assert objects(engine, hand) == before  # not one write: no update, no record, no network
    assert app.store.get(other).sync_status == "Synced"  # the other stack synced
    assert out.result == "partial"

    # a plan says the same and writes nothing
    plan = app.sync(dry_run=True)
    assert plan.runs[hand].error is not None and objects(engine, hand) == before

    # the stack opts in: Keelson adopts the hand-deployed service
    manifest_repo.write(f"manifests/{hand}/stack.yml",
                        tools_stack(registry) + "x-keelson:\n  adopt: true\n")
    manifest_repo.commit("adopt it")
    out = app.sync()
    assert app.store.get(hand).sync_status == "Synced", app.store.snapshot()
    svc = engine.services.get(f"{hand}_ticker").attrs["Spec"]["Labels"]
    assert svc[L.INSTANCE] == app.settings.instance and svc[L.MANAGED_BY] == "keelson"
    assert engine.configs.list(filters={"name": L.state_record_name(hand)})


def test_second_instance_sharing_a_stack_name_is_refused_and_the_record_kept(
        engine, registry, manifest_repo, stack_names, tmp_path):
    shared, mine = stack_names("shared"), stack_names("mine")
    manifest_repo.write(f"manifests/{shared}/stack.yml", tools_stack(registry))
    manifest_repo.write(f"manifests/{mine}/stack.yml", tools_stack(registry))
    manifest_repo.commit("two stacks")
    tag = uuid.uuid4().hex[:6]
    first = make_app(manifest_repo.url, tmp_path / "wd1", registry, [shared],
                     instance=f"t-first-{tag}")
    assert first.sync().converged, first.store.snapshot()
    before = objects(engine, shared)
    record_before = engine.configs.get(L.state_record_name(shared)).attrs

    second = make_app(manifest_repo.url, tmp_path / "wd2", registry, [shared, mine],
                      instance=f"t-second-{tag}", adopt=True)
    second.sync()
    st = second.store.get(shared)
    assert st.reason == "NotOwned", st
    assert f"owned by Keelson instance t-first-{tag}" in st.last_error
    assert f"KEELSON_ADOPT_INSTANCES=t-first-{tag}" in st.last_error
    assert second.store.get(mine).sync_status == "Synced"
    assert objects(engine, shared) == before
    assert engine.configs.get(L.state_record_name(shared)).attrs == record_before

    # the engine adapter itself never overwrites nor removes another instance's record
    with pytest.raises(OwnershipError, match=f"belongs to Keelson instance t-first-{tag}"):
        second.client.write_record(shared, StackRecord(applied_revision="x" * 40,
                                                       instance=f"t-second-{tag}"))
    assert second.client.remove_record(shared, f"t-second-{tag}") is False
    assert engine.configs.get(L.state_record_name(shared)).attrs == record_before

    # the stack leaves the second instance's repo view: it prunes nothing of the first's
    manifest_repo.remove(f"manifests/{shared}")
    manifest_repo.commit("drop shared")
    out = second.sync()
    assert shared not in out.removed
    assert objects(engine, shared) == before
    assert engine.configs.get(L.state_record_name(shared)).attrs == record_before

    # the operator hands the stack over explicitly
    manifest_repo.write(f"manifests/{shared}/stack.yml", tools_stack(registry))
    manifest_repo.commit("shared again")
    third = make_app(manifest_repo.url, tmp_path / "wd3", registry, [shared],
                     instance=f"t-second-{tag}", adopt_instances=(f"t-first-{tag}",))
    assert third.sync().converged, third.store.snapshot()
    rec = engine.configs.get(L.state_record_name(shared)).attrs["Spec"]["Labels"]
    assert rec[L.INSTANCE] == f"t-second-{tag}"


def test_own_stack_is_never_changed_nor_pruned(engine, registry, manifest_repo, stack_names,
                                               tmp_path):
    own, other = stack_names("own"), stack_names("ok")
    manifest_repo.write(f"manifests/{own}/stack.yml", tools_stack(registry))
    manifest_repo.write(f"manifests/{other}/stack.yml", tools_stack(registry))
    manifest_repo.commit("two")
    tag = uuid.uuid4().hex[:6]
    plain = make_app(manifest_repo.url, tmp_path / "wd1", registry, [own, other],
                     instance=f"t-self-{tag}")
    assert plain.sync().converged
    before = objects(engine, own)

    # the same controller, now knowing it runs in `own`: never touches it, even with adopt
    manifest_repo.write(f"manifests/{own}/stack.yml", tools_stack(registry, replicas=2)
                        + "x-keelson: {adopt: true}\n")
    manifest_repo.commit("scale own")
    app = make_app(manifest_repo.url, tmp_path / "wd2", registry, [own, other],
                   instance=f"t-self-{tag}", self_stack=own, adopt=True)
    app.sync()
    st = app.store.get(own)
    assert st.reason == "NotOwned" and "the stack Keelson itself runs in" in st.last_error
    assert objects(engine, own) == before

    manifest_repo.remove(f"manifests/{own}")
    manifest_repo.commit("own left the repo")
    out = app.sync()
    assert own not in out.removed and objects(engine, own) == before
    assert versions(engine, other) and app.store.get(other).sync_status == "Synced"


def test_own_service_is_detected_from_its_task_container(engine, registry, stack_names,
                                                           tmp_path):
    stack = stack_names("ctl")
    secret = engine.secrets.create(name=f"{stack}_token", data=b"s3cret",
                                   labels={L.NAMESPACE: stack})
    net = engine.networks.create(f"{stack}_net", driver="overlay", labels={L.NAMESPACE: stack})
    import docker.types
    svc = engine.services.create(
        f"{registry}/library/busybox:latest", ["sh", "-c", "sleep 3600"], name=f"{stack}_ctl",
        labels={L.NAMESPACE: stack}, container_labels={L.NAMESPACE: stack},
        secrets=[docker.types.SecretReference(secret.id, secret.name)], networks=[net.id])
    deadline = time.monotonic() + 60
    cid = ""
    while not cid and time.monotonic() < deadline:
        for t in svc.tasks():
            if t["Status"]["State"] == "running":
                cid = t["Status"]["ContainerStatus"]["ContainerID"]
        time.sleep(0.5)
    assert cid, svc.tasks()
    ident = detect_identity(engine.api, hostname=cid[:12], mountinfo_path="/nonexistent")
    assert ident.stack == stack and ident.service == f"{stack}_ctl"
    assert ident.secrets == {f"{stack}_token"} and ident.networks == {f"{stack}_net"}
    # a service with its own hostname: found through the task's /proc/self/mountinfo
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_bytes(engine.containers.get(cid).exec_run(
        ["cat", "/proc/self/mountinfo"]).output)
    assert detect_identity(engine.api, hostname="custom-hostname",
                           mountinfo_path=str(mountinfo)).stack == stack
    # this test process is not a swarm task: the host's mountinfo lists other containers'
    # mounts, which must not make it look like one
    assert detect_identity(engine.api, hostname="no-such-container-x").stack == ""
