"""Registry credentials on a real 3-node swarm (issue 9): a stack whose image lives only in a
registry that needs a login (htpasswd + TLS from a test CA, trusted through
/etc/docker/certs.d) deploys, and its tasks run on worker nodes that never logged in: the login
travels with the service (``X-Registry-Auth``, like ``docker stack deploy
--with-registry-auth``). Without the login the same stack fails RegistryUnauthorized and
nothing is created; a later commit without the login changes nothing that runs."""
from __future__ import annotations

import collections
import io
import json
import os
import uuid

import docker
import pytest

from controller.app import App
from controller.config import Settings
from controller.errors import ImageBuildError
from controller.swarm.client import SwarmClient
from controller.swarm.engine_images import ImageEngine
from tests.multinode.test_multinode_swarm import phase, running_per_node, service_image, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.multinode]


def stack_yml(image: str) -> str:
    return f"""services:
  app:
    image: {image}
    command: ["sleep", "3600"]
    deploy:
      replicas: 2
      placement:
        max_replicas_per_node: 1
        constraints: [node.role == worker]
      update_config:
        delay: 0s
        monitor: 2s
"""


def seed(cluster, reg, repo: str, tag: str, marker: str) -> str:
    """Build a tiny image on m1, push it with the login, drop the local copy; the digest."""
    m1 = cluster.manager
    ref = f"{reg.addr}/{repo}"
    m1.images.build(fileobj=io.BytesIO(
        f"FROM busybox:latest\nRUN echo {marker} > /marker\n".encode()), tag=f"{ref}:{tag}", rm=True)
    out = list(m1.api.push(ref, tag=tag, stream=True, decode=True,
                           auth_config={"username": reg.user, "password": reg.password}))
    digest = [c["aux"]["Digest"] for c in out if "aux" in c]
    assert digest, out
    m1.images.remove(f"{ref}:{tag}")
    return digest[0]


def make(cluster, manifest_repo, tmp_path, stack, name, **auth) -> App:
    settings = Settings(repo=manifest_repo.url, registry=cluster.registry,
                        workdir=str(tmp_path / name), listen="", stacks=(stack,),
                        rollout_timeout_s=120, pending_timeout_s=60, **auth)
    client = SwarmClient(docker.DockerClient(base_url=cluster.sockets["m1"], timeout=120))
    return App(settings.validated(), environ=dict(os.environ), client=client)


def test_private_image_runs_on_workers_that_never_logged_in(cluster, auth_registry,
                                                             manifest_repo, tmp_path):
    reg = auth_registry
    stack = f"kra{uuid.uuid4().hex[:6]}"
    app_svc = f"{stack}_app"
    d1 = seed(cluster, reg, "kra/app", "1", "one")
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_yml(f"{reg.addr}/kra/app:1"))
    manifest_repo.commit("private image")

    phase("without the login")
    bare = make(cluster, manifest_repo, tmp_path, stack, "bare")
    out = bare.sync()
    st = bare.store.snapshot()["stacks"][stack]
    assert not out.converged and st["reason"] == "RegistryUnauthorized", st
    assert f"{reg.addr}/kra/app:1" in st["last_error"]
    assert not cluster.manager.services.list(
        filters={"label": f"com.docker.stack.namespace={stack}"})

    # a build whose FROM is there fails the same way without the login
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {reg.addr}/kra/app:1\nRUN echo b > /b\n")
    with pytest.raises(ImageBuildError) as err:
        ImageEngine(bare.client).build(str(ctx), "Dockerfile", "kra-build:1", {}, None, {})
    assert err.value.reason == "RegistryUnauthorized", err.value
    assert f"{reg.addr}/kra/app" in str(err.value)

    phase("with the login")
    app = make(cluster, manifest_repo, tmp_path, stack, "login", registry_auth=reg.config_json())
    out = app.sync()
    assert out.converged, json.dumps(app.store.snapshot(), indent=1, default=str)
    assert service_image(cluster, app_svc) == f"{reg.addr}/kra/app:1@{d1}"
    wait_until("one app task on each worker", lambda: running_per_node(cluster, app_svc)
               == collections.Counter(w1=1, w2=1) or False)
    for node in ("w1", "w2"):  # each worker pulled the pinned image itself, with no login of its own
        img = cluster.engines[node].images.get(f"{reg.addr}/kra/app:1@{d1}")
        assert f"{reg.addr}/kra/app@{d1}" in img.attrs["RepoDigests"]
    assert reg.password not in json.dumps(cluster.manager.services.get(app_svc).attrs)
    assert reg.password not in json.dumps(app.store.snapshot())

    phase("a new tag, without the login")
    seed(cluster, reg, "kra/app", "2", "two")
    manifest_repo.write(f"manifests/{stack}/stack.yml", stack_yml(f"{reg.addr}/kra/app:2"))
    manifest_repo.commit("new tag")
    version = cluster.manager.services.get(app_svc).attrs["Version"]["Index"]
    out = bare.sync()
    st = bare.store.snapshot()["stacks"][stack]
    assert not out.converged and st["reason"] == "RegistryUnauthorized", st
    assert cluster.manager.services.get(app_svc).attrs["Version"]["Index"] == version
    assert service_image(cluster, app_svc) == f"{reg.addr}/kra/app:1@{d1}"
    assert running_per_node(cluster, app_svc) == collections.Counter(w1=1, w2=1)
    phase("done")
