"""The benchmarks' counting proxy in front of the real dockerd and the real registry."""
from __future__ import annotations

import docker
import pytest

from bench.proxy import CountingProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def proxies(engine, registry, tmp_path):
    """(docker socket proxy, registry proxy), stopped afterwards."""
    host, port = registry.rsplit(":", 1)
    d = CountingProxy(str(tmp_path / "docker.sock"), "/var/run/docker.sock").start()
    r = CountingProxy(("127.0.0.1", 0), (host, int(port))).start()
    yield d, r
    d.stop()
    r.stop()


def test_counts_every_request_on_kept_alive_connections(proxies):
    d, _ = proxies
    client = docker.DockerClient(base_url=f"unix://{d.address}")
    try:
        before = d.snapshot()
        for _ in range(3):
            client.api.services()
        client.api.tasks(filters={"desired-state": "running"})
        made = d.snapshot().minus(before)
    finally:
        client.close()
    assert made.by_route == {"GET /services": 3, "GET /tasks": 1}
    assert made.total == 4


def test_request_bodies_do_not_confuse_the_count(proxies, stack_names):
    d, _ = proxies
    client = docker.DockerClient(base_url=f"unix://{d.address}")
    name = stack_names("bp")
    try:
        before = d.snapshot()
        net = client.networks.create(f"{name}_n", driver="overlay",
                                     labels={"com.docker.stack.namespace": name})
        net.remove()
        made = d.snapshot().minus(before)
    finally:
        client.close()
    # a POST with a JSON body, the GET the SDK makes to return the object, then the DELETE
    assert made.by_route == {"POST /networks/create": 1, "GET /networks/*": 1,
                             "DELETE /networks/*": 1}


def test_dockerd_digest_lookups_through_the_registry_proxy_are_counted(proxies, engine):
    _, r = proxies
    ref = f"127.0.0.1:{r.address[1]}/library/busybox:latest"
    before = r.snapshot()
    engine.api.inspect_distribution(ref)
    made = r.snapshot().minus(before)
    assert made.by_route.get("GET /v2/*/manifests/*", 0) + \
        made.by_route.get("HEAD /v2/*/manifests/*", 0) >= 1
