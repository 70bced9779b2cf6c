"""Keelson's HTTP server: metrics, probes, status and the git webhook.

Routes:
    GET  /metrics       Prometheus text format.
    GET  /healthz       200 ``ok`` while the process serves (liveness).
    GET  /readyz        200 ``ready`` when ``ready()`` is true, else 503 (readiness).
    GET  /api/status    JSON from ``status()``.
    POST /hooks/git     (alias ``/api/webhook``) wakes the reconcile loop; 202, or 401 when a
                        secret is set and the request does not prove it (see webhooks.py).
Unknown paths give 404, known paths with another method 405 (with ``Allow``); HEAD works wherever
GET does. A failing callback gives 500 (or 503 for readiness), never a dead server. Standard
library only (``ThreadingHTTPServer``): a few requests a minute need nothing more.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Tuple

from controller.errors import ConfigError
from controller.http.webhooks import verify_webhook, webhook_sender
from controller.telemetry.metrics import MetricsRecorder

log = logging.getLogger(__name__)

MAX_WEBHOOK_BODY_BYTES = 4 * 1024 * 1024  # forges send well under 1 MiB; refuse floods
REQUEST_TIMEOUT_S = 10.0  # a client that stalls mid-request loses its thread after this

_GET_ROUTES = ("/metrics", "/healthz", "/readyz", "/api/status")
_POST_ROUTES = ("/hooks/git", "/api/webhook")


def parse_listen(listen: str) -> Tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` for IPv6; empty host = all interfaces).

    Args:
        listen: the listen address, e.g. ``0.0.0.0:9090``, ``127.0.0.1:0``, ``[::1]:9090``.
    Returns:
        tuple: (host, port); port 0 asks the kernel for a free port.
    Raises:
        ConfigError: no port, or a port that is not an integer in 0..65535.
    """
    host, sep, port_text = listen.strip().rpartition(":")
    if not sep:
        raise ConfigError(f"--listen takes host:port, got {listen!r}")
    host = host.strip("[]") or "0.0.0.0"
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"--listen: port must be a number, got {listen!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"--listen: port out of range, got {listen!r}")
    return host, port


def _json_default(value: Any) -> Any:
    """Make status values JSON-serialisable: dataclasses as dicts, sets as sorted lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its StatusServer and the address family of its host."""

    daemon_threads = True  # a hung client never blocks process exit
    block_on_close = False

    def __init__(self, address: Tuple[str, int], owner: "StatusServer"):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.owner = owner
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """One request: route it to the owning StatusServer's callbacks."""

    server: _Server
    server_version = "keelson"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
        """Access log at DEBUG only: scrapes and probes every few seconds drown real events."""
        log.debug("http %s", format % args, extra={"client": self.client_address[0]})

    # -- dispatch ---------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        """Serve the GET routes."""
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        """Serve GET routes without a body."""
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        """Serve the webhook."""
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        """Not allowed anywhere: 404 or 405."""
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        """Not allowed anywhere: 404 or 405."""
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        """Not allowed anywhere: 404 or 405."""
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:  # noqa: N802
        """Not allowed anywhere: 404 or 405."""
        self._dispatch("OPTIONS")

    def _dispatch(self, method: str) -> None:
        """Route by path then method; any exception becomes a 500, never a dead thread."""
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if len(path) > 1:
            path = path.rstrip("/")
        if method not in ("GET", "HEAD") and path not in _POST_ROUTES:
            # A refused request's body stays unread; it must not be parsed as the next request.
            self.close_connection = True
        try:
            if path in _GET_ROUTES:
                if method not in ("GET", "HEAD"):
                    self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"method not allowed\n",
                               extra_headers={"Allow": "GET, HEAD"})
                else:
                    self._get(path, head=(method == "HEAD"))
            elif path in _POST_ROUTES:
                if method != "POST":
                    self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"method not allowed\n",
                               extra_headers={"Allow": "POST"})
                else:
                    self._webhook()
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", head=(method == "HEAD"))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client left; nothing to answer
        except Exception:  # noqa: BLE001 - a bug in a callback must not take the server down
            log.exception("http handler failed", extra={"path": path, "method": method})
            self.close_connection = True
            try:
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error\n")
            except OSError:
                self.close_connection = True

    # -- routes -----------------------------------------------------------------------------------

    def _get(self, path: str, head: bool) -> None:
        """Answer one of the GET routes."""
        owner = self.server.owner
        if path == "/metrics":
            body, content_type = owner.metrics.exposition()
            self._send(HTTPStatus.OK, body, content_type, head=head)
        elif path == "/healthz":
            self._send(HTTPStatus.OK, b"ok\n", head=head)
        elif path == "/readyz":
            try:
                ready = bool(owner.ready())
            except Exception:  # noqa: BLE001 - a failing check means "not ready", not a 500
                log.exception("readiness check failed")
                ready = False
            if ready:
                self._send(HTTPStatus.OK, b"ready\n", head=head)
            else:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"not ready\n", head=head)
        else:  # /api/status
            body = json.dumps(owner.status(), default=_json_default, indent=2, sort_keys=True)
            self._send(HTTPStatus.OK, body.encode("utf-8") + b"\n", "application/json", head=head)

    def _webhook(self) -> None:
        """Authenticate the webhook, wake the loop, answer 202."""
        owner = self.server.owner
        length_text = self.headers.get("Content-Length", "0") or "0"
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": "bad Content-Length"})
            return
        if length > MAX_WEBHOOK_BODY_BYTES:
            self.close_connection = True  # the unread body must not be parsed as a request
            self._send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": "body shorter than Content-Length"})
            return
        sender = webhook_sender(self.headers)
        if not verify_webhook(self.headers, body, owner.webhook_secret):
            log.warning("webhook rejected: missing or invalid signature",
                        extra={"sender": sender, "client": self.client_address[0]})
            self._send_json(HTTPStatus.UNAUTHORIZED, {"error": "invalid or missing signature"})
            return
        owner.on_webhook()
        log.info("webhook received; reconcile queued", extra={"sender": sender})
        self._send_json(HTTPStatus.ACCEPTED, {"status": "queued"})

    # -- responses --------------------------------------------------------------------------------

    def _send_json(self, status: HTTPStatus, payload: dict) -> None:
        """Send a small JSON object."""
        self._send(status, json.dumps(payload).encode("utf-8") + b"\n", "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8",
              *, head: bool = False, extra_headers: Optional[dict] = None) -> None:
        """Send status, headers and (unless ``head``) the body, with an exact Content-Length."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)


class StatusServer:
    """The HTTP endpoint of Keelson, served from daemon threads.

    Args:
        listen: ``host:port`` to bind (``[::1]:port`` for IPv6); port 0 picks a free port.
        metrics: the recorder whose registry ``/metrics`` exposes.
        status: returns the ``/api/status`` document (a JSON-serialisable dict; dataclasses
            inside are converted). Called on the request thread: it must be thread-safe.
        ready: returns True once Keelson is ready (e.g. after its first pass); drives ``/readyz``.
        on_webhook: wakes the reconcile loop; must not block (enqueue and return).
        webhook_secret: shared secret webhooks must prove; empty accepts any POST.
    Raises:
        ConfigError: ``listen`` is not ``host:port``.
    """

    def __init__(self, listen: str, *, metrics: MetricsRecorder, status: Callable[[], dict],
                 ready: Callable[[], bool], on_webhook: Callable[[], None], webhook_secret: str = ""):
        self.host, self._requested_port = parse_listen(listen)
        self.metrics = metrics
        self.status = status
        self.ready = ready
        self.on_webhook = on_webhook
        self.webhook_secret = webhook_secret
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        """The bound TCP port after ``start()`` (the requested one before).

        Returns:
            int: port number.
        """
        if self._server is not None:
            return int(self._server.server_address[1])
        return self._requested_port

    def start(self) -> None:
        """Bind and start serving on a daemon thread; returns once the socket is listening.

        Returns:
            None.
        Raises:
            ConfigError: the address cannot be bound (in use, not local, no permission).
            RuntimeError: already started.
        """
        if self._server is not None:
            raise RuntimeError("StatusServer already started")
        try:
            self._server = _Server((self.host, self._requested_port), self)
        except OSError as exc:
            raise ConfigError(f"--listen {self.host}:{self._requested_port}: cannot bind: {exc}") from exc
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="keelson-http", daemon=True)
        self._thread.start()
        log.info("http server listening", extra={"host": self.host, "port": self.port})

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and close the socket; safe to call twice or before ``start()``.

        Args:
            timeout_s: seconds to wait for the serving thread to end.
        Returns:
            None.
        """
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
