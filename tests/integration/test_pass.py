"""The pass at scale, on the real swarm, registry and git: many stacks at once, the digest cache,
the fast path, the proportional prune guard, and one stack's fault staying in that stack."""
from __future__ import annotations

import pytest

from tests.integration.keelson_app import make_app, tools_stack, versions, writes

pytestmark = pytest.mark.integration


def busy_stack(registry: str, replicas: int = 0) -> str:
    """An image-only stack (replicas 0 by default: control plane only, nothing to wait for)."""
    return f"""services:
  a:
    image: {registry}/library/busybox:latest
    command: ["sleep", "3600"]
    deploy:
      replicas: {replicas}
"""


def test_noop_pass_asks_the_registry_nothing_and_renders_nothing(engine, registry, manifest_repo,
                                                                  stack_names, tmp_path):
    names = [stack_names("np") for _ in range(6)]
    for n in names:
        manifest_repo.write(f"manifests/{n}/stack.yml", busy_stack(registry))
    manifest_repo.commit("six stacks")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, names, workers=3)
    first = app.sync()
    assert first.converged, app.store.snapshot()
    # six stacks share one tag: asked once, not once per service
    assert app.digests.lookups == 1

    lookups, wrote = app.digests.lookups, writes(app)
    again = app.sync()
    assert again.result == "noop" and again.converged
    assert app.digests.lookups == lookups, "a no-op pass inside the image interval asks nothing"
    assert writes(app) == wrote
    assert all(r.fast for r in again.runs.values()), "same revision, fresh digests: fast path"

    # a restarted Keelson seeds its cache from the digests live services pin: still no request
    restarted = make_app(manifest_repo.url, tmp_path / "wd2", registry, names, workers=3)
    out = restarted.sync()
    assert out.result == "noop" and out.converged, restarted.store.snapshot()
    assert restarted.digests.lookups == 0

    # a commit that names a new tag resolves it at once
    manifest_repo.write(f"manifests/{names[0]}/stack.yml",
                        busy_stack(registry).replace("busybox:latest", "busybox:latest\n    "
                                                     "environment: {V: '2'}"))
    manifest_repo.commit("env change in one stack")
    before = versions(engine, names[1])
    out = app.sync()
    assert out.converged and out.runs[names[0]].written and not out.runs[names[0]].fast
    assert versions(engine, names[1]) == before, "the other stacks are not touched"
    # a stack that reads only its own folder is not re-rendered by a commit to another stack
    assert all(out.runs[n].fast for n in names[1:])


def test_prune_guard_blocks_a_mass_removal_until_allowed(engine, registry, manifest_repo,
                                                         stack_names, tmp_path):
    names = [stack_names("pg") for _ in range(4)]
    for n in names:
        manifest_repo.write(f"manifests/{n}/stack.yml", busy_stack(registry))
    manifest_repo.commit("four stacks")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, names)
    assert app.sync().converged

    for n in names[1:]:
        manifest_repo.remove(f"manifests/{n}")
    manifest_repo.commit("an accident: three of four stacks deleted")
    out = app.sync()
    assert out.result == "failed" and not out.converged and out.removed == []
    assert "prune blocked" in out.error and "KEELSON_PRUNE_MAX_RATIO" in out.error
    st = app.store.snapshot()["stacks"]
    for n in names[1:]:
        assert versions(engine, n), f"{n} must still run"
        assert st[n]["reason"] == "PruneBlocked" and st[n]["sync_status"] == "OutOfSync"
        assert any(c["reason"] == "PruneBlocked" for c in st[n]["conditions"])
    assert st[names[0]]["sync_status"] == "Synced"
    failed = [s for s in app.metrics.registry.collect() if s.name == "keelson_reconcile"]
    assert any(s.labels.get("result") == "failed" and s.value >= 1
               for m in failed for s in m.samples if s.name == "keelson_reconcile_total")

    out = app.sync(allow_mass_prune=True)
    assert sorted(out.removed) == sorted(names[1:])
    for n in names[1:]:
        assert versions(engine, n) == {}


def test_one_stack_fault_stays_in_that_stack(engine, registry, manifest_repo, stack_names,
                                             tmp_path):
    good, deep = stack_names("ok"), stack_names("deep")
    bad_folder = "Bad_Folder"
    manifest_repo.write(f"manifests/{good}/stack.yml", tools_stack(registry))
    # nesting deep enough to exhaust Python's recursion limit while loading
    manifest_repo.write(f"manifests/{deep}/stack.yml",
                        "services:\n  a:\n    image: busybox\n    labels:\n      x: "
                        + "[" * 3000 + "]" * 3000 + "\n")
    manifest_repo.write(f"manifests/{bad_folder}/stack.yml", busy_stack(registry))
    manifest_repo.commit("one good, two bad")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [good, deep, bad_folder])
    out = app.sync()
    assert out.result == "partial"
    st = app.store.snapshot()["stacks"]
    assert st[good]["sync_status"] == "Synced", st[good]
    assert st[deep]["sync_status"] == "Failed"
    assert st[bad_folder]["sync_status"] == "Failed"
    assert "not a valid stack name" in st[bad_folder]["last_error"]
    assert versions(engine, deep) == {}


def test_deleting_every_stack_folder_is_blocked_not_a_failed_fetch(engine, registry, manifest_repo,
                                                                   stack_names, tmp_path):
    """git keeps no empty folder: a commit that deletes every stack deletes the manifests folder.
    That revision has no stacks, so the prune guard blocks it (nothing removed, PruneBlocked)."""
    names = [stack_names("all") for _ in range(2)]
    for n in names:
        manifest_repo.write(f"manifests/{n}/stack.yml", busy_stack(registry))
    manifest_repo.commit("two stacks")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, names)
    assert app.sync().converged
    for n in names:
        manifest_repo.remove(f"manifests/{n}")
    manifest_repo.commit("everything deleted")
    out = app.sync()
    assert out.result == "failed" and out.removed == [] and "prune blocked" in out.error
    st = app.store.snapshot()["stacks"]
    assert all(st[n]["reason"] == "PruneBlocked" and versions(engine, n) for n in names)


def test_a_stack_that_left_the_repo_before_it_ever_ran_leaves_the_status(
        engine, registry, manifest_repo, stack_names, tmp_path):
    """A stack that never deployed (broken YAML) and then left the repo is not reported any
    more; the stack that runs beside it is."""
    good, broken = stack_names("klg"), stack_names("klb")
    manifest_repo.write(f"manifests/{good}/docker-stack.yml", tools_stack(registry))
    manifest_repo.write(f"manifests/{broken}/docker-stack.yml", "services: [\n")
    manifest_repo.commit("one good, one broken")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [good, broken])
    app.sync()
    assert app.store.snapshot()["stacks"][broken]["sync_status"] == "Failed"
    history = app.store.snapshot()["stacks"][good]["history"]
    manifest_repo.remove(f"manifests/{broken}")
    manifest_repo.commit("broken one gone")
    app.sync()
    stacks = app.store.snapshot()["stacks"]
    assert broken not in stacks and stacks[good]["sync_status"] == "Synced", stacks
    # a commit that did not touch the good stack adds no history entry to it
    assert stacks[good]["history"] == history, stacks[good]["history"]
