"""Issue 11: Keelson survives losing the manager it runs on.

On the namespace lab made into 3 managers (w1 and w2 promoted), Keelson itself is deployed with
the shipped ``stack.yml`` (its image pushed to the lab registry, so every manager can pull it),
fetching a repo over git:// from the bridge. It deploys a healthy stack and stalls a broken one.
Then every process of the node running Keelson is killed (a power loss: dockerd, containerd, the
Keelson container). Swarm reschedules Keelson on another manager; the new task waits out the dead
holder's writer lease, resumes from the labels in Swarm (the healthy stack is not redeployed, the
stalled one stays Stalled), judges the rolling update that was in flight when the node died
(Synced at that commit, nothing rewritten) and deploys the next commit.

Runs last in the multinode session (``zz``): it leaves a node dead; ``cluster.sh down`` clears it.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import docker
import pytest

from tests.e2e.conftest import ROOT, build_image
from tests.multinode.test_multinode_swarm import main_engine_services

pytestmark = [pytest.mark.integration, pytest.mark.multinode]

WAIT_S = 180
HOST_IP = "10.213.47.1"  # the bridge's host side (cluster.sh)
NODE_IP = {"m1": "10.213.47.11", "w1": "10.213.47.12", "w2": "10.213.47.13"}
TOKEN = "ha-token-" + uuid.uuid4().hex
KPORT = 9090  # stack.yml's host-mode port, in each node's own network namespace


def say(msg: str) -> None:
    print(f"[manager-loss] {msg}", file=sys.stderr, flush=True)


def wait_until(what: str, probe, timeout_s: float = WAIT_S, diag=lambda: ""):
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        try:
            last = probe()
        except (docker.errors.APIError, OSError, ValueError, KeyError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}\n{diag()}")
        time.sleep(1)


def status(node: str) -> dict:
    req = urllib.request.Request(f"http://{NODE_IP[node]}:{KPORT}/api/status",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def metrics_text(node: str) -> str:
    with urllib.request.urlopen(f"http://{NODE_IP[node]}:{KPORT}/metrics", timeout=5) as resp:
        return resp.read().decode()


def writes(node: str) -> float:
    """keelson_swarm_writes_total summed, as the Keelson on ``node`` reports it."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics_text(node).splitlines()
               if line.startswith("keelson_swarm_writes_total"))


def lab_docker(sock: str, *args: str, env=None, timeout: float = 300) -> str:
    proc = subprocess.run(["docker", "-H", sock, *args], capture_output=True, text=True,
                          env=env, timeout=timeout)
    assert proc.returncode == 0, f"docker {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def keelson_node(manager, service: str) -> str:
    """Hostname of the node running ``service``'s running task ("" when none)."""
    names = {n.id: n.attrs["Description"]["Hostname"] for n in manager.nodes.list()}
    for t in manager.api.tasks(filters={"service": service, "desired-state": "running"}):
        if t["Status"]["State"] == "running":
            return names.get(t.get("NodeID", ""), "")
    return ""


def kill_node(node: str) -> None:
    """Kill every process in the node's network namespace (dockerd, containerd, containers)."""
    pids = subprocess.run(["ip", "netns", "pids", f"kmn-{node}"], capture_output=True,
                          text=True).stdout.split()
    subprocess.run(["kill", "-KILL", *pids], capture_output=True)


def served_repo(tmp_path: pathlib.Path, repo) -> subprocess.Popen:
    log = open(tmp_path / "git-daemon.log", "w")
    return subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", "--informative-errors",
                             f"--base-path={repo.bare.parent}", f"--listen={HOST_IP}", "--port=9418",
                             str(repo.bare.parent)], stdout=log, stderr=subprocess.STDOUT)


def app_stack(registry: str, replicas: int, version: str = "v1") -> str:
    # one task at a time, 4 s apart: a rolling update is in flight long enough to kill a node
    return f"""services:
  app:
    image: {registry}/library/busybox:latest
    command: ["sleep", "3600"]
    environment:
      V: {version}
    deploy:
      replicas: {replicas}
      update_config: {{parallelism: 1, delay: 4s, monitor: 2s}}
"""


def env_of(engine, service: str) -> list:
    return engine.services.get(service).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]


BROKEN = """services:
  bad:
    image: {registry}/library/busybox:latest
    command: ["sleep", "3600"]
    healthcheck:
      test: ["CMD", "false"]
      interval: 1s
      timeout: 1s
      retries: 1
      start_period: 0s
    deploy:
      update_config: {{delay: 0s, monitor: 3s, failure_action: rollback}}
"""


def test_keelson_survives_losing_its_manager(cluster, manifest_repo, tmp_path):
    reg = cluster.registry
    uid = uuid.uuid4().hex[:5]
    ks, good, bad = f"kha{uid}", f"hagood{uid}", f"habad{uid}"
    ksvc = f"{ks}_keelson"
    m1 = cluster.engines["m1"]

    # 1. Keelson's image in the lab registry (every manager must be able to pull it)
    subprocess.run(["bash", str(ROOT / "scripts" / "base-images.sh")], check=True)
    tag = build_image(os.environ.get("KEELSON_E2E_TAG", "keelson:test"))
    image = f"{reg}/keelson:ha"
    save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
    subprocess.run(["docker", "-H", cluster.sockets["m1"], "load", "-q"], stdin=save.stdout,
                   check=True, capture_output=True, timeout=600)
    assert save.wait(60) == 0
    lab_docker(cluster.sockets["m1"], "tag", tag, image)
    lab_docker(cluster.sockets["m1"], "push", "-q", image)
    say("image pushed")

    # 2. three managers: quorum survives losing one
    for n in ("w1", "w2"):
        lab_docker(cluster.sockets["m1"], "node", "promote", n)
    wait_until("3 reachable managers", lambda: sum(
        1 for n in m1.nodes.list() if (n.attrs.get("ManagerStatus") or {}).get("Reachability")
        == "reachable") == 3)

    # 3. a repo served over git:// on the bridge, with a healthy and a broken stack
    manifest_repo.write(f"manifests/{good}/docker-stack.yml", app_stack(reg, 2))
    manifest_repo.write(f"manifests/{bad}/docker-stack.yml", BROKEN.format(registry=reg))
    manifest_repo.commit("two stacks")
    daemon = served_repo(tmp_path, manifest_repo)
    try:
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN + "\n")
        override = tmp_path / "ha.yml"
        override.write_text(
            'version: "3.8"\nservices:\n  keelson:\n    environment:\n'
            f'      KEELSON_STACKS: "{good},{bad}"\n      KEELSON_LEASE_TTL: "6s"\n'
            '      KEELSON_ROLLOUT_TIMEOUT: "60s"\n'
            '      KEELSON_API_TOKEN_FILE: /run/secrets/keelson_api_token\n'
            '    secrets: [keelson_api_token]\n'
            # each lab dockerd listens on its own socket (cluster.sh); /var/run/docker.sock is
            # the machine's main dockerd. Swarm expands the node template per task.
            '    volumes:\n      - type: bind\n'
            '        source: /run/keelson-multinode/{{.Node.Hostname}}.sock\n'
            '        target: /var/run/docker.sock\n'
            '    deploy:\n      restart_policy:\n'
            '        delay: 1s\n  registry:\n    deploy:\n      replicas: 0\n'
            f'secrets:\n  keelson_api_token:\n    file: {token_file}\n')
        env = dict(os.environ, KEELSON_IMAGE=image, KEELSON_REGISTRY=reg, KEELSON_INTERVAL="2s",
                   KEELSON_REPO=f"git://{HOST_IP}:9418/{manifest_repo.bare.name}")
        lab_docker(cluster.sockets["m1"], "stack", "deploy", "--resolve-image", "never",
                   "-c", str(ROOT / "stack.yml"), "-c", str(override), ks, env=env)

        def diag() -> str:
            out = subprocess.run(["docker", "-H", cluster.sockets[alive[0]], "service", "ps",
                                  "--no-trunc", ksvc], capture_output=True, text=True).stdout
            logs = subprocess.run(["docker", "-H", cluster.sockets[alive[0]], "service", "logs",
                                   "--tail", "40", ksvc], capture_output=True, text=True)
            return out + logs.stdout + logs.stderr

        alive = ["m1"]
        first = wait_until("keelson running", lambda: keelson_node(m1, ksvc), diag=diag)
        say(f"keelson runs on {first}")

        def stacks_settled(node: str):
            st = status(node)["stacks"]
            ok = (st.get(good, {}).get("sync_status") == "Synced"
                  and st.get(bad, {}).get("sync_status") == "Stalled")
            return st if ok else False

        wait_until("good Synced and bad Stalled", lambda: stacks_settled(first), diag=diag)
        # a commit whose rolling update is in flight when the node dies
        manifest_repo.write(f"manifests/{good}/docker-stack.yml", app_stack(reg, 2, "v2"))
        inflight = manifest_repo.commit("v2, rolling")
        wait_until("the v2 rolling update under way", lambda: "V=v2" in env_of(m1, f"{good}_app")
                   and (m1.services.get(f"{good}_app").attrs.get("UpdateStatus") or {})
                   .get("State") == "updating", diag=diag)
        specs = {s.name: s.attrs["Spec"] for s in m1.services.list(
            filters={"label": f"com.docker.stack.namespace={good}"})}
        bad_spec = m1.services.get(f"{bad}_bad").attrs["Spec"]

        # 4. power loss on Keelson's node
        kill_node(first)
        alive[:] = [n for n in ("m1", "w1", "w2") if n != first]
        survivor = cluster.engines[alive[0]]
        say(f"killed {first}; watching from {alive[0]}")
        second = wait_until("keelson rescheduled on another manager", lambda: (
            lambda n: n if n and n != first else "")(keelson_node(survivor, ksvc)), diag=diag)
        say(f"keelson now runs on {second}")
        wait_until("the new task holds the lease and has passed",
                   lambda: (lambda s: s["pass"]["count"] >= 2 and not s["lease"]["standby"])(
                       status(second)), diag=diag)
        st = wait_until("statuses resumed", lambda: stacks_settled(second), diag=diag)
        # the rollout in flight was judged, not redone: Synced at its commit, every task on v2
        assert st[good]["last_applied_revision"] == inflight, st[good]
        wait_until("both replicas on v2", lambda: sorted(
            "V=v2" in t["Spec"]["ContainerSpec"].get("Env", []) for t in survivor.api.tasks(
                filters={"service": f"{good}_app", "desired-state": "running"})
            if t["Status"]["State"] == "running") == [True, True], diag=diag)
        # nothing unchanged was redeployed (specs as before, no write by the new task); the
        # stalled stack stayed stalled, untried. (Version.Index moves anyway: Swarm rewrites
        # the service object when it reschedules the dead node's tasks.)
        assert {s.name: s.attrs["Spec"] for s in survivor.services.list(
            filters={"label": f"com.docker.stack.namespace={good}"})} == specs, st
        assert survivor.services.get(f"{bad}_bad").attrs["Spec"] == bad_spec
        assert writes(second) == 0, metrics_text(second)

        # 5. the next commit deploys
        manifest_repo.write(f"manifests/{good}/docker-stack.yml", app_stack(reg, 3, "v2"))
        sha = manifest_repo.commit("scale")
        wait_until("the next commit deployed", lambda: survivor.services.get(f"{good}_app")
                   .attrs["Spec"]["Mode"]["Replicated"]["Replicas"] == 3, diag=diag)
        wait_until("status at the new revision", lambda: status(second)["stacks"][good]
                   ["last_applied_revision"] == sha, diag=diag)
        say("next commit deployed by the rescheduled keelson")
        assert not main_engine_services(good) and not main_engine_services(bad)
    finally:
        daemon.terminate()
        daemon.wait(10)
