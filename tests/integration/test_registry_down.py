"""Case c02 and 'registry down' on the real engine: tags are re-resolved every pass; when the
registry cannot be reached the service keeps its pinned digest (never a bare tag), the stack is
reported degraded, and a failed push changes nothing that runs."""
from __future__ import annotations

import pathlib
import socket
import subprocess
import time

import pytest
import requests

from tests.integration.keelson_app import make_app, versions

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """A private docker-registry on its own loopback port, which the test can stop."""

    def __init__(self, root: pathlib.Path):
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "registry.yml"
        self.config.write_text(f"""version: 0.1
log: {{level: warn}}
storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}
http: {{addr: {self.addr}}}
""")
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["docker-registry", "serve", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            try:
                if requests.get(f"http://{self.addr}/v2/", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError("registry did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def own_registry(engine, tmp_path):
    reg = Registry(tmp_path / "reg")
    reg.start()
    yield reg
    reg.stop()


INTERVAL_S = 2.0  # KEELSON_IMAGE_POLL_INTERVAL in this test


def push(engine, image: str, marker: str) -> str:
    """Build a tiny image that differs by ``marker``, push it; returns the digest."""
    ctx = pathlib.Path(f"/tmp/keelson-c02-{marker}")
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {marker} > /marker\n")
    engine.images.build(path=str(ctx), tag=image, rm=True)
    repo, tag = image.rsplit(":", 1)
    engine.images.push(repo, tag)
    return engine.images.get_registry_data(image).id


def test_same_tag_rebuilt_and_registry_down(engine, own_registry, manifest_repo, stack_names, tmp_path):
    stack = stack_names("c02")
    image = f"{own_registry.addr}/team/api:main"
    d1 = push(engine, image, "one")
    manifest_repo.write(f"manifests/{stack}/stack.yml", f"""services:
  api:
    image: {image}
    command: ["sleep", "3600"]
  built:
    build: ./ctx
""")
    manifest_repo.write(f"manifests/{stack}/ctx/Dockerfile", "FROM busybox:latest\nCMD [\"sleep\", \"3600\"]\n")
    manifest_repo.commit("c02")
    # tags are asked again once their answer is older than the image interval (2 s here)
    app = make_app(manifest_repo.url, tmp_path / "wd", own_registry.addr, [stack],
                   image_poll_interval_s=INTERVAL_S)
    assert app.sync().converged, app.store.snapshot()
    spec_image = lambda: engine.services.get(f"{stack}_api").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert spec_image() == f"{image}@{d1}"

    # unchanged digest: nothing written
    v = versions(engine, stack)
    assert app.sync().result == "noop" and versions(engine, stack) == v

    # CI pushes a new image under the same tag: the first pass after the image interval rolls
    # the service to it
    d2 = push(engine, image, "two")
    assert d2 != d1
    time.sleep(INTERVAL_S + 0.1)
    assert app.sync().converged
    assert spec_image() == f"{image}@{d2}"

    # registry down: the service keeps its pinned digest, the stack is reported degraded
    own_registry.stop()
    v = versions(engine, stack)
    time.sleep(INTERVAL_S + 0.1)
    out = app.sync()
    st = app.store.snapshot()["stacks"][stack]
    assert spec_image() == f"{image}@{d2}"
    assert versions(engine, stack) == v
    assert st["health_status"] == "Degraded" and any("keeping the pinned" in w for w in st["warnings"])

    # a change that needs a build+push while the registry is down: error, nothing changes
    manifest_repo.write(f"manifests/{stack}/ctx/Dockerfile", "FROM busybox:latest\nCMD [\"sleep\", \"3601\"]\n")
    manifest_repo.commit("needs a push")
    out = app.sync()
    st = app.store.snapshot()["stacks"][stack]
    assert st["sync_status"] == "Failed" and st["reason"] in ("RegistryUnreachable", "ImagePushFailed"), st
    assert versions(engine, stack) == v
    # registry back: the same commit is retried (a push failure is retryable) and converges
    own_registry.start()
    assert app.sync().converged, app.store.snapshot()
