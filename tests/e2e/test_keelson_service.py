"""Issue 3, end to end: Keelson's own image, deployed with the shipped ``stack.yml``, on the swarm.

One test walks the whole story against real things only (dockerd in swarm mode, the registry
service ``stack.yml`` brings, a git remote served by ``git daemon``):

1. ``docker stack deploy -c stack.yml`` runs the controller as one task on a manager node.
2. A commit adding two stacks (one image-only, from the dev registry's busybox; one built by the
   containerised Keelson and pushed to the stack's own registry) is deployed; a good update
   (env change) rolls out ``completed``.
3. A commit adding a failing healthcheck is rolled back by Swarm: ``/api/status`` reports Failed /
   RolledBack and the old spec still runs.
4. ``/metrics`` (scraped from the host through the host-mode port) has the rollout counters,
   ``keelson_stack_info`` and ``keelson_source_revision_info`` with the commit id.
5. ``docker kill`` of the controller's container: Swarm starts a new task, which resumes from the
   labels in Swarm without writing anything (Version.Index unchanged, no Swarm writes) and still
   reports the failed revision instead of retrying it.

Isolation from other people's stacks on the same swarm: unique stack names, unique ports, and
``KEELSON_STACKS`` set from the first task on, through a second compose file merged by
``docker stack deploy -c stack.yml -c <override>`` (``stack.yml`` itself is used unchanged).
"""
from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Callable, Dict, Optional, Tuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import ManifestRepo

pytestmark = pytest.mark.e2e

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEV_REGISTRY = os.environ.get("KEELSON_TEST_REGISTRY", "127.0.0.1:5000")
WAIT_S = 180.0  # every wait is bounded by this; nothing asserts on speed
NAMESPACE = "com.docker.stack.namespace"


# ---- small helpers -----------------------------------------------------------------------------
def docker(*args: str, check: bool = True, timeout: float = 180, env=None) -> str:
    """Run the docker CLI; returns stdout (stderr appended to the error on failure)."""
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


API_TOKEN = "e2e-api-token-" + uuid.uuid4().hex  # stack.yml binds 0.0.0.0: /api/status needs it


def http_get(port: int, path: str) -> Tuple[int, str]:
    """(status, body) of GET http://127.0.0.1:<port><path> with the API token; (0, error) when
    nothing answers."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers={"Authorization": f"Bearer {API_TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (OSError, urllib.error.URLError) as exc:
        return 0, str(exc)


def wait_for(what: str, probe: Callable[[], object], diag: Callable[[], str],
             timeout_s: float = WAIT_S, every_s: float = 0.5):
    """Poll ``probe`` until it returns something truthy; fail with ``diag()`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (AssertionError, KeyError, ValueError, subprocess.SubprocessError) as exc:
            last = exc
            if isinstance(exc, AssertionError):
                last = f"AssertionError: {exc}"
        else:
            if last:
                return last
        time.sleep(every_s)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}; last probe: {last!r}\n"
                f"{diag()}", pytrace=False)


def metric_samples(text: str) -> Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]:
    """Prometheus text -> {(sample name, sorted labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def sample(samples, name: str, **labels) -> Optional[float]:
    return samples.get((name, tuple(sorted(labels.items()))))


def service_versions(stacks) -> Dict[str, int]:
    """Service name -> Version.Index for every service of ``stacks`` (from the CLI)."""
    out: Dict[str, int] = {}
    for stack in stacks:
        ids = docker("service", "ls", "-q", "--filter", f"label={NAMESPACE}={stack}").split()
        for sid in ids:
            name, index = docker("service", "inspect", "--format",
                                 "{{.Spec.Name}} {{.Version.Index}}", sid).split()
            out[name] = int(index)
    return out


def service_inspect(name: str) -> dict:
    return json.loads(docker("service", "inspect", name))[0]


def running_tasks(service: str, states=("Running",)):
    """(task id, node, image) of the tasks of ``service`` whose current state is in ``states``.

    A task whose image has a HEALTHCHECK shows ``Starting`` until its first check passes (30 s
    for Keelson's image), then ``Running``."""
    out = docker("service", "ps", service, "--no-trunc", "--filter", "desired-state=running",
                 "--format", "{{.ID}} {{.Node}} {{.CurrentState}} {{.Image}}")
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] in states:
            rows.append((parts[0], parts[1], parts[-1]))
    return rows


# ---- manifests the test commits ----------------------------------------------------------------
def ticker_stack(message: str, broken: bool = False) -> str:
    """Image-only stack (dev registry's busybox) that rolls back on failure; ``broken`` adds a
    healthcheck that always fails."""
    health = """    healthcheck:
      test: ["CMD", "false"]
      interval: 1s
      timeout: 1s
      retries: 1
      start_period: 0s
""" if broken else ""
    return f"""services:
  ticker:
    image: {DEV_REGISTRY}/library/busybox:latest
    command: ["sh", "-c", "sleep 3600"]
    environment:
      MESSAGE: {message}
{health}    deploy:
      replicas: 1
      update_config:
        parallelism: 1
        delay: 0s
        monitor: 3s
        failure_action: rollback
      rollback_config:
        parallelism: 0
        delay: 0s
        monitor: 1s
"""


WEB_STACK = """services:
  web:
    build: ./site
    deploy:
      replicas: 1
"""

WEB_DOCKERFILE = """FROM busybox:latest
ARG KEELSON_REVISION=unknown
RUN mkdir -p /www && echo "revision ${KEELSON_REVISION}" > /www/index.html
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""


# ---- fixtures ----------------------------------------------------------------------------------
def bridge_address() -> str:
    """The host's address on dockerd's default bridge (docker0): containers reach the host there."""
    gw = docker("network", "inspect", "bridge", "--format",
                "{{range .IPAM.Config}}{{.Gateway}}{{end}}").strip()
    if gw:
        return gw
    name = docker("network", "inspect", "bridge", "--format",
                  '{{index .Options "com.docker.network.bridge.name"}}').strip() or "docker0"
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", name], capture_output=True,
                         text=True, check=True).stdout.split()
    assert "inet" in out, f"no IPv4 address on {name}: {out}"
    return out[out.index("inet") + 1].split("/")[0]


@pytest.fixture
def served_repo(tmp_path):
    """A manifests repo served read-only by ``git daemon`` on dockerd's bridge address.

    Yields (ManifestRepo, git:// URL the Keelson container can fetch from).
    """
    repo = ManifestRepo(tmp_path)
    bridge_ip = bridge_address()
    port = free_port()
    log = open(tmp_path / "git-daemon.log", "w")
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", "--informative-errors", "--verbose",
         f"--base-path={tmp_path}", f"--listen={bridge_ip}", f"--port={port}", str(tmp_path)],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert daemon.poll() is None, (tmp_path / "git-daemon.log").read_text()
            try:
                socket.create_connection((bridge_ip, port), timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield repo, f"git://{bridge_ip}:{port}/{repo.bare.name}"
    finally:
        daemon.terminate()
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(10)
        log.close()


def remove_stacks(names, timeout_s: float = 120.0) -> None:
    """``docker stack rm`` each stack, then wait until its services and networks are gone."""
    for name in names:
        docker("stack", "rm", name, check=False, timeout=120)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = [n for n in names
                if docker("service", "ls", "-q", "--filter", f"label={NAMESPACE}={n}",
                          check=False).strip()
                or docker("network", "ls", "-q", "--filter", f"label={NAMESPACE}={n}",
                          check=False).strip()]
        if not left:
            return
        time.sleep(1)
    print(f"[e2e] cleanup: stacks still present after {timeout_s:.0f}s: {left}", file=sys.stderr)


# ---- the test ----------------------------------------------------------------------------------
def test_keelson_as_swarm_service(keelson_image, served_repo, tmp_path):
    started = time.monotonic()
    repo, url = served_repo
    uid = uuid.uuid4().hex[:6]
    ks = f"ke2e{uid}"       # Keelson's own stack (stack.yml)
    tick = f"e2etick{uid}"  # image-only stack, broken later
    web = f"e2eweb{uid}"    # stack with an image Keelson builds
    kport, rport = free_port(), free_port()
    keelson_svc = f"{ks}_keelson"

    def status() -> dict:
        code, body = http_get(kport, "/api/status")
        assert code == 200, f"/api/status: {code} {body[:200]}"
        return json.loads(body)

    mark = [time.monotonic()]

    def phase(name: str) -> None:
        now = time.monotonic()
        print(f"[e2e] {name}: {now - mark[0]:.1f}s", file=sys.stderr)
        mark[0] = now

    def diag() -> str:
        parts = []
        code, body = http_get(kport, "/api/status")
        parts.append(f"/api/status ({code}): {body[:3000]}")
        parts.append("keelson tasks:\n" + docker("service", "ps", "--no-trunc", keelson_svc,
                                                 check=False))
        parts.append("keelson logs (tail):\n" + docker("service", "logs", "--tail", "60",
                                                       keelson_svc, check=False))
        parts.append("services:\n" + docker("service", "ls", check=False))
        return "\n".join(parts)

    # Limit Keelson to this test's stacks from its very first task (stack.yml stays as shipped),
    # and give it the API token as a Docker secret, as docs/install.md says (issue 7).
    token_file = tmp_path / "api_token"
    token_file.write_text(API_TOKEN + "\n")
    override = tmp_path / "e2e-limits.yml"
    override.write_text(f'version: "3.8"\nservices:\n  keelson:\n    environment:\n'
                        f'      KEELSON_STACKS: "{tick},{web}"\n'
                        f'      KEELSON_API_TOKEN_FILE: /run/secrets/keelson_api_token\n'
                        f'    secrets:\n      - keelson_api_token\n'
                        f'secrets:\n  keelson_api_token:\n    file: {token_file}\n')
    env = dict(os.environ, KEELSON_IMAGE=keelson_image, KEELSON_REPO=url,
               KEELSON_REGISTRY=f"127.0.0.1:{rport}", REGISTRY_PORT=str(rport),
               KEELSON_INTERVAL="3s", KEELSON_PORT=str(kport), KEELSON_PRUNE="true")

    repo.write("manifests/README.md", "one folder per stack\n")
    sha0 = repo.commit("empty manifests")
    try:
        t0 = time.monotonic()
        docker("stack", "deploy", "-c", str(ROOT / "stack.yml"), "-c", str(override), ks,
               env=env, timeout=300)
        print(f"[e2e] stack deploy {ks}: {time.monotonic() - t0:.1f}s", file=sys.stderr)
        spec = service_inspect(keelson_svc)["Spec"]
        cenv = spec["TaskTemplate"]["ContainerSpec"]["Env"]
        assert f"KEELSON_STACKS={tick},{web}" in cenv and f"KEELSON_REPO={url}" in cenv, cenv

        # -- 1. one task, on a manager, answering on the host-mode port --------------------------
        tasks = wait_for("a running keelson task", lambda: running_tasks(keelson_svc), diag)
        assert len(tasks) == 1, tasks
        first_task, node, image = tasks[0]
        role = docker("node", "inspect", "--format", "{{.Spec.Role}}", node).strip()
        assert role == "manager", (node, role)
        assert "node.role == manager" in spec["TaskTemplate"]["Placement"]["Constraints"]
        assert image.startswith(keelson_image.split(":")[0]), image
        wait_for("/readyz 200", lambda: http_get(kport, "/readyz")[0] == 200, diag)
        wait_for("the first revision fetched over git://",
                 lambda: status()["source"]["revision"] == sha0, diag)
        wait_for(f"the stack's registry on 127.0.0.1:{rport}",
                 lambda: http_get(rport, "/v2/")[0] == 200, diag)
        phase("1. deployed, task on a manager, ready, registry up")

        # -- 2. a commit adding stacks is deployed by the containerised Keelson ----------------
        repo.write(f"manifests/{tick}/stack.yml", ticker_stack("v1"))
        repo.write(f"manifests/{web}/stack.yml", WEB_STACK)
        repo.write(f"manifests/{web}/site/Dockerfile", WEB_DOCKERFILE)
        sha1 = repo.commit("add two stacks")

        def synced(rev: str, *names: str) -> bool:
            st = status()["stacks"]
            return all(n in st and st[n]["sync_status"] == "Synced"
                       and st[n]["last_applied_revision"] == rev for n in names)

        wait_for(f"{tick} and {web} Synced at {sha1[:12]}", lambda: synced(sha1, tick, web), diag)
        ls = docker("service", "ls", "--format", "{{.Name}} {{.Replicas}}")
        assert f"{tick}_ticker 1/1" in ls and f"{web}_web 1/1" in ls, ls
        web_image = service_inspect(f"{web}_web")["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        assert web_image.startswith(f"127.0.0.1:{rport}/{web}_web:{sha1[:12]}@sha256:"), web_image
        assert running_tasks(f"{web}_web"), "the built image did not start"
        labels = service_inspect(f"{tick}_ticker")["Spec"]["Labels"]
        assert labels.get(NAMESPACE) == tick, labels

        # a good update of the image-only stack rolls out and completes
        repo.write(f"manifests/{tick}/stack.yml", ticker_stack("v2"))
        phase("2. two stacks deployed (one built)")
        sha2 = repo.commit("ticker v2")
        wait_for(f"{tick} Synced at {sha2[:12]}", lambda: synced(sha2, tick), diag)
        phase("2b. good update completed")
        good_spec = service_inspect(f"{tick}_ticker")["Spec"]
        assert "MESSAGE=v2" in good_spec["TaskTemplate"]["ContainerSpec"]["Env"]

        # -- 3. a commit that breaks health is rolled back by Swarm ----------------------------
        web_before = service_versions([web])
        repo.write(f"manifests/{tick}/stack.yml", ticker_stack("v3", broken=True))
        bad = repo.commit("ticker v3 with a failing healthcheck")
        seen = {}

        def rolled_back():
            st = status()["stacks"][tick]
            if st["last_attempted_revision"] != bad:
                return None
            if st["sync_status"] == "Failed":
                seen["failed"] = st
            # after the Failed pass, the next polls report Stalled (same content: not retried)
            return st if st["sync_status"] in ("Failed", "Stalled") else None

        wait_for(f"{tick} rolled back at {bad[:12]}", rolled_back, diag, every_s=0.25)
        wait_for(f"{tick} reported Stalled on the next poll",
                 lambda: status()["stacks"][tick]["sync_status"] == "Stalled", diag)
        phase("3. broken update rolled back, then Stalled")
        st = status()["stacks"][tick]
        failed = seen.get("failed")
        history = [(h["revision"], h["result"]) for h in st["history"]]
        print(f"[e2e] Failed state seen while polling: {failed is not None}; history {history}",
              file=sys.stderr)
        if failed is not None:
            assert failed["reason"] == "RolledBack" and failed["health_status"] == "RolledBack", failed
            assert bad[:12] in failed["last_error"] and failed["last_applied_revision"] == sha2, failed
        # one history entry per outcome: the Failed pass and the Stalled polls after it are one
        assert history.count((bad, "RolledBack")) == 1, history
        assert st["reason"] == "RolledBack" and bad[:12] in st["last_error"], st
        svc = service_inspect(f"{tick}_ticker")
        assert svc.get("UpdateStatus", {}).get("State") == "rollback_completed", svc.get("UpdateStatus")
        cspec = svc["Spec"]["TaskTemplate"]["ContainerSpec"]
        assert "Healthcheck" not in cspec and "MESSAGE=v2" in cspec["Env"], cspec
        assert cspec["Image"] == good_spec["TaskTemplate"]["ContainerSpec"]["Image"]
        # the old spec's task runs again (just after rollback_completed it may still be starting)
        wait_for(f"{tick}_ticker's rolled-back task running",
                 lambda: len(running_tasks(f"{tick}_ticker")) == 1,
                 lambda: docker("service", "ps", "--no-trunc", f"{tick}_ticker", check=False))
        assert service_versions([web]) == web_before, "the built stack was touched"
        assert status()["stacks"][web]["sync_status"] == "Synced"

        # -- 4. /metrics from the host --------------------------------------------------------
        code, text = http_get(kport, "/metrics")
        assert code == 200, text[:300]
        m = metric_samples(text)
        assert (sample(m, "keelson_rollouts_total", stack=tick, result="completed") or 0) >= 1, \
            [k for k in m if k[0] == "keelson_rollouts_total"]
        assert sample(m, "keelson_rollouts_total", stack=tick, result="rolled_back") == 1
        assert sample(m, "keelson_rollbacks_total", stack=tick) == 1
        assert (sample(m, "keelson_rollouts_total", stack=web, result="completed") or 0) >= 1
        assert sample(m, "keelson_source_revision_info", revision=bad, ref="main") == 1, \
            [k for k in m if k[0] == "keelson_source_revision_info"]
        infos = {dict(k[1])["stack"]: dict(k[1]) for k in m if k[0] == "keelson_stack_info"}
        assert infos[tick]["sync_status"] in ("Failed", "Stalled"), infos
        assert infos[web]["sync_status"] == "Synced" and infos[web]["health_status"] == "Healthy", infos
        assert set(infos) == {tick, web}, infos  # KEELSON_STACKS: nobody else's stacks

        # -- 5. kill the controller: a new task resumes from Swarm labels, writes nothing ----
        wait_for("all services settled", lambda: all(
            running_tasks(s) for s in (f"{tick}_ticker", f"{web}_web")), diag)
        before = service_versions([tick, web])
        assert set(before) == {f"{tick}_ticker", f"{web}_web"}, before
        cid = docker("ps", "-q", "--filter", f"label=com.docker.swarm.task.id={first_task}").strip()
        assert cid, f"no container for task {first_task}"
        docker("kill", cid)

        def new_task():
            # Starting counts: the process serves HTTP before its first health check passes
            rows = [r for r in running_tasks(keelson_svc, ("Starting", "Running"))
                    if r[0] != first_task]
            return rows[0] if rows else None

        second_task, node2, _ = wait_for("Swarm to start a new keelson task", new_task, diag)
        phase("5. new task started after docker kill")
        assert docker("node", "inspect", "--format", "{{.Spec.Role}}", node2).strip() == "manager"

        def passes_done(n: int):
            doc = status()
            return doc if doc["pass"]["count"] >= n else None

        # the old container is dead: whatever answers on the port is the new task
        doc = wait_for("the new task's first pass", lambda: passes_done(1), diag)
        phase(f"5b. new task answered after pass {doc['pass']['count']}")
        assert service_versions([tick, web]) == before, "the restarted Keelson redeployed"
        # and a few more polls later, still nothing retried
        doc = wait_for("two more passes of the new task", lambda: passes_done(3), diag)
        after = service_versions([tick, web])
        assert after == before, (before, after)
        st = doc["stacks"][tick]
        assert st["sync_status"] == "Stalled" and st["reason"] == "RolledBack", st
        assert st["last_attempted_revision"] == bad and bad[:12] in st["last_error"], st
        assert st["last_applied_revision"] == sha2, st
        assert doc["stacks"][web]["sync_status"] == "Synced", doc["stacks"][web]
        assert doc["source"]["revision"] == bad
        m2 = metric_samples(http_get(kport, "/metrics")[1])
        writes = sum(v for (n, _), v in m2.items() if n == "keelson_swarm_writes_total")
        assert writes == 0, [(k, v) for k, v in m2.items() if k[0] == "keelson_swarm_writes_total"]
        assert (sample(m2, "keelson_rollouts_total", stack=tick, result="rolled_back") or 0) == 0
        print(f"[e2e] new task {second_task[:12]}: {doc['pass']['count']} passes, 0 writes, "
              f"versions unchanged {after}", file=sys.stderr)
    finally:
        # Keelson first (so nothing redeploys what we remove), then the stacks it made
        remove_stacks([ks])
        remove_stacks([tick, web])
        for _ in range(30):
            if subprocess.run(["docker", "volume", "rm", f"{ks}_registry-data"],
                              capture_output=True).returncode == 0 or not docker(
                    "volume", "ls", "-q", "--filter", f"name={ks}_registry-data", check=False).strip():
                break
            time.sleep(1)
        print(f"[e2e] total {time.monotonic() - started:.0f}s", file=sys.stderr)
