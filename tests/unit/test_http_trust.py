"""Issue 7, the HTTP side, in process: the API token rule, replay memory, the connection bound
and stalled clients. Real sockets on an ephemeral port; the callbacks are plain functions."""
import hashlib
import logging
import socket
import time

import pytest

from controller.http import handler as handler_mod
from controller.http.auth import ApiAccess, api_access, bearer_token, is_loopback_host
from controller.http.webhooks import DeliveryMemory, replay_keys
from tests.unit.test_http_server import BODY, SECRET, Harness, github_sig

TOKEN = "t0ken-for-tests-0123456789"


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.5.6.7", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("::ffff:127.0.0.1", True),
    ("0.0.0.0", False), ("", False), ("::", False), ("10.0.0.5", False),
    ("192.168.1.10", False), ("keelson.example.com", False), ("fe80::1%eth0", False),
])
def test_is_loopback_host(host, loopback):
    assert is_loopback_host(host) is loopback


def test_bearer_token_and_access_rule():
    assert bearer_token({"authorization": "bearer abc"}) == "abc"
    assert bearer_token({"Authorization": "Basic abc"}) == ""
    assert bearer_token({}) == ""
    ok = {"Authorization": f"Bearer {TOKEN}"}
    assert api_access({}, "", loopback_bind=True) is ApiAccess.ALLOWED
    assert api_access({}, "", loopback_bind=False) is ApiAccess.NO_TOKEN_CONFIGURED
    assert api_access(ok, "", loopback_bind=False) is ApiAccess.NO_TOKEN_CONFIGURED
    assert api_access(ok, TOKEN, loopback_bind=False) is ApiAccess.ALLOWED
    assert api_access({"Authorization": "Bearer wrong"}, TOKEN, loopback_bind=False) is ApiAccess.DENIED
    assert api_access({"Authorization": "Bearer"}, TOKEN, loopback_bind=False) is ApiAccess.DENIED
    assert api_access({"Authorization": "Bearer t\u00e9"}, TOKEN, loopback_bind=False) is ApiAccess.DENIED


def test_replay_keys_and_memory():
    gh = {"X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    assert replay_keys(gh, b"{}", signed=False) == ("id:72d3162e-cc78-11e3-81ab-4c9367dc0958",)
    assert replay_keys({"X-Gitlab-Event-UUID": "u1"}, b"{}", signed=False) == ("id:u1",)
    assert replay_keys({"X-Gitea-Delivery": "g1"}, b"{}", signed=False) == ("id:g1",)
    assert replay_keys({}, b"{}", signed=False) == ()
    signed = replay_keys({}, b"{}", signed=True)
    assert signed == ("body:" + hashlib.sha256(b"{}").hexdigest(),)
    assert len(replay_keys({"X-GitHub-Delivery": "x" * 1000}, b"", signed=False)[0]) == 3 + 128
    mem = DeliveryMemory(capacity=2)
    assert not mem.seen(("id:a",)) and mem.seen(("id:a",))
    assert not mem.seen(())  # nothing to remember: never a replay
    assert not mem.seen(("id:b",)) and not mem.seen(("id:c",))
    assert not mem.seen(("id:a",))  # evicted: the memory is bounded


@pytest.fixture
def wide():
    """A server bound to 0.0.0.0 (beyond loopback) with an API token and a webhook secret."""
    h = Harness(secret=SECRET, listen="0.0.0.0:0", api_token=TOKEN)
    h.server.start()
    yield h
    h.server.stop()


def test_status_needs_token_beyond_loopback(wide):
    status, headers, _ = wide.request("GET", "/api/status")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert wide.request("GET", "/api/status", headers={"Authorization": "Bearer nope"})[0] == 401
    assert wide.request("HEAD", "/api/status")[0] == 401
    assert wide.request("GET", "/api/status",
                        headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
    for open_path in ("/metrics", "/healthz"):
        assert wide.request("GET", open_path)[0] == 200
    assert wide.request("GET", "/readyz")[0] == 503  # open, just not ready


def test_status_without_configured_token_is_401_beyond_loopback():
    h = Harness(listen="0.0.0.0:0")
    h.server.start()
    try:
        status, _, body = h.request("GET", "/api/status", headers={"Authorization": "Bearer x"})
        assert status == 401 and b"KEELSON_API_TOKEN_FILE" in body
        assert h.request("GET", "/healthz")[0] == 200
    finally:
        h.server.stop()


def test_replayed_delivery_is_409(wide):
    headers = {"X-Hub-Signature-256": github_sig(BODY), "X-GitHub-Delivery": "d-1"}
    assert wide.request("POST", "/hooks/git", body=BODY, headers=headers)[0] == 202
    assert wide.request("POST", "/hooks/git", body=BODY, headers=headers)[0] == 409
    # the same signed body under a new id is the same delivery (the id header is not signed)
    assert wide.request("POST", "/hooks/git", body=BODY,
                        headers=dict(headers, **{"X-GitHub-Delivery": "d-2"}))[0] == 409
    other = BODY + b"\n"
    assert wide.request("POST", "/hooks/git", body=other,
                        headers={"X-Hub-Signature-256": github_sig(other),
                                 "X-GitHub-Delivery": "d-3"})[0] == 202
    assert wide.wakes == 2


def test_connection_limit_answers_503_and_recovers():
    h = Harness(max_connections=2)
    h.server.start()
    held = []
    try:
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", h.server.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            held.append(s)
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", h.server.port), timeout=5) as s:
            assert s.recv(100).startswith(b"HTTP/1.1 503")
        for s in held:
            s.close()
        held.clear()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if h.request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert h.request("GET", "/healthz")[0] == 200
    finally:
        for s in held:
            s.close()
        h.server.stop()


def test_stalled_body_and_disconnect_log_no_traceback(monkeypatch, caplog):
    monkeypatch.setattr(handler_mod.RequestHandler, "timeout", 0.5)
    h = Harness(secret=SECRET)
    h.server.start()
    caplog.set_level(logging.DEBUG)
    try:
        with socket.create_connection(("127.0.0.1", h.server.port), timeout=5) as s:
            s.sendall(b"POST /hooks/git HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\"")
            assert s.recv(100) == b""  # closed by the server after the timeout, no answer
        with socket.create_connection(("127.0.0.1", h.server.port), timeout=5) as s:
            s.sendall(b"POST /hooks/git HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        time.sleep(1.0)  # the reset connection's thread has finished
        assert h.request("GET", "/healthz")[0] == 200
    finally:
        h.server.stop()
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
    assert any("webhook body not received" in r.getMessage() for r in caplog.records)
