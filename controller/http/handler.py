"""The request handler of Keelson's HTTP server: route one request and send its answer.

Routes:
    GET  /metrics       Prometheus text format.
    GET  /healthz       200 ``ok`` while the process serves (liveness).
    GET  /readyz        200 ``ready`` when ``ready()`` is true, else 503 (readiness).
    GET  /api/status    JSON from ``status()``; beyond a loopback bind it needs
                        ``Authorization: Bearer <token>`` (401 otherwise; see auth.py).
    GET  /api/swarm     nodes, services and tasks from ``swarm()`` (swarm_view.py), token as
                        for /api/status; 503 when the Engine cannot be read.
    GET  /              the web page, and /ui/app.js, /ui/app.css (ui.py); no token: the page
                        holds no data and asks the API with the operator's token.
    POST /hooks/git     (alias ``/api/webhook``) wakes the reconcile loop; 202, 401 when the
                        request does not prove the secret (or no secret is set and unsigned
                        webhooks are not allowed), 409 for a delivery already accepted
                        (see webhooks.py).
    /api/stacks/NAME/*  per-stack controls (sync, suspend, resume, rollback, diff): see api.py.
Unknown paths give 404, known paths with another method 405 (with ``Allow``); HEAD works wherever
GET does. A failing callback gives 500 (or 503 for readiness), never a dead server.

Every socket read or write times out after ``REQUEST_TIMEOUT_S``; a webhook body is at most
``webhooks.MAX_WEBHOOK_BODY_BYTES``, a control body ``api.MAX_CONTROL_BODY_BYTES``. A client that
stalls or disconnects costs one log line at DEBUG/INFO, never a traceback.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import socket
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Optional

from controller.errors import SwarmError
from controller.http import api, ui
from controller.http.auth import ApiAccess, api_access, control_access
from controller.http.bounded import BoundedHTTPServer
from controller.http.webhooks import MAX_WEBHOOK_BODY_BYTES, answer_webhook
from controller.telemetry.scrub import scrub

# The HTTP endpoint logs under one name, whichever of its modules writes the line.
log = logging.getLogger("controller.http.server")

REQUEST_TIMEOUT_S = 10.0  # a client that stalls mid-request loses its thread after this

_GET_ROUTES = ("/metrics", "/healthz", "/readyz", "/api/status", "/api/swarm", *ui.PAGES)
_POST_ROUTES = ("/hooks/git", "/api/webhook")
# Routes that need the API token beyond loopback (auth.py); add any future route that can act.
_PROTECTED_ROUTES = ("/api/status", "/api/swarm")


def _json_default(value: Any) -> Any:
    """Make status values JSON-serialisable: dataclasses as dicts, sets as sorted lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


class RequestHandler(BaseHTTPRequestHandler):
    """One request: route it to the callbacks and settings of the owning ``StatusServer``
    (``self.server.owner``); the stdlib calls ``do_<METHOD>`` once per request."""

    server: BoundedHTTPServer
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
                elif path not in _PROTECTED_ROUTES or self._authorized(head=(method == "HEAD")):
                    self._get(path, head=(method == "HEAD"))
            elif path in _POST_ROUTES:
                if method != "POST":
                    self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"method not allowed\n",
                               extra_headers={"Allow": "POST"})
                else:
                    self._webhook()
            elif api.is_control_path(path):
                if self._authorized(head=(method == "HEAD"), rule=control_access):
                    self._control(method, path)
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", head=(method == "HEAD"))
        except (BrokenPipeError, ConnectionResetError, TimeoutError, socket.timeout):
            self.close_connection = True  # the client left or stalled; nothing to answer
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
        elif path in ui.PAGES:
            body, content_type = ui.page(path)
            self._send(HTTPStatus.OK, body, content_type, head=head, extra_headers=ui.PAGE_HEADERS)
        elif path == "/api/swarm":
            self._swarm(head)
        else:  # /api/status
            body = json.dumps(owner.status(), default=_json_default, indent=2, sort_keys=True)
            self._send(HTTPStatus.OK, body.encode("utf-8") + b"\n", "application/json", head=head)

    def _swarm(self, head: bool) -> None:
        """Answer /api/swarm: the cached swarm view, or 503 when there is none or it failed."""
        swarm = self.server.owner.swarm
        if swarm is None:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b'{"error": "no swarm view"}\n',
                       "application/json", head=head)
            return
        try:
            doc = swarm()
        except SwarmError as exc:
            log.warning("api/swarm: %s", exc)
            body = json.dumps({"error": scrub(str(exc))}).encode("utf-8") + b"\n"
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, body, "application/json", head=head)
            return
        body = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8") + b"\n"
        self._send(HTTPStatus.OK, body, "application/json", head=head)

    def _control(self, method: str, path: str) -> None:
        """A per-stack control (issue 13.3): read a bounded body, answer with api.py's JSON."""
        body = b""
        if method == "POST":
            length_text = self.headers.get("Content-Length", "0") or "0"
            length = int(length_text) if length_text.isdigit() else -1
            if not 0 <= length <= api.MAX_CONTROL_BODY_BYTES:
                self._send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length > 0
                                else HTTPStatus.BAD_REQUEST, {"error": "bad or too large body"})
                return
            body = self.rfile.read(length) if length else b""
        reply = api.answer(self.server.owner.controls, method, path, body, self.headers)
        data = json.dumps(reply.payload, default=_json_default, sort_keys=True).encode("utf-8")
        self._send(reply.status, data + b"\n", "application/json", head=(method == "HEAD"),
                   extra_headers=reply.headers)

    def _authorized(self, head: bool, rule: Callable = api_access) -> bool:
        """Check the API token of a protected route (``rule``: auth.api_access, or
        auth.control_access for controls); on refusal send 401 and return False."""
        owner = self.server.owner
        verdict = rule(self.headers, owner.api_token, owner.loopback_bind)
        if verdict is ApiAccess.ALLOWED:
            return True
        if verdict is ApiAccess.NO_TOKEN_CONFIGURED:
            body = b"no API token configured: set KEELSON_API_TOKEN_FILE\n"
        else:
            body = b"missing or invalid bearer token\n"
            log.info("api request refused: missing or invalid token",
                     extra={"client": self.client_address[0]})
        self._send(HTTPStatus.UNAUTHORIZED, body, head=head,
                   extra_headers={"WWW-Authenticate": 'Bearer realm="keelson"'})
        return False

    def _webhook(self) -> None:
        """Read the webhook body (bounded, timed out), answer it with webhooks.answer_webhook."""
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
        try:
            body = self.rfile.read(length) if length else b""
        except OSError as exc:  # stalled past REQUEST_TIMEOUT_S, or reset: no traceback
            self.close_connection = True
            log.info("webhook body not received: %s", type(exc).__name__,
                     extra={"client": self.client_address[0]})
            return
        if len(body) < length:
            self.close_connection = True
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": "body shorter than Content-Length"})
            return
        answer = answer_webhook(self.headers, body, secret=owner.webhook_secret,
                                allow_unsigned=owner.webhook_allow_unsigned,
                                deliveries=owner.deliveries, wake=owner.on_webhook,
                                client=self.client_address[0])
        self._send_json(answer.status, answer.payload)

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
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)
