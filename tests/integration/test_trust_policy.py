"""A policy for what a merge may deploy (issue 7, item 5), on the real swarm, registry and git.

Each refused stack is one an attacker with merge rights could push: Keelson's own secret or
network, the Docker socket, SYS_ADMIN; each fails alone with an error naming stack, service, key
and rule, nothing of it is created, and another stack of the same repo syncs in the same pass.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from controller.model import labels as L
from controller.model.identity import ControllerIdentity
from tests.integration.conftest import ROOT
from tests.integration.keelson_app import make_app, tools_stack

pytestmark = pytest.mark.integration


def one_service(registry: str, body: str = "", tail: str = "") -> str:
    return f"""services:
  app:
    image: {registry}/library/busybox:latest
    command: ["sh", "-c", "sleep 3600"]
{body}{tail}"""


def services_of(engine, stack: str):
    return engine.services.list(filters={"label": f"{L.NAMESPACE}={stack}"})


def test_baseline_refuses_own_objects_docker_sock_and_sys_admin_while_others_sync(
        engine, registry, manifest_repo, stack_names, tmp_path):
    holder = stack_names("kown")  # namespace that holds (and cleans up) "Keelson's own" objects
    tag = uuid.uuid4().hex[:6]
    own_secret = engine.secrets.create(name=f"keelson_t{tag}", data=b"planted-secret-value",
                                       labels={L.NAMESPACE: holder})
    own_net = engine.networks.create(f"keelson_t{tag}", driver="overlay", attachable=True,
                                     labels={L.NAMESPACE: holder})
    detected = engine.secrets.create(name=f"ctl{tag}_token", data=b"x", labels={L.NAMESPACE: holder})
    ok, sec, net, sock, cap, ident = (stack_names(p) for p in ("ok", "sec", "net", "sock", "cap",
                                                               "ident"))
    manifest_repo.write(f"manifests/{ok}/stack.yml", tools_stack(registry))
    manifest_repo.write(f"manifests/{sec}/stack.yml", one_service(
        registry, "    secrets: [tok]\n",
        f"secrets:\n  tok:\n    external: true\n    name: {own_secret.name}\n"))
    manifest_repo.write(f"manifests/{net}/stack.yml", one_service(
        registry, "    networks: [theirs]\n",
        f"networks:\n  theirs:\n    external: true\n    name: {own_net.name}\n"))
    manifest_repo.write(f"manifests/{sock}/stack.yml", one_service(
        registry, "    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n"))
    manifest_repo.write(f"manifests/{cap}/stack.yml", one_service(
        registry, "    cap_add: [SYS_ADMIN]\n"))
    manifest_repo.write(f"manifests/{ident}/stack.yml", one_service(
        registry, "    secrets: [tok]\n",
        f"secrets:\n  tok:\n    external: true\n    name: {detected.name}\n"))
    manifest_repo.commit("an attacker's merge, and one honest stack")
    me = ControllerIdentity(stack=f"ctl{tag}", service=f"ctl{tag}_keelson",
                            secrets=frozenset({detected.name}))
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [ok, sec, net, sock, cap, ident],
                   identity=me)
    out = app.sync()
    assert out.result == "partial"
    assert app.store.get(ok).sync_status == "Synced", app.store.snapshot()
    expect = {
        sec: ("services.app.secrets", "own-object", f"secret {own_secret.name} starts with keelson_"),
        net: ("services.app.networks", "own-object", f"network {own_net.name} starts with keelson_"),
        sock: ("services.app.volumes.0", "engine-socket", "/var/run/docker.sock exposes"),
        cap: ("services.app.cap_add", "capabilities", "adds capabilities SYS_ADMIN"),
        ident: ("services.app.secrets", "own-object",
                f"secret {detected.name} is used by Keelson's own service"),
    }
    for stack, (key, rule, text) in expect.items():
        st = app.store.get(stack)
        assert (st.sync_status, st.reason) == ("Failed", "PolicyDenied"), st
        assert f"stack {stack} service app key {key}" in st.last_error, st.last_error
        assert f"rule {rule}" in st.last_error and text in st.last_error, st.last_error
        assert services_of(engine, stack) == []  # nothing of a refused stack was created
        assert not engine.configs.list(filters={"name": L.state_record_name(stack)})
    assert "planted-secret-value" not in str(app.store.snapshot())

    # privileged lets host access through, but never Keelson's own secret
    wide = make_app(manifest_repo.url, tmp_path / "wd2", registry, [sec, sock, cap],
                    policy="privileged")
    wide.sync()  # same revision: a refusal is not remembered, the new level applies at once
    assert wide.store.get(sec).reason == "PolicyDenied"
    assert wide.store.get(sock).sync_status == "Synced", wide.store.snapshot()
    assert wide.store.get(cap).sync_status == "Synced"


def test_restricted_refuses_root_writable_root_and_low_host_ports(
        engine, registry, manifest_repo, stack_names, tmp_path):
    root, port, good = stack_names("root"), stack_names("port"), stack_names("good")
    hardened = "    user: \"1000:1000\"\n    read_only: true\n"
    manifest_repo.write(f"manifests/{root}/stack.yml", one_service(registry))
    manifest_repo.write(f"manifests/{port}/stack.yml", one_service(
        registry, hardened + "    ports:\n      - {target: 80, published: 81, mode: host}\n"))
    manifest_repo.write(f"manifests/{good}/stack.yml", one_service(registry, hardened))
    manifest_repo.commit("restricted")
    app = make_app(manifest_repo.url, tmp_path / "wd", registry, [root, port, good],
                   policy="restricted")
    app.sync()
    assert app.store.get(good).sync_status == "Synced", app.store.snapshot()
    err = app.store.get(root).last_error
    assert app.store.get(root).reason == "PolicyDenied"
    assert "key services.app.user" in err and "rule run-as-root" in err
    assert "key services.app.read_only" in err and "rule read-only-root" in err
    err = app.store.get(port).last_error
    assert "key services.app.ports" in err and "port 81 is below 1024" in err
    assert "rule privileged-port" in err and "run-as-root" not in err
    assert services_of(engine, root) == [] and services_of(engine, port) == []


def test_validate_shows_what_a_level_would_refuse(manifest_repo, registry, tmp_path):
    manifest_repo.write("manifests/app/stack.yml", one_service(registry, "    cap_add: [NET_ADMIN]\n"))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "controller", "validate",
                          str(manifest_repo.work / "manifests")], cwd=str(ROOT), env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "refused: stack app service app key services.app.cap_add" in run.stdout
    assert "note: restricted would refuse" in run.stdout and "rule run-as-root" in run.stdout
    run = subprocess.run([sys.executable, "-m", "controller", "validate", "--policy",
                          "privileged", str(manifest_repo.work / "manifests")], cwd=str(ROOT),
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "note: baseline would refuse" in run.stdout and "NET_ADMIN" in run.stdout


def test_plan_shows_what_a_level_refuses(engine, registry, manifest_repo, stack_names, tmp_path):
    stack = stack_names("plan")
    manifest_repo.write(f"manifests/{stack}/stack.yml", one_service(registry))
    manifest_repo.commit("root service")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEELSON_")}
    env.update(PYTHONPATH=str(ROOT), KEELSON_LISTEN="", KEELSON_WORKDIR=str(tmp_path / "wd"))
    args = [sys.executable, "-m", "controller", "plan", "--repo", manifest_repo.url,
            "--stack", stack, "--registry", registry]
    run = subprocess.run(args + ["--policy", "restricted"], cwd=str(ROOT), env=env,
                         capture_output=True, text=True, timeout=120)
    assert f"stack {stack}: cannot plan: stack {stack} service app key services.app.user" \
        in run.stdout, run.stdout + run.stderr
    assert "rule run-as-root" in run.stdout and "rule read-only-root" in run.stdout
    run = subprocess.run(args, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=120)
    assert f"stack {stack}: 2 change(s)" in run.stdout, run.stdout + run.stderr
    assert "warning" not in run.stderr  # not a swarm task: no identity, no false detection
    assert services_of(engine, stack) == []  # plan writes nothing
