"""Fixtures for tests on a separate, real 3-node swarm (``tests/multinode/cluster.sh``).

The cluster is a bridge (``kmn0``, 10.213.47.0/24) plus one network namespace per node, each
running its own Debian dockerd: ``m1`` (manager), ``w1`` and ``w2`` (workers), and a private
Debian docker-registry on the bridge's host side. It never touches the machine's main dockerd,
its swarm or its registry (the main dockerd is only read, once: ``docker save busybox:latest``).

``cluster`` (session scope) takes an exclusive flock (so two test runs on one machine queue
instead of clobbering each other), runs ``cluster.sh up`` (which first removes whatever a
crashed earlier run left), yields the endpoints, and runs ``cluster.sh down`` at the end.

Environment:
    KEELSON_SKIP_MULTINODE=1   skip these tests
    KEELSON_MULTINODE_KEEP=1   leave the cluster running after the session (to look at it);
                               the next run removes it anyway
"""
from __future__ import annotations

import dataclasses
import fcntl
import os
import pathlib
import subprocess
import sys
import time
from typing import Dict

import docker
import pytest

from tests.integration.conftest import ManifestRepo

HERE = pathlib.Path(__file__).resolve().parent
SCRIPT = HERE / "cluster.sh"
LOCK = pathlib.Path("/run/lock/keelson-multinode.lock")
LOCK_WAIT_S = 900
NODES = ("m1", "w1", "w2")


def pytest_configure(config):
    config.addinivalue_line("markers", "multinode: needs root; builds a separate 3-node swarm")


@dataclasses.dataclass
class Cluster:
    """Endpoints of the 3-node swarm: ``registry`` is ``host:port``; ``sockets`` and
    ``engines`` are per node name (``m1`` is the manager); ``auth_registry`` is the
    ``host:port`` the login registry uses when a test starts it (``auth_registry`` fixture),
    ``state`` the lab's state folder."""
    registry: str
    sockets: Dict[str, str]
    engines: Dict[str, docker.DockerClient]
    auth_registry: str = ""
    state: str = ""

    @property
    def manager(self) -> docker.DockerClient:
        return self.engines["m1"]

    def stop_node(self, node: str) -> None:
        """Stop ``node``'s dockerd (``cluster.sh stop``): the swarm then sees it down. For the
        last steps of a session only: nothing starts it again before ``cluster.sh down``."""
        self.engines.pop(node).close()
        _run_script("stop", node)


def _run_script(action: str, *args: str) -> str:
    env = dict(os.environ, KEELSON_MULTINODE_LOCKED="1")
    proc = subprocess.run(["bash", str(SCRIPT), action, *args], env=env, capture_output=True, text=True,
                          timeout=600)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"cluster.sh {action} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout


def _lock():
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    fh = open(LOCK, "w")
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fh
        except BlockingIOError:
            if time.monotonic() > deadline:
                fh.close()
                raise RuntimeError(f"another multinode run still holds {LOCK}")
            time.sleep(1)


def _bring_up(engines: Dict[str, docker.DockerClient]) -> Dict[str, str]:
    """``cluster.sh up`` (which first removes everything), then fresh clients in ``engines``;
    returns the script's KEY=VALUE lines."""
    for client in engines.values():
        client.close()
    engines.clear()
    out = _run_script("up")
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    for n in NODES:
        engines[n] = docker.DockerClient(base_url=values[f"MULTINODE_SOCK_{n.upper()}"],
                                         timeout=120)
    info = engines["m1"].info()["Swarm"]
    assert info["ControlAvailable"] and info["Nodes"] == 3, info
    return values


def is_pristine(engines: Dict[str, docker.DockerClient]) -> bool:
    """True when the lab is as ``cluster.sh up`` leaves it: m1 the only manager, w1 and w2
    workers, all three Ready and active, no node labels (tests that drain, promote, label or
    kill nodes leave it otherwise)."""
    try:
        nodes = engines["m1"].nodes.list()
    except Exception:  # m1's dockerd is gone (a test killed it)
        return False
    seen = {}
    for node in nodes:
        attrs = node.attrs
        seen[attrs["Description"]["Hostname"]] = (
            attrs["Spec"].get("Role"), attrs["Spec"].get("Availability"),
            attrs["Status"].get("State"), bool(attrs["Spec"].get("Labels")))
    return seen == {"m1": ("manager", "active", "ready", False),
                    "w1": ("worker", "active", "ready", False),
                    "w2": ("worker", "active", "ready", False)}


@pytest.fixture(scope="session")
def cluster():
    """A fresh 3-node swarm and its registry; removed at the end of the session."""
    if os.environ.get("KEELSON_SKIP_MULTINODE") == "1":
        pytest.skip("KEELSON_SKIP_MULTINODE=1")
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("the multinode swarm needs root on Linux (network namespaces)")
    lock = _lock()
    engines: Dict[str, docker.DockerClient] = {}
    try:
        values = _bring_up(engines)
        yield Cluster(registry=values["MULTINODE_REGISTRY"],
                      sockets={n: values[f"MULTINODE_SOCK_{n.upper()}"] for n in NODES},
                      engines=engines, auth_registry=values["MULTINODE_AUTH_REGISTRY"],
                      state=values["MULTINODE_STATE"])
    finally:
        for client in engines.values():
            client.close()
        try:
            if os.environ.get("KEELSON_MULTINODE_KEEP") != "1":
                _run_script("down")
        finally:
            lock.close()


@pytest.fixture(autouse=True)
def _pristine_lab(request):
    """Every multinode test starts on the lab as ``up`` made it: a test before it may have
    drained, promoted, labelled or killed nodes; then the lab is made again (about a minute)."""
    if "cluster" not in request.fixturenames:
        yield
        return
    lab = request.getfixturevalue("cluster")
    if not is_pristine(lab.engines):
        _bring_up(lab.engines)  # same sockets, registry and state folder: the Cluster holds
    yield


@pytest.fixture
def manifest_repo(tmp_path) -> ManifestRepo:
    """A fresh manifests repo (bare remote + work tree) in the test's temp folder."""
    return ManifestRepo(tmp_path)


@pytest.fixture
def auth_registry(cluster):
    """A registry that needs a login (htpasswd + TLS from a test CA) on the bridge's host
    side, trusted by every node through /etc/docker/certs.d; stopped after the test (and by
    ``cluster.sh down`` after a crash)."""
    from tests.registry.auth_registry import AuthRegistry
    host, port = cluster.auth_registry.rsplit(":", 1)
    reg = AuthRegistry(pathlib.Path(cluster.state) / "authreg", host, int(port)).start()
    yield reg
    reg.stop()
