"""Issue 7, the HTTP side, against a real ``keelson run`` subprocess over real HTTP: the API token
beyond loopback, webhook signatures and replays, the trigger gap and failure backoff, stalled
and numerous clients, and credentials planted in errors and build logs.

"Beyond loopback" is decided by the address Keelson binds, not by the client's address (see
controller/http/auth.py): a ``0.0.0.0`` bind asks for the token even from 127.0.0.1, and so does
a bind to this machine's non-loopback address.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import subprocess
import time
from typing import List, Optional

import pytest

from tests.integration.test_cli import KEELSON, clean_env
from tests.integration.test_run_loop import KeelsonRun, free_port, http, wait_for
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration

TOKEN = "api-token-for-the-test-6f1c2b"
SECRET = "webhook-secret-for-the-test"
# Credential-shaped values planted where Keelson will echo them; none may come out.
PLANTED_URL_PASSWORD = "Pl4ntedUrlPassw0rd"
PLANTED_GITHUB = "ghp_" + "Pl4ntedGithubToken0123456789abcdef"
PLANTED_PASSWORD = "Pl4ntedBuildPassw0rd"
PLANTED_IMAGE_PASSWORD = "Pl4ntedImagePassw0rd"


def non_loopback_ipv4() -> Optional[str]:
    """An IPv4 address of this machine that is not loopback (the default route's), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.255", 9))  # no packet is sent: this only picks a source address
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr


def empty_folder_repo(tmp_path, name: str = "repo") -> str:
    """A plain-folder repo with an empty manifests/ (passes take well under a second)."""
    folder = tmp_path / name
    (folder / "manifests").mkdir(parents=True)
    return str(folder)


def sign(body: bytes) -> str:
    """GitHub's X-Hub-Signature-256 for ``body`` under SECRET."""
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def threads_of(pid: int) -> int:
    """The kernel's thread count of a process (/proc/<pid>/status ``Threads:``)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads: line")


def stop_all(runs: List[KeelsonRun]) -> None:
    """Terminate every run (each must exit 0) and close it."""
    for run in runs:
        try:
            assert run.terminate() == 0, run.log()[-3000:]
        finally:
            run.close()


def test_api_token_beyond_loopback(stack_names, tmp_path):
    """0.0.0.0 without a token file: the server starts, says how to set a token, /api/status is 401
    (even from 127.0.0.1, with any bearer), probes and metrics stay open. Bound to this machine's
    non-loopback address (or 0.0.0.0 when it has none) with KEELSON_API_TOKEN_FILE: 401 without or
    with a wrong token, 200 with the right one."""
    repo = empty_folder_repo(tmp_path)
    token_file = tmp_path / "api_token"
    token_file.write_text(TOKEN + "\n")
    wide_host = non_loopback_ipv4() or "0.0.0.0"
    locked = KeelsonRun(repo, [stack_names("apil")], tmp_path, listen_host="0.0.0.0")
    guarded = KeelsonRun(repo, [stack_names("apig")], tmp_path, listen_host=wide_host,
                         env_extra={"KEELSON_API_TOKEN_FILE": str(token_file)})
    try:
        for run in (locked, guarded):
            wait_for("/readyz 200", lambda: run.get("/readyz")[0] == 200, 60)
            assert run.get("/healthz") == (200, b"ok\n")
            code, body = run.get("/metrics")
            assert code == 200 and b"keelson_reconcile_total" in body

        code, body = locked.get("/api/status")
        assert code == 401 and b"KEELSON_API_TOKEN_FILE" in body, (code, body)
        locked.token = TOKEN  # a token the server does not have proves nothing
        assert locked.get("/api/status")[0] == 401
        assert "KEELSON_API_TOKEN_FILE" in locked.log() and "api locked" in locked.log()

        url = guarded.base + "/api/status"
        assert http("GET", url)[0] == 401
        assert http("GET", url, headers={"Authorization": "Bearer wrong-token"})[0] == 401
        assert http("GET", url, headers={"Authorization": f"Basic {TOKEN}"})[0] == 401
        code, body = http("GET", url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert code == 200 and json.loads(body)["pass"]["count"] >= 1
        assert "api protected" in guarded.log()
        assert TOKEN not in guarded.log()
    finally:
        stop_all([locked, guarded])


def test_webhook_signatures_replays_and_gap(stack_names, tmp_path):
    """With a secret: an unsigned POST is 401 and starts nothing; a signed one is 202 and starts a
    pass, held until KEELSON_MIN_PASS_GAP after the previous one; the same delivery again is 409,
    and so is its signed body under a new delivery id. Without a secret POSTs are refused (and
    the log says so at start) unless KEELSON_WEBHOOK_ALLOW_UNSIGNED=true (logged loudly). On a
    loopback bind /api/status needs no token."""
    repo = empty_folder_repo(tmp_path)
    secret_file = tmp_path / "webhook_secret"
    secret_file.write_text(SECRET + "\n")
    signed = KeelsonRun(repo, [stack_names("whs")], tmp_path, env_extra={
        "KEELSON_WEBHOOK_SECRET_FILE": str(secret_file), "KEELSON_MIN_PASS_GAP": "4"})
    refusing = KeelsonRun(repo, [stack_names("whr")], tmp_path)
    allowing = KeelsonRun(repo, [stack_names("wha")], tmp_path,
                          env_extra={"KEELSON_WEBHOOK_ALLOW_UNSIGNED": "true"})
    try:
        for run in (signed, refusing, allowing):
            run.wait_ready(60)
        st = signed.wait_passes(0, 10)  # open on loopback: no token
        n, finished = st["pass"]["count"], st["pass"]["last_finished_at"]

        body = b'{"ref":"refs/heads/main","after":"1111111111111111111111111111111111111111"}'
        hook = signed.base + "/hooks/git"
        assert http("POST", hook, body)[0] == 401
        assert http("POST", hook, body, {"X-Hub-Signature-256": sign(b"other")})[0] == 401
        delivery = {"X-Hub-Signature-256": sign(body), "X-GitHub-Event": "push",
                    "X-GitHub-Delivery": "9a0e7c4e-0000-4000-8000-000000000001"}
        code, answer = http("POST", hook, body, delivery)
        assert code == 202 and json.loads(answer) == {"status": "queued"}
        st = signed.wait_passes(n, 20, "the pass the signed webhook started")
        assert st["pass"]["count"] == n + 1
        # the webhook came right after a pass: its pass waited for the 4 s gap
        assert st["pass"]["last_finished_at"] - finished >= 4, st["pass"]
        assert "pass held" in signed.log() and "pass starting (webhook" in signed.log()

        assert http("POST", hook, body, delivery)[0] == 409  # the same delivery again
        renamed = dict(delivery, **{"X-GitHub-Delivery": "9a0e7c4e-0000-4000-8000-000000000002"})
        assert http("POST", hook, body, renamed)[0] == 409  # its signed body under a new id
        time.sleep(5)
        assert signed.passes() == n + 1, signed.log()[-2000:]  # none of them started a pass
        assert "replay" in signed.log()

        code, answer = http("POST", refusing.base + "/hooks/git", b"{}")
        assert code == 401 and "KEELSON_WEBHOOK_SECRET_FILE" in json.loads(answer)["error"]
        assert "webhooks refused: no webhook secret" in refusing.log()

        m = allowing.wait_passes(0, 10)["pass"]["count"]
        assert http("POST", allowing.base + "/hooks/git", b"{}")[0] == 202
        allowing.wait_passes(m, 20, "the pass an unsigned webhook started")
        assert "UNSIGNED WEBHOOKS ALLOWED" in allowing.log()
        assert re.search(r"level=warning .*UNSIGNED WEBHOOKS ALLOWED", allowing.log())
    finally:
        stop_all([signed, refusing, allowing])


def stalled_post(port: int, send_body: bytes = b'{"ref":') -> socket.socket:
    """A connection that announces a 1000-byte webhook body, sends a few bytes and stalls."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"POST /hooks/git HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 1000\r\n\r\n" + send_body)
    return s


def test_stalled_clients_and_many_connections(stack_names, tmp_path):
    """A client stalled mid-body does not delay other requests and, once timed out, costs one log
    line and no traceback; so does a client that resets mid-body. 150 connections at once (limit
    8) do not grow the thread count past the limit: the extra ones are answered 503, and the
    server serves normally once they close."""
    repo = empty_folder_repo(tmp_path)
    run = KeelsonRun(repo, [stack_names("stl")], tmp_path, env_extra={
        "KEELSON_HTTP_MAX_CONNECTIONS": "8", "KEELSON_WEBHOOK_ALLOW_UNSIGNED": "true"})
    held: List[socket.socket] = []
    try:
        run.wait_ready(60)
        stalled = stalled_post(run.port)
        t0 = time.monotonic()
        for path in ("/healthz", "/readyz", "/metrics", "/api/status"):
            assert run.get(path)[0] == 200
        assert time.monotonic() - t0 < 3
        reset = stalled_post(run.port, b"{")
        reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        reset.close()  # RST mid-body
        assert stalled.recv(100) == b""  # the server gives up after its 10 s socket timeout
        stalled.close()
        wait_for("the stalled webhook logged", lambda: "webhook body not received" in run.log(), 5)

        pid = run.proc.pid
        baseline = threads_of(pid)
        refused = 0
        for _ in range(150):
            s = socket.create_connection(("127.0.0.1", run.port), timeout=10)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            held.append(s)
        time.sleep(1.0)
        peak = threads_of(pid)
        for s in held:
            s.settimeout(0.2)
            try:
                if s.recv(64).startswith(b"HTTP/1.1 503"):
                    refused += 1
            except OSError:
                pass
        assert peak <= baseline + 8, (baseline, peak)
        assert refused >= 150 - 8 - 2, refused  # the rest were served (and stall)
        for s in held:
            s.close()
        held.clear()
        wait_for("the server serving again", lambda: run.get("/healthz")[0] == 200, 15)
        wait_for("connection threads gone", lambda: threads_of(pid) <= baseline + 1, 20)
        log = run.log()
        assert "Traceback" not in log and "exc=" not in log, log[-3000:]
        assert "http connection limit reached" in log
    finally:
        for s in held:
            s.close()
        stop_all([run])


FAILING_BUILD = f"""FROM busybox:latest
RUN echo "pushing with {PLANTED_GITHUB}" && echo "DB_PASSWORD={PLANTED_PASSWORD}" && exit 3
"""


def test_planted_credentials_never_leave(engine, registry, manifest_repo, stack_names, tmp_path):
    """Credentials planted where Keelson echoes them: a --repo URL with userinfo that cannot be
    fetched (also: its webhook triggers do not skip the failure backoff), a build that prints a
    GitHub token and a DB_PASSWORD before failing, an image reference with userinfo. Each error
    is reported (in /api/status and the log) with the credential masked; no planted value appears
    in any log line, status field, state-record label or `keelson sync` output."""
    dead_port = free_port()
    dead_repo = f"http://keelson:{PLANTED_URL_PASSWORD}@127.0.0.1:{dead_port}/team/deploy.git"
    unreachable = KeelsonRun(dead_repo, [stack_names("crd")], tmp_path, env_extra={
        "KEELSON_WEBHOOK_ALLOW_UNSIGNED": "true", "KEELSON_MIN_PASS_GAP": "0"})

    built, badimg = stack_names("crb"), stack_names("cri")
    manifest_repo.write(f"manifests/{built}/stack.yml", "services:\n  app:\n    build: ./ctx\n")
    manifest_repo.write(f"manifests/{built}/ctx/Dockerfile", FAILING_BUILD)
    manifest_repo.write(f"manifests/{badimg}/stack.yml",
                        f"services:\n  app:\n    image: https://bob:{PLANTED_IMAGE_PASSWORD}@example.com/x\n")
    manifest_repo.commit("stacks that echo credentials")
    builder = KeelsonRun(manifest_repo.url, [built, badimg], tmp_path,
                         env_extra={"KEELSON_REGISTRY": registry})
    planted = (PLANTED_URL_PASSWORD, PLANTED_GITHUB, PLANTED_PASSWORD, PLANTED_IMAGE_PASSWORD)
    try:
        # 1. the unreachable repo: the fetch error names the host, never the password
        st = wait_for("a failed fetch", lambda: (lambda d: d if d["source"]["error"] else None)(
            json.loads(unreachable.get("/api/status")[1])), 60)
        assert f"127.0.0.1:{dead_port}" in st["source"]["error"], st["source"]
        # failed passes back off: a storm of webhooks does not make them run back to back
        t0, n0 = time.monotonic(), unreachable.passes()
        while time.monotonic() - t0 < 6:
            assert http("POST", unreachable.base + "/hooks/git", b"{}")[0] == 202
            time.sleep(0.2)
        assert unreachable.passes() - n0 <= 3, unreachable.log()[-3000:]
        assert "failure backoff" in unreachable.log()

        # 2. the build log and the image reference
        st = builder.wait_ready(240)
        st = wait_for("both stacks failed", lambda: (lambda d: d if all(
            d["stacks"].get(s, {}).get("sync_status") == "Failed" for s in (built, badimg)) else None)(
            builder.status()), 120)
        b, i = st["stacks"][built], st["stacks"][badimg]
        assert b["reason"] == "ImageBuildFailed" and "***" in b["last_error"], b
        assert "pushing with ***" in b["last_error"] and "DB_PASSWORD=***" in b["last_error"], b
        assert "https://***@example.com/x" in i["last_error"], i

        # one stack only: `builder` (both stacks) holds the writer lease of its own selection,
        # and a one-shot sync of the same selection would wait for it (standby, issue 11)
        sync = subprocess.run([KEELSON or "keelson", "sync", "--repo", manifest_repo.url,
                               "--stack", built, "--json"],
                              env=clean_env(tmp_path / "sync", KEELSON_REGISTRY=registry),
                              cwd=str(ROOT), capture_output=True, text=True, timeout=300)
        assert sync.returncode == 1 and built in sync.stdout, sync.stdout + sync.stderr

        labels = json.dumps([c.attrs["Spec"].get("Labels", {}) for c in engine.configs.list(
            filters={"label": "io.keelson.state"})])
        texts = {"unreachable log": unreachable.log(),
                 "unreachable status": unreachable.get("/api/status")[1].decode(),
                 "builder log": builder.log(), "builder status": builder.get("/api/status")[1].decode(),
                 "sync output": sync.stdout + sync.stderr, "state labels": labels}
        for where, text in texts.items():
            for secret in planted:
                assert secret not in text, f"{secret} leaked into the {where}"
    finally:
        stop_all([unreachable, builder])
