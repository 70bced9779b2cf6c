"""Image updates that follow a tag (issue 9 part 2), on the real swarm and registry.

A tag re-pushed at the registry (no commit) rolls out within one image poll interval, health
gated; the update is reported with the tag and old -> new digest. A broken image under the tag is
rolled back, reported Stalled with its digest named, and not retried while the tag stays there.
``x-keelson: {follow_tags: false}`` keeps the pinned digest until a commit.
"""
from __future__ import annotations

import logging
import subprocess
import time
import uuid

import pytest

from tests.integration.keelson_app import make_app, versions, writes

pytestmark = pytest.mark.integration

GOOD = "FROM busybox:latest\nRUN touch /ok\nCMD [\"sh\", \"-c\", \"sleep 3600\"]\n"
BROKEN = "FROM busybox:latest\nCMD [\"sh\", \"-c\", \"sleep 3600\"]\n"  # no /ok: unhealthy

SERVICE = """    healthcheck:
      test: ["CMD-SHELL", "test -f /ok"]
      interval: 1s
      timeout: 1s
      retries: 1
      start_period: 0s
    deploy:
      replicas: 1
      update_config: {parallelism: 1, delay: 0s, monitor: 3s, failure_action: rollback}
      rollback_config: {parallelism: 0, delay: 0s, monitor: 1s}
"""


def push(registry: str, repo: str, dockerfile: str, tmp_path) -> str:
    """Build ``dockerfile`` (FROM busybox:latest) and push it as ``registry/repo:stable``.

    Returns:
        the digest the registry now holds for the tag (``sha256:...``).
    """
    ctx = tmp_path / uuid.uuid4().hex[:8]
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile + f"LABEL build={ctx.name}\n")
    ref = f"{registry}/{repo}:stable"
    for cmd in (["docker", "build", "-q", "-t", ref, str(ctx)], ["docker", "push", ref]):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    out = subprocess.run(["docker", "image", "inspect", "-f", "{{json .RepoDigests}}", ref],
                         capture_output=True, text=True, check=True).stdout
    return out.split("@", 1)[1].split('"', 1)[0]


def image_of(engine, service: str) -> str:
    return engine.services.get(service).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def status(app, stack: str) -> dict:
    return app.store.snapshot()["stacks"][stack]


def sync_until(app, done, deadline_s: float = 90.0) -> list:
    """Run passes until ``done()`` (a deadline only guards against a hang).

    Returns:
        every pass's PassResult.
    """
    passes = []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        passes.append(app.sync())
        if done():
            return passes
        time.sleep(0.5)
    raise AssertionError(f"not reached before the deadline: {app.store.snapshot()}")


def test_moved_tag_rolls_out_and_a_broken_one_is_rolled_back_once(
        engine, registry, manifest_repo, stack_names, tmp_path, caplog):
    """Good re-push: rolled within the image interval, reported tag old -> new. Broken re-push:
    rolled back, Stalled naming the digest, not retried while the tag stays."""
    name = stack_names("ksoft")
    repo = f"keelson-test/{name}"
    first = push(registry, repo, GOOD, tmp_path)
    manifest_repo.write(f"manifests/{name}/stack.yml",
                        f"services:\n  app:\n    image: {registry}/{repo}:stable\n" + SERVICE)
    manifest_repo.commit("image-only")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [name],
                   image_poll_interval_s=2)
    assert app.sync().converged, app.store.snapshot()
    assert image_of(engine, f"{name}_app").endswith(first)

    second = push(registry, repo, GOOD, tmp_path)
    caplog.set_level(logging.INFO, logger="keelson")
    passes = sync_until(app, lambda: image_of(engine, f"{name}_app").endswith(second))
    updates = [u for p in passes for u in p.runs[name].image_updates]
    assert [(u.service, u.tag, u.old, u.new) for u in updates] == [
        ("app", f"{registry}/{repo}:stable", first, second)]
    assert status(app, name)["sync_status"] == "Synced"
    entry = next(h for h in status(app, name)["history"] if h["result"] == "ImageUpdated")
    assert (f"service=app tag={registry}/{repo}:stable old={first} new={second} "
            "result=Succeeded") == entry["message"]
    assert any(f"stack={name} service=app image update tag={registry}/{repo}:stable "
               f"old={first} new={second}" in r.getMessage() for r in caplog.records)

    broken = push(registry, repo, BROKEN, tmp_path)
    sync_until(app, lambda: status(app, name)["sync_status"] in ("Failed", "Stalled"))
    st = status(app, name)
    assert st["reason"] == "RolledBack" and broken in st["last_error"], st
    assert image_of(engine, f"{name}_app").endswith(second)  # rolled back
    assert any(h["result"] == "ImageUpdateFailed" and f"new={broken}" in h["message"]
               for h in st["history"]), st["history"]

    # the broken digest is remembered: later passes (past the image interval) do not retry it
    v, w = versions(engine, name), writes(app)
    lookups = app.digests.lookups
    sync_until(app, lambda: app.digests.lookups > lookups)  # the registry was asked again
    app.sync()
    st = status(app, name)
    assert st["sync_status"] == "Stalled" and broken in st["last_error"], st
    assert versions(engine, name) == v and writes(app) == w


def test_follow_tags_false_keeps_the_pinned_digest_until_a_commit(
        engine, registry, manifest_repo, stack_names, tmp_path):
    """The tag moves; the stack keeps its digest over several passes; a commit re-resolves."""
    name = stack_names("ksopin")
    repo = f"keelson-test/{name}"
    first = push(registry, repo, GOOD, tmp_path)
    body = (f"x-keelson:\n  follow_tags: false\nservices:\n  app:\n"
            f"    image: {registry}/{repo}:stable\n" + SERVICE)
    manifest_repo.write(f"manifests/{name}/stack.yml", body)
    manifest_repo.commit("pinned")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [name],
                   image_poll_interval_s=0)  # the registry would be asked on every pass
    assert app.sync().converged, app.store.snapshot()
    assert image_of(engine, f"{name}_app").endswith(first)

    second = push(registry, repo, GOOD, tmp_path)
    w = writes(app)
    for _ in range(3):
        assert app.sync().converged, app.store.snapshot()
    assert image_of(engine, f"{name}_app").endswith(first)
    assert writes(app) == w and status(app, name)["sync_status"] == "Synced"

    manifest_repo.write(f"manifests/{name}/stack.yml", body + "    environment: {A: b}\n")
    manifest_repo.commit("a commit: the tag is resolved again")
    assert app.sync().converged, app.store.snapshot()
    assert image_of(engine, f"{name}_app").endswith(second)
