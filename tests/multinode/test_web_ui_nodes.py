"""Issue 13, the web page on the real 3-node swarm: one column per node with its tasks, and a
node that is drained or down shown as such, in headless Chromium (tests/integration/browser.py).
"""
from __future__ import annotations

import collections
import os
import pathlib
import shutil
import socket
import uuid

import docker
import pytest

from controller.app import App
from controller.config import Settings
from controller.swarm.client import SwarmClient
from tests.integration.browser import CHROMIUM, dump_dom, screenshot
from tests.multinode.test_multinode_swarm import phase, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.multinode]


def stack_yml(registry: str) -> str:
    return f"""services:
  app:
    image: {registry}/library/busybox:latest
    command: ["sleep", "3600"]
    deploy:
      replicas: 6
      placement:
        preferences:
          - spread: node.id
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def running_by_node(manager, service: str) -> dict:
    """Task ID -> node hostname of the running tasks of ``service``."""
    names = {n.id: n.attrs["Description"]["Hostname"] for n in manager.nodes.list()}
    return {t["ID"]: names[t["NodeID"]]
            for t in manager.services.get(service).tasks(filters={"desired-state": "running"})
            if t["Status"]["State"] == "running"}


def node_states(manager) -> dict:
    """Hostname -> (state, availability)."""
    return {n.attrs["Description"]["Hostname"]: (n.attrs["Status"]["State"],
                                                 n.attrs["Spec"]["Availability"])
            for n in manager.nodes.list()}


def page_columns(url: str, stack: str):
    """(hostname -> column element, running task boxes of ``stack``, the DOM) as drawn."""
    dom = dump_dom(url)
    cols = {c.attrs["data-hostname"]: c for c in dom.find("node") if c.attrs.get("data-hostname")}
    boxes = [b for b in dom.find("task", data_stack=stack) if b.attrs["data-look"] == "running"]
    return cols, boxes, dom


def save(shot: pathlib.Path, name: str) -> None:
    if os.environ.get("KEELSON_SCREENSHOT_DIR"):
        target = pathlib.Path(os.environ["KEELSON_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / name)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium missing: run scripts/dev-env.sh")
def test_page_columns_follow_nodes_drained_and_down(cluster, manifest_repo, tmp_path):
    stack = f"kui{uuid.uuid4().hex[:6]}"
    service = f"{stack}_app"
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_yml(cluster.registry))
    manifest_repo.commit("six replicas spread over the nodes")
    port = free_port()
    settings = Settings(repo=manifest_repo.url, registry=cluster.registry,
                        workdir=str(tmp_path / "wd"), listen=f"127.0.0.1:{port}",
                        stacks=(stack,), rollout_timeout_s=240, pending_timeout_s=90)
    client = SwarmClient(docker.DockerClient(base_url=cluster.sockets["m1"], timeout=120))
    app = App(settings.validated(), environ=dict(os.environ), client=client)
    manager = cluster.manager
    url = f"http://127.0.0.1:{port}/"
    app.start()
    try:
        phase("ui: waiting for 2 tasks per node")
        wait_until("2 running tasks per node", lambda: collections.Counter(
            running_by_node(manager, service).values()) == collections.Counter(m1=2, w1=2, w2=2))
        cols, boxes, dom = page_columns(url, stack)
        assert set(cols) == {"m1", "w1", "w2"}
        placed = running_by_node(manager, service)
        assert {b.attrs["data-task-id"] for b in boxes} == set(placed)
        for box in boxes:
            assert dom.inside(box, cols[placed[box.attrs["data-task-id"]]])
        assert not any({"node-down", "node-drain"} & set(c.classes) for c in cols.values())
        save(screenshot(url + f"#/?filter={stack}", tmp_path / "ui-nodes.png"), "ui-nodes.png")

        phase("ui: drain w2, w1 leaves the swarm")
        w2 = [n for n in manager.nodes.list() if n.attrs["Description"]["Hostname"] == "w2"][0]
        spec = dict(w2.attrs["Spec"], Availability="drain")
        w2.update(spec)
        cluster.engines["w1"].swarm.leave(force=True)
        wait_until("w1 down, w2 drained", lambda: (lambda s: s["w1"][0] == "down"
                                                   and s["w2"][1] == "drain")(node_states(manager)))
        wait_until("6 tasks on m1", lambda: collections.Counter(
            running_by_node(manager, service).values()) == collections.Counter(m1=6))
        cols, boxes, dom = page_columns(url, stack)
        assert "node-down" in cols["w1"].classes and "node down" in cols["w1"].text
        assert "node-drain" in cols["w2"].classes and "drain" in cols["w2"].text
        assert "node-down" not in cols["m1"].classes
        assert {b.attrs["data-task-id"] for b in boxes} == set(running_by_node(manager, service))
        assert all(dom.inside(b, cols["m1"]) for b in boxes)
        save(screenshot(url + f"#/?filter={stack}", tmp_path / "ui-nodes-down.png"),
             "ui-nodes-down.png")
    finally:
        app.stop()
