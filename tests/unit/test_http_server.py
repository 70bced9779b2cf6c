"""StatusServer over real HTTP on 127.0.0.1 (ephemeral port), and the webhook checks."""
import hashlib
import hmac
import http.client
import json
import socket
import threading

import pytest
from prometheus_client import CollectorRegistry

from controller.errors import ConfigError
from controller.http.server import StatusServer, parse_listen
from controller.http.webhooks import verify_webhook, webhook_sender
from controller.model.status import StackStatus
from controller.telemetry.metrics import MetricsRecorder

SECRET = "s3cret"
BODY = b'{"ref":"refs/heads/main","after":"abc"}'


class Harness:
    """A started server plus the state its callbacks read and write."""

    def __init__(self, secret="", listen="127.0.0.1:0", **server_kw):
        self.metrics = MetricsRecorder(registry=CollectorRegistry())
        self.is_ready = False
        self.wakes = 0
        self.status_doc = {"revision": "abc", "stacks": [StackStatus(name="web")]}
        self.fail_status = False
        self.server = StatusServer(listen, metrics=self.metrics, status=self.status,
                                   ready=lambda: self.is_ready, on_webhook=self.wake,
                                   webhook_secret=secret, **server_kw)

    def status(self):
        if self.fail_status:
            raise RuntimeError("boom")
        return self.status_doc

    def wake(self):
        self.wakes += 1

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=5)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()


@pytest.fixture
def harness():
    h = Harness()
    h.server.start()
    yield h
    h.server.stop()


@pytest.fixture
def secured():
    h = Harness(secret=SECRET)
    h.server.start()
    yield h
    h.server.stop()


def github_sig(body, secret=SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_binds_ephemeral_port(harness):
    assert harness.server.port > 0


def test_metrics(harness):
    harness.metrics.reconcile_finished("success", 1.5)
    status, headers, body = harness.request("GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert b'keelson_reconcile_total{result="success"} 1.0' in body


def test_healthz_and_readyz(harness):
    assert harness.request("GET", "/healthz")[::2] == (200, b"ok\n")
    assert harness.request("GET", "/readyz")[0] == 503
    harness.is_ready = True
    assert harness.request("GET", "/readyz")[0] == 200


def test_readyz_check_that_raises_is_not_ready(harness):
    harness.server.ready = lambda: 1 / 0
    assert harness.request("GET", "/readyz")[0] == 503


def test_api_status_json(harness):
    status, headers, body = harness.request("GET", "/api/status?verbose=1")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["revision"] == "abc"
    assert doc["stacks"][0]["name"] == "web"  # dataclasses serialised as objects


def test_api_status_failure_is_500_and_server_lives(harness):
    harness.fail_status = True
    assert harness.request("GET", "/api/status")[0] == 500
    harness.fail_status = False
    assert harness.request("GET", "/api/status")[0] == 200


def test_head(harness):
    status, headers, body = harness.request("HEAD", "/healthz")
    assert status == 200 and body == b"" and headers["Content-Length"] == "3"


def test_unknown_path_404_and_wrong_method_405(harness):
    assert harness.request("GET", "/nope")[0] == 404
    assert harness.request("POST", "/nope", body=b"x")[0] == 404
    status, headers, _ = harness.request("POST", "/metrics", body=b"x")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, headers, _ = harness.request("GET", "/hooks/git")
    assert status == 405 and headers["Allow"] == "POST"
    assert harness.request("DELETE", "/api/status")[0] == 405


@pytest.mark.parametrize("path", ["/hooks/git", "/api/webhook"])
def test_webhook_without_secret_is_refused(harness, path):
    status, _, body = harness.request("POST", path, body=BODY)
    assert status == 401 and "KEELSON_WEBHOOK_SECRET_FILE" in json.loads(body)["error"]
    assert harness.wakes == 0


@pytest.mark.parametrize("path", ["/hooks/git", "/api/webhook"])
def test_webhook_unsigned_allowed_wakes_loop(path):
    h = Harness(webhook_allow_unsigned=True)
    h.server.start()
    try:
        status, _, body = h.request("POST", path, body=BODY)
        assert status == 202 and json.loads(body) == {"status": "queued"}
        assert h.request("POST", path, body=BODY)[0] == 202  # unsigned: bodies are no replay key
        assert h.wakes == 2
    finally:
        h.server.stop()


def test_webhook_github_signature(secured):
    assert secured.request("POST", "/hooks/git", body=BODY)[0] == 401
    bad = {"X-Hub-Signature-256": github_sig(BODY, "other")}
    assert secured.request("POST", "/hooks/git", body=BODY, headers=bad)[0] == 401
    assert secured.wakes == 0
    good = {"X-Hub-Signature-256": github_sig(BODY), "X-GitHub-Event": "push"}
    assert secured.request("POST", "/hooks/git", body=BODY, headers=good)[0] == 202
    assert secured.wakes == 1


def test_webhook_gitlab_and_gitea(secured):
    assert secured.request("POST", "/hooks/git", body=BODY,
                           headers={"X-Gitlab-Token": "wrong"})[0] == 401
    assert secured.request("POST", "/hooks/git", body=BODY,
                           headers={"X-Gitlab-Token": SECRET})[0] == 202
    other = BODY + b" "
    gitea = hmac.new(SECRET.encode(), other, hashlib.sha256).hexdigest()
    assert secured.request("POST", "/api/webhook", body=other,
                           headers={"X-Gitea-Signature": gitea})[0] == 202
    assert secured.wakes == 2


def test_webhook_bad_input_never_crashes(secured):
    assert secured.request("POST", "/hooks/git", body=BODY,
                           headers={"X-Hub-Signature-256": "garbage"})[0] == 401
    assert secured.request("POST", "/hooks/git", body=BODY,
                           headers={"X-Gitlab-Token": "t\u00e9st".encode("latin-1")})[0] == 401
    assert secured.request("POST", "/hooks/git", body=b"",
                           headers={"Content-Length": "nope"})[0] == 400
    assert secured.request("POST", "/hooks/git", body=b"",
                           headers={"Content-Length": str(10 ** 9)})[0] == 413
    # Raw garbage on the socket: the server answers 400 or closes, and keeps serving.
    with socket.create_connection(("127.0.0.1", secured.server.port), timeout=5) as sock:
        sock.sendall(b"\x00\xffnot http at all\r\n\r\n")
        sock.recv(1024)
    assert secured.request("GET", "/healthz")[0] == 200


def test_concurrent_requests(harness):
    results = []

    def hit():
        results.append(harness.request("GET", "/metrics")[0])

    threads = [threading.Thread(target=hit) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 20


def test_stop_is_idempotent_and_frees_port():
    h = Harness()
    h.server.start()
    port = h.server.port
    h.server.stop()
    h.server.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_bind_failure_is_config_error(harness):
    other = StatusServer(f"127.0.0.1:{harness.server.port}", metrics=harness.metrics,
                         status=dict, ready=lambda: True, on_webhook=lambda: None)
    with pytest.raises(ConfigError):
        other.start()


def test_parse_listen():
    assert parse_listen("0.0.0.0:9090") == ("0.0.0.0", 9090)
    assert parse_listen(":9090") == ("0.0.0.0", 9090)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("9090", "host:http", "host:70000"):
        with pytest.raises(ConfigError):
            parse_listen(bad)


def test_verify_webhook_pure():
    assert not verify_webhook({}, BODY, "")
    assert verify_webhook({}, BODY, "", allow_unsigned=True)
    assert not verify_webhook({}, BODY, SECRET)
    assert not verify_webhook({}, BODY, SECRET, allow_unsigned=True)  # a secret always wins
    assert verify_webhook({"x-hub-signature-256": github_sig(BODY).upper().replace("SHA256", "sha256")},
                          BODY, SECRET)
    assert not verify_webhook({"X-Hub-Signature-256": github_sig(BODY + b" ")}, BODY, SECRET)
    assert not verify_webhook({"X-Gitea-Signature": ""}, BODY, SECRET)
    assert not verify_webhook({"X-Gitlab-Token": ""}, BODY, SECRET)
    assert webhook_sender({"X-GitHub-Event": "push"}) == "github"
    assert webhook_sender({"X-Gitlab-Event": "Push Hook"}) == "gitlab"
    assert webhook_sender({"X-Gitea-Event": "push", "X-Hub-Signature-256": "x"}) == "gitea"
    assert webhook_sender({}) == "unknown"
