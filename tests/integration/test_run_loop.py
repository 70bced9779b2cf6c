"""`keelson run` as a long-running process: file events and webhooks start passes at once, the
HTTP endpoints answer, SIGTERM stops it cleanly. Real subprocess, git repos, swarm and registry.

Every run uses ``--interval 300``: a pass seen within a few seconds of a change cannot be a poll.
"""
from __future__ import annotations

import json
import pathlib
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from typing import Callable, Optional, Tuple

import pytest

from tests.integration.conftest import ROOT
from tests.integration.keelson_app import tools_stack, versions
from tests.integration.test_cli import KEELSON, clean_env

pytestmark = pytest.mark.integration

POLL_S = 300  # --interval: far longer than any wait below


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes = b"", headers: Optional[dict] = None) -> Tuple[int, bytes]:
    """One HTTP request; returns (status, body) for any status (errors included)."""
    req = urllib.request.Request(url, data=body if method == "POST" else None, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(what: str, check: Callable[[], object], timeout_s: float, every_s: float = 0.25):
    """Call ``check`` until it returns something truthy (returned); fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError, KeyError) as exc:  # not listening yet, half-written JSON
            last = exc
        else:
            if last:
                return last
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")


class KeelsonRun:
    """A ``keelson run`` subprocess with its HTTP listener on a free port (loopback by default).

    Args:
        repo: the --repo value. stacks: stack names to limit it to (never run without them).
        tmp_path: test folder (workdir and log file go there). extra_args: more options.
        listen_host: the --listen host; ``0.0.0.0`` is reached through 127.0.0.1.
        token: sent as ``Authorization: Bearer`` by ``get`` when not empty.
    """

    def __init__(self, repo: str, stacks, tmp_path: pathlib.Path, extra_args=(), env_extra=None,
                 listen_host: str = "127.0.0.1", token: str = ""):
        assert stacks, "always limit keelson to the test's own stacks"
        self.port = free_port()
        self.token = token
        connect = "127.0.0.1" if listen_host in ("0.0.0.0", "") else listen_host
        self.base = f"http://{connect}:{self.port}"
        self.log_path = tmp_path / f"keelson-{self.port}.log"
        args = ["run", "--repo", repo, "--interval", str(POLL_S), "--listen",
                f"{listen_host}:{self.port}"]
        for s in stacks:
            args += ["--stack", s]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([KEELSON or "keelson", *args, *extra_args],
                                     env=clean_env(tmp_path, **(env_extra or {})), cwd=str(ROOT),
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text()

    def get(self, path: str) -> Tuple[int, bytes]:
        """GET ``path`` from the process's HTTP listener."""
        assert self.proc.poll() is None, f"keelson exited {self.proc.returncode}:\n{self.log()}"
        return http("GET", self.base + path,
                    headers={"Authorization": f"Bearer {self.token}"} if self.token else None)

    def status(self) -> dict:
        """The parsed ``/api/status`` document."""
        code, body = self.get("/api/status")
        assert code == 200, body
        return json.loads(body)

    def passes(self) -> int:
        """Finished passes so far (``/api/status`` pass.count)."""
        return int(self.status()["pass"]["count"])

    def metrics(self) -> str:
        """The ``/metrics`` body."""
        code, body = self.get("/metrics")
        assert code == 200, body
        return body.decode()

    def wait_ready(self, timeout_s: float = 180) -> dict:
        """Wait for /readyz 200 (the first pass finished); returns /api/status then."""
        wait_for("/readyz 200", lambda: self.get("/readyz")[0] == 200, timeout_s)
        return self.status()

    def wait_passes(self, more_than: int, timeout_s: float, what: str = "") -> dict:
        """Wait until more than ``more_than`` passes have finished and none is running."""
        def done():
            st = self.status()
            return st if st["pass"]["count"] > more_than and not st["pass"]["running"] else None
        return wait_for(what or f"pass #{more_than + 1}", done, timeout_s)

    def terminate(self, timeout_s: float = 60) -> int:
        """SIGTERM, then wait for the exit code (SIGKILL and fail if it hangs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"keelson did not stop on SIGTERM:\n{self.log()}")
        finally:
            self._log.close()

    def close(self) -> None:
        """Make sure the process is gone (used in ``finally``)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self._log.closed:
            self._log.close()


def stack_revision(st: dict, stack: str) -> Optional[str]:
    """The revision applied to ``stack`` per /api/status, when it is Synced."""
    s = st["stacks"].get(stack)
    return s["last_applied_revision"] if s and s["sync_status"] == "Synced" else None


def replicas(engine, service: str) -> int:
    """Spec'd replica count of a service."""
    return engine.services.get(service).attrs["Spec"]["Mode"]["Replicated"]["Replicas"]


def test_run_on_bare_repo_deploys_pushed_commit_via_watchdog(engine, registry, manifest_repo,
                                                             stack_names, tmp_path):
    """Local bare repo: first pass deploys; /healthz, /readyz, /api/status answer; a pushed
    commit is deployed within seconds (not by the 300 s poll); a broken stack shows its error in
    /api/status; SIGTERM exits 0."""
    tools, bad = stack_names("runt"), stack_names("runb")
    manifest_repo.write(f"manifests/{tools}/stack.yml", tools_stack(registry))
    sha1 = manifest_repo.commit("tools")
    run = KeelsonRun(manifest_repo.url, [tools, bad], tmp_path)
    try:
        assert wait_for("/healthz", lambda: run.get("/healthz")[0] == 200, 30)
        st = run.wait_ready()
        assert st["source"]["revision"] == sha1 and st["source"]["ref"] == "main"
        assert run.get("/healthz") == (200, b"ok\n")
        s = st["stacks"][tools]
        assert (s["sync_status"], s["last_applied_revision"], s["last_error"]) == ("Synced", sha1, "")
        assert replicas(engine, f"{tools}_ticker") == 1
        first = st["pass"]["count"]

        # a pushed commit: watchdog sees the ref move, a pass deploys it long before any poll
        manifest_repo.write(f"manifests/{tools}/stack.yml", tools_stack(registry, replicas=2))
        manifest_repo.write(f"manifests/{bad}/stack.yml", "services:\n  a:\n    image: [oops\n")
        t0 = time.monotonic()
        sha2 = manifest_repo.commit("scale ticker, add a broken stack")
        st = wait_for("the pushed commit applied",
                      lambda: (lambda d: d if stack_revision(d, tools) == sha2 else None)(run.status()), 30)
        took = time.monotonic() - t0
        assert took < 30, took
        assert replicas(engine, f"{tools}_ticker") == 2
        assert st["source"]["revision"] == sha2
        st = run.wait_passes(first, 10)
        b = st["stacks"][bad]
        assert b["sync_status"] == "Failed" and "stack.yml" in b["last_error"], b
        assert b["last_applied_revision"] == "" and b["last_attempted_revision"] == sha2
        assert "pass starting (file" in run.log()  # started by a file event, not a poll

        # passes do not wake the watcher themselves: the count stays put without changes
        settled = run.wait_passes(first, 10)["pass"]["count"]
        time.sleep(4)
        assert run.passes() == settled, run.log()[-3000:]

        assert run.terminate() == 0, run.log()[-3000:]
        assert "stopping" in run.log()
    finally:
        run.close()


def test_run_on_plain_folder_saved_file_starts_a_pass(engine, registry, stack_names, tmp_path):
    """Plain folder: revision is a content hash; saving a file starts a pass at once and the
    change is deployed; SIGTERM exits 0."""
    tools = stack_names("runf")
    folder = tmp_path / "folder"
    stack_file = folder / "manifests" / tools / "stack.yml"
    stack_file.parent.mkdir(parents=True)
    stack_file.write_text(tools_stack(registry))
    run = KeelsonRun(str(folder), [tools], tmp_path)
    try:
        st = run.wait_ready()
        rev1 = st["source"]["revision"]
        assert rev1.startswith("dir-") and st["source"]["ref"] == "folder"
        assert stack_revision(st, tools) == rev1
        assert replicas(engine, f"{tools}_ticker") == 1
        # reading the folder (every pass hashes it) does not wake the loop
        settled = run.wait_passes(0, 10)["pass"]["count"]
        time.sleep(3)
        assert run.passes() == settled

        t0 = time.monotonic()
        stack_file.write_text(tools_stack(registry, replicas=2))
        st = wait_for("the saved file applied",
                      lambda: (lambda d: d if (stack_revision(d, tools) or rev1) != rev1 else None)(run.status()), 30)
        assert time.monotonic() - t0 < 30
        assert st["source"]["revision"].startswith("dir-") and st["source"]["revision"] != rev1
        assert replicas(engine, f"{tools}_ticker") == 2
        assert run.terminate() == 0, run.log()[-3000:]
    finally:
        run.close()


def test_webhook_wakes_the_loop_on_file_url(engine, registry, manifest_repo, stack_names, tmp_path):
    """``--repo file://…``: POST /hooks/git (and /api/webhook) answers 202 and a pass follows at
    once (counted in /api/status); the pass is a no-op on an unchanged repo. Every local form of
    --repo is also watched, so the webhook is proven by the pass count, not by a new commit."""
    tools = stack_names("runw")
    manifest_repo.write(f"manifests/{tools}/stack.yml", tools_stack(registry))
    sha = manifest_repo.commit("tools")
    run = KeelsonRun(f"file://{manifest_repo.url}", [tools], tmp_path,
                     env_extra={"KEELSON_WEBHOOK_ALLOW_UNSIGNED": "true"})
    try:
        st = run.wait_ready()
        assert st["source"]["revision"] == sha and stack_revision(st, tools) == sha
        n = run.wait_passes(0, 10)["pass"]["count"]
        before = versions(engine, tools)
        for path in ("/hooks/git", "/api/webhook"):
            code, body = http("POST", run.base + path, b"{}")
            assert code == 202 and json.loads(body) == {"status": "queued"}, (code, body)
            st = run.wait_passes(n, 15, f"a pass after POST {path}")
            n = st["pass"]["count"]
            assert st["pass"]["last_result"] == "noop"
        assert versions(engine, tools) == before  # a no-op pass writes nothing
        assert "pass starting (webhook" in run.log()
        assert http("GET", run.base + "/hooks/git")[0] == 405
        assert run.get("/nope")[0] == 404
        assert run.terminate() == 0, run.log()[-3000:]
    finally:
        run.close()


def test_run_without_docker_exits_1_with_one_line(tmp_path):
    """DOCKER_HOST pointing nowhere: `run` refuses to start (exit 1) with a line naming it."""
    folder = tmp_path / "f"
    (folder / "manifests").mkdir(parents=True)
    run = KeelsonRun(str(folder), ["never-deployed"], tmp_path,
                     env_extra={"DOCKER_HOST": "unix:///nonexistent"})
    try:
        assert run.proc.wait(60) == 1
        assert "unix:///nonexistent" in run.log() and "Traceback" not in run.log()
    finally:
        run.close()
