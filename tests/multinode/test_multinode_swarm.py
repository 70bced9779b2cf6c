"""Keelson on a real 3-node swarm (one manager, two workers, each its own dockerd).

What a single-node swarm cannot show: Keelson builds on the manager, pushes to a registry the
workers reach, pins the digest, and the workers pull that pinned image; placement (spread,
max_replicas_per_node, a node.role constraint) really places tasks on different nodes; a
health failure is rolled back on every node, and the next good commit reaches every node.
"""
from __future__ import annotations

import collections
import json
import os
import time
import urllib.request
import uuid

import docker
import pytest

from controller.app import App
from controller.config import Settings
from controller.swarm.client import SwarmClient
from tests.integration.keelson_app import BROKEN_DOCKERFILE  # the same never-healthy image

pytestmark = [pytest.mark.integration, pytest.mark.multinode]

WAIT_S = 120  # bound on every poll below

DOCKERFILE = """FROM busybox:latest
ARG KEELSON_REVISION=unknown
RUN mkdir -p /www && echo "{page} revision ${{KEELSON_REVISION}}" > /www/index.html
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""



def stack_yml(registry: str) -> str:
    return f"""services:
  web:
    build: ./site
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 1s
      retries: 2
      start_period: 1s
    deploy:
      replicas: 6
      placement:
        max_replicas_per_node: 2
        preferences:
          - spread: node.id
      update_config:
        parallelism: 2
        delay: 0s
        monitor: 5s
        failure_action: rollback
      rollback_config:
        parallelism: 0
        delay: 0s
        monitor: 1s
  ctl:
    image: {registry}/library/busybox:latest
    command: ["sleep", "3600"]
    deploy:
      replicas: 2
      placement:
        constraints: [node.role == manager]
"""


_T0 = time.monotonic()


def phase(msg: str) -> None:
    """Progress line with seconds since import (shown with -s, and on failure)."""
    print(f"[multinode +{time.monotonic() - _T0:6.1f}s] {msg}", flush=True)


def wait_until(what: str, probe, timeout_s: float = WAIT_S):
    """Poll ``probe()`` until it returns a truthy value; fail with its last value after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        try:
            last = probe()
        except docker.errors.APIError as exc:  # a container that went away mid-check
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")
        time.sleep(1)


def service_image(cluster, name: str) -> str:
    return cluster.manager.services.get(name).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def running_per_node(cluster, service: str) -> collections.Counter:
    """Node hostname -> running tasks of ``service``, as the manager sees them."""
    names = {n.id: n.attrs["Description"]["Hostname"] for n in cluster.manager.nodes.list()}
    tasks = cluster.manager.services.get(service).tasks(filters={"desired-state": "running"})
    return collections.Counter(names[t["NodeID"]] for t in tasks if t["Status"]["State"] == "running")


def node_view(cluster, service: str) -> dict:
    """Per node, as that node's own dockerd sees it: (image, page) of each running container."""
    view = {}
    for node, engine in cluster.engines.items():
        rows = []
        for c in engine.containers.list(filters={"label": f"com.docker.swarm.service.name={service}"}):
            page = c.exec_run(["wget", "-qO-", "http://127.0.0.1:8080/"]).output.decode().strip()
            rows.append((c.attrs["Config"]["Image"], page))
        view[node] = sorted(rows)
    return view


def all_nodes_serve(cluster, service: str, image: str, page: str):
    """True once every node runs exactly 2 containers of ``service``, all of ``image``, all
    answering ``page`` (returns the view), else False."""
    view = node_view(cluster, service)
    ok = all(len(rows) == 2 and all(img == image and p == page for img, p in rows)
             for rows in view.values())
    return view if ok else False


def registry_digest(registry: str, repo: str, tag: str) -> str:
    req = urllib.request.Request(f"http://{registry}/v2/{repo}/manifests/{tag}", method="HEAD",
                                 headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.headers["Docker-Content-Digest"]


def main_engine_services(stack: str) -> list:
    """Services of ``stack`` on the machine's main dockerd (read only; [] if it is not up)."""
    try:
        main = docker.DockerClient(base_url="unix:///var/run/docker.sock", timeout=10)
    except docker.errors.DockerException:
        return []
    try:
        return [s.name for s in main.services.list(filters={"label": f"com.docker.stack.namespace={stack}"})]
    except docker.errors.APIError:
        return []
    finally:
        main.close()


def test_build_pin_spread_rollback_and_constraint_on_three_nodes(cluster, manifest_repo, tmp_path):
    reg = cluster.registry
    stack = f"mn{uuid.uuid4().hex[:6]}"
    web, ctl = f"{stack}_web", f"{stack}_ctl"
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_yml(reg))
    manifest_repo.write(f"manifests/{stack}/site/Dockerfile", DOCKERFILE.format(page="v1"))
    sha1 = manifest_repo.commit("v1")

    # Keelson talks to the manager m1 only, through an explicit client (DOCKER_HOST untouched)
    settings = Settings(repo=manifest_repo.url, registry=reg, workdir=str(tmp_path / "wd"),
                        listen="", stacks=(stack,), rollout_timeout_s=240, pending_timeout_s=90)
    client = SwarmClient(docker.DockerClient(base_url=cluster.sockets["m1"], timeout=120))
    app = App(settings.validated(), environ=dict(os.environ), client=client)

    phase("first pass")
    # 1. first pass: built on m1, pushed, pinned; 6 tasks spread 2/2/2 over the three nodes
    out = app.sync()
    assert out.converged, json.dumps(app.store.snapshot(), indent=1, default=str)
    image1 = service_image(cluster, web)
    tag1 = sha1[:12]
    assert image1.startswith(f"{reg}/{web}:{tag1}@sha256:"), image1
    # the pinned digest is the one the registry holds
    assert image1.split("@", 1)[1] == registry_digest(reg, web, tag1)
    wait_until("6 web tasks, 2 per node", lambda: running_per_node(cluster, web)
               == collections.Counter(m1=2, w1=2, w2=2) or False)
    # each node's own dockerd runs 2 containers of the pinned image and serves v1
    view = wait_until("every node serving v1", lambda: all_nodes_serve(
        cluster, web, image1, f"v1 revision {sha1}"))
    assert set(view) == {"m1", "w1", "w2"}
    # the workers pulled the pinned image from the registry (only m1 built it)
    repo_digest = f"{reg}/{web}@{image1.split('@', 1)[1]}"
    for node in ("w1", "w2"):
        assert repo_digest in cluster.engines[node].images.get(image1).attrs["RepoDigests"]
    # Keelson's engine was m1, and nothing went to the machine's main dockerd
    assert app.client.api.info()["Name"] == "m1"
    assert not main_engine_services(stack)

    phase("first pass converged, checking constraint")
    # 2. node.role == manager: the ctl service runs on m1 only
    wait_until("ctl: 2 tasks on m1", lambda: running_per_node(cluster, ctl)
               == collections.Counter(m1=2) or False)
    assert "@sha256:" in service_image(cluster, ctl)
    for node in ("w1", "w2"):
        assert not cluster.engines[node].containers.list(
            all=True, filters={"label": f"com.docker.swarm.service.name={ctl}"})
    assert len(cluster.engines["m1"].containers.list(
        filters={"label": f"com.docker.swarm.service.name={ctl}"})) == 2

    phase("broken commit")
    # 3. a commit whose image never gets healthy: Swarm rolls back, on every node
    manifest_repo.write(f"manifests/{stack}/site/Dockerfile", BROKEN_DOCKERFILE)
    bad = manifest_repo.commit("broken")
    out = app.sync()
    st = app.store.snapshot()["stacks"][stack]
    assert not out.converged
    assert st["sync_status"] == "Failed" and st["reason"] == "RolledBack", st
    assert bad[:12] in st["last_error"]
    svc = cluster.manager.services.get(web).attrs
    assert svc["UpdateStatus"]["State"] == "rollback_completed", svc.get("UpdateStatus")
    assert service_image(cluster, web) == image1
    # the broken image was really tried (pulled and started on some node) before the rollback
    tried = [t for t in cluster.manager.services.get(web).tasks()
             if f"{web}:{bad[:12]}@" in t["Spec"]["ContainerSpec"]["Image"]]
    assert tried, "no task ever ran the broken image"
    wait_until("every node back on v1 after the rollback", lambda: all_nodes_serve(
        cluster, web, image1, f"v1 revision {sha1}"))
    # Swarm reports rollback_completed while the last rolled-back task may still be starting
    wait_until("2 v1 tasks on each node", lambda: running_per_node(cluster, web)
               == collections.Counter(m1=2, w1=2, w2=2))
    # not retried: a later pass leaves it stalled and writes nothing
    version = cluster.manager.services.get(web).attrs["Version"]["Index"]
    app.sync()
    assert app.store.snapshot()["stacks"][stack]["sync_status"] == "Stalled"
    assert cluster.manager.services.get(web).attrs["Version"]["Index"] == version

    phase("good commit")
    # 4. the next good commit deploys to every node
    manifest_repo.write(f"manifests/{stack}/site/Dockerfile", DOCKERFILE.format(page="v2"))
    good = manifest_repo.commit("fixed")
    out = app.sync()
    assert out.converged, json.dumps(app.store.snapshot(), indent=1, default=str)
    image2 = service_image(cluster, web)
    assert image2.startswith(f"{reg}/{web}:{good[:12]}@sha256:"), image2
    assert image2.split("@", 1)[1] == registry_digest(reg, web, good[:12])
    wait_until("every node serving v2", lambda: all_nodes_serve(
        cluster, web, image2, f"v2 revision {good}"))
    wait_until("2 v2 tasks on each node", lambda: running_per_node(cluster, web)
               == collections.Counter(m1=2, w1=2, w2=2))
    assert running_per_node(cluster, ctl) == collections.Counter(m1=2)
    phase("done")
