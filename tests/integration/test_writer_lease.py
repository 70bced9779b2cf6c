"""Issue 11: never two writers. Two Keelson tasks of one instance against one real swarm: one
holds the writer lease (a label-only Swarm config written compare-and-swap), the other waits;
a holder that stops renewing is taken over after one TTL; a clean stop hands over at once."""
from __future__ import annotations

import time

import pytest

from controller.model.lease import lease_name
from controller.reconcile.lease import WriterLease
from controller.swarm.lease_store import LeaseStore
from tests.integration.keelson_app import make_app, tools_stack, versions, writes
from tests.integration.test_run_loop import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def store(engine, stack_names):
    instance = stack_names("kls")
    s = LeaseStore(engine.api, lease_name(instance), instance)
    yield s
    rec = s.read()
    if rec:
        s.remove(rec)


def test_swarm_refuses_a_stale_lease_write(store):
    """Compare-and-swap on the real engine: of two writers that read the same version, one wins."""
    assert store.create("a", time.time()) is True
    assert store.create("b", time.time()) is False  # the name is taken
    seen = store.read()
    assert store.write(seen, "a", time.time()) is True
    assert store.write(seen, "b", time.time()) is False  # "update out of sequence"
    assert store.read().holder == "a"


def test_waiter_takes_over_only_after_a_whole_ttl_unrenewed(store):
    a, b = WriterLease(store, ttl_s=3, holder="a"), WriterLease(store, ttl_s=3, holder="b")
    assert a.tick() and not b.tick() and b.other == "a"
    a.start_renewing()  # alive: b keeps waiting however long it looks
    end = time.monotonic() + 5
    while time.monotonic() < end:
        assert not b.tick()
        time.sleep(0.5)
    a.stop(release=False)  # a crash: no release, no more renewals
    wait_for("b to take over the lease", b.tick, timeout_s=20, every_s=0.5)
    assert store.read().holder == "b"
    assert not a.tick() and not a.held  # a learns it lost and stops writing
    with pytest.raises(Exception, match="held by b"):
        a.check()


def test_two_controllers_of_one_instance_write_once(engine, registry, manifest_repo, stack_names,
                                                    tmp_path):
    """Two running Keelsons, same repo (same instance): every commit is applied by exactly one of
    them; the other stays in standby; a clean stop hands the lease to the other at once."""
    stack = stack_names("kls")
    manifest_repo.write(f"manifests/{stack}/docker-stack.yml", tools_stack(registry))
    manifest_repo.commit("first")
    apps = [make_app(manifest_repo.url, tmp_path / f"w{i}", registry, [stack], interval_s=1,
                     min_pass_gap_s=0.2, lease_ttl_s=3) for i in (1, 2)]
    assert apps[0].settings.instance == apps[1].settings.instance
    for app in apps:
        app.start()
    try:
        wait_for("the stack deployed", lambda: versions(engine, stack).get(f"{stack}_ticker"), 90)
        holders = wait_for("one holder", lambda: [a for a in apps if a.lease.held], 30)
        assert len(holders) == 1
        holder, waiter = holders[0], [a for a in apps if a is not holders[0]][0]
        wait_for("standby reported", lambda: waiter.store.snapshot()["lease"]["standby"], 30)
        assert writes(waiter) == 0 and writes(holder) > 0

        before = versions(engine, stack)
        manifest_repo.write(f"manifests/{stack}/docker-stack.yml",
                            tools_stack(registry, replicas=2))
        manifest_repo.commit("scale ticker")
        wait_for("the scale applied", lambda: engine.services.get(f"{stack}_ticker")
                 .attrs["Spec"]["Mode"]["Replicated"]["Replicas"] == 2, 60)
        time.sleep(3)  # a few more passes of both: nothing written twice
        after = versions(engine, stack)
        assert after[f"{stack}_other"] == before[f"{stack}_other"]
        assert writes(waiter) == 0

        holder.stop()  # clean stop: releases the lease
        wait_for("the waiter takes over", lambda: waiter.lease.held, 20)
        manifest_repo.write(f"manifests/{stack}/docker-stack.yml",
                            tools_stack(registry, replicas=3))
        manifest_repo.commit("scale again")
        wait_for("the new holder deploys", lambda: engine.services.get(f"{stack}_ticker")
                 .attrs["Spec"]["Mode"]["Replicated"]["Replicas"] == 3, 60)
        assert writes(waiter) > 0
    finally:
        for app in apps:
            try:
                app.stop()
            except Exception:  # already stopped above
                pass
