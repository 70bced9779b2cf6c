"""Stalled means "until an input changes" (issue 8, kind 7), on the real swarm and registry.

A stack whose rollout failed is not applied again while its inputs stay the same; a change to
any input retries it, even outside the stack folder: an env_file in ``shared/``, a Dockerfile
outside its build context (which also changes the image tag, so the image is rebuilt), or a tag
re-pushed to the registry.
"""
from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid

import pytest

from tests.integration.keelson_app import make_app, versions, writes

pytestmark = pytest.mark.integration

GOOD = "FROM busybox:latest\nRUN touch /ok\nCMD [\"sh\", \"-c\", \"sleep 3600\"]\n"
BROKEN = "FROM busybox:latest\nCMD [\"sh\", \"-c\", \"sleep 3600\"]\n"  # no /ok

ROLLOUT = """    healthcheck:
      test: ["CMD-SHELL", "test -f /ok || test \\"$$HEALTH\\" = ok"]
      interval: 1s
      timeout: 1s
      retries: 1
      start_period: 0s
    deploy:
      replicas: 1
      update_config: {parallelism: 1, delay: 0s, monitor: 4s, failure_action: rollback}
      rollback_config: {parallelism: 0, delay: 0s, monitor: 1s}
"""

BUILT = """services:
  app:
    build:
      context: ../../shared/app
      dockerfile: ../docker/app.Dockerfile
    env_file: ../../shared/app.env
""" + ROLLOUT


def image_of(engine, service: str) -> str:
    return engine.services.get(service).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def status(app, stack: str) -> dict:
    return app.store.snapshot()["stacks"][stack]


def test_fix_outside_the_stack_folder_retries(engine, registry, manifest_repo, stack_names,
                                              tmp_path):
    """Dockerfile outside its context broken -> new tag, rebuilt, rolled back: Failed. Same
    inputs: Stalled, nothing written. An env_file in shared/ changed: retried and Synced."""
    name = stack_names("stin")
    manifest_repo.write(f"manifests/{name}/stack.yml", BUILT)
    manifest_repo.write("shared/app/hello.txt", "hello\n")
    manifest_repo.write("shared/app.env", "HEALTH=unknown\n")
    manifest_repo.write("shared/docker/app.Dockerfile", GOOD)
    manifest_repo.commit("good")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [name])
    assert app.sync().converged, app.store.snapshot()
    good_image = image_of(engine, f"{name}_app")

    manifest_repo.write("shared/docker/app.Dockerfile", BROKEN)
    bad = manifest_repo.commit("broken Dockerfile, outside the build context")
    out = app.sync()
    assert not out.converged
    st = status(app, name)
    # Swarm's own rollback may pause when a task fails during it on a loaded machine ("network
    # sandbox does not exist"): the spec is back on the good image either way
    assert (st["sync_status"], st["reason"]) in (("Failed", "RolledBack"),
                                                 ("Failed", "RollbackPaused")), st
    assert st["last_error"].startswith(f"failed at revision {bad[:12]}: {name}_app: "), st
    # the Dockerfile's change made a new tag: it was built and tried, then rolled back
    assert image_of(engine, f"{name}_app") == good_image
    with urllib.request.urlopen(f"http://{registry}/v2/{name}_app/tags/list", timeout=10) as r:
        tags = sorted(json.load(r)["tags"])
    good_tag = good_image.split("@")[0].rsplit(":", 1)[1]
    assert len(tags) == 2 and good_tag in tags, (tags, good_tag)
    assert all(t.startswith(good_tag.split("-")[0]) for t in tags)  # same context revision

    v, w = versions(engine, name), writes(app)
    app.sync()
    st = status(app, name)
    assert st["sync_status"] == "Stalled" and bad[:12] in st["last_error"], st
    assert versions(engine, name) == v and writes(app) == w

    manifest_repo.write("shared/app.env", "HEALTH=ok\n")  # outside the stack folder
    fixed = manifest_repo.commit("fix in shared/app.env")
    out = app.sync()
    assert out.converged, app.store.snapshot()
    st = status(app, name)
    assert (st["sync_status"], st["last_applied_revision"]) == ("Synced", fixed), st
    env = engine.services.get(f"{name}_app").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert "HEALTH=ok" in env


def push_image(registry: str, repo: str, dockerfile: str, tmp_path) -> str:
    """Build ``dockerfile`` and push it as ``registry/repo:v1``; returns the pushed reference."""
    ctx = tmp_path / uuid.uuid4().hex[:8]
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    ref = f"{registry}/{repo}:v1"
    for cmd in (["docker", "build", "-q", "-t", ref, str(ctx)], ["docker", "push", ref]):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    return ref


def test_tag_repushed_to_the_registry_retries(engine, registry, manifest_repo, stack_names,
                                              tmp_path):
    """An image-only service whose tag points at a broken image: Failed, then Stalled. The
    same tag re-pushed with a good image (a new digest, no commit): retried and Synced."""
    name = stack_names("stag")
    repo = f"keelson-test/{name}"
    ref = push_image(registry, repo, "FROM busybox:latest\nCMD [\"sh\", \"-c\", \"sleep 3600\"]\n"
                     "LABEL version=one\nRUN touch /ok\n", tmp_path)
    manifest_repo.write(f"manifests/{name}/stack.yml",
                        f"services:\n  app:\n    image: {ref}\n" + ROLLOUT)
    manifest_repo.commit("image-only")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [name],
                   image_poll_interval_s=0)  # ask the registry on every pass
    assert app.sync().converged, app.store.snapshot()

    push_image(registry, repo, BROKEN + "LABEL version=two\n", tmp_path)
    out = app.sync()  # no commit: the tag now resolves to another digest
    assert not out.converged
    assert (status(app, name)["sync_status"], status(app, name)["reason"]) == ("Failed", "RolledBack")
    w = writes(app)
    app.sync()
    assert status(app, name)["sync_status"] == "Stalled" and writes(app) == w

    push_image(registry, repo, GOOD + "LABEL version=three\n", tmp_path)
    out = app.sync()
    assert out.converged, app.store.snapshot()
    assert status(app, name)["sync_status"] == "Synced"
