"""The per-stack control API (issue 13.3): what ``/api/stacks/NAME/ACTION`` does.

Routes (JSON in and out; ``handler.py`` authenticates, bounds the body and sends):
    POST /api/stacks/NAME/sync      queue a pass for NAME alone now (202)
    POST /api/stacks/NAME/suspend   no writes, no prune, no drift heal until resume (200)
    POST /api/stacks/NAME/resume    end a suspension or a rollback hold; a pass is queued (200)
    POST /api/stacks/NAME/rollback  body ``{"to": "<commit>"}`` (optional): apply that revision
                                    (default: the last good one) and hold it (200)
    GET  /api/stacks/NAME/diff      what a pass would change, field by field (200)

Answers: 404 for an unknown stack or action (``{"error"}``), 405 with ``Allow`` for the wrong
method, 400 for a body that is not a JSON object, 403 for a POST without the
``X-Keelson-Action`` header, 415 for a POST body that is not ``application/json``, 409 when the control is refused (a folder
source cannot roll back, a revision not on the branch, a record of another instance), 503 when
the swarm or the source failed. Every control needs the API token when one is configured, even
on a loopback bind (``auth.control_access``).

Cross-site requests (CSRF): the token travels only in ``Authorization`` (never a cookie or the
query string), so a page of another site cannot send it. With no token configured on a loopback
bind, a page of another site open in a local browser could still send a "simple" cross-origin
POST (a form, or ``fetch`` with ``mode: "no-cors"``). So every POST must carry the header
``X-Keelson-Action`` (``browser_guard``): a browser sends a custom header cross-origin only after
a CORS preflight (``OPTIONS``), which this server never grants, so such a POST never leaves the
browser (Fetch standard, "CORS-safelisted request-header"; OWASP CSRF cheat sheet, "custom request
headers"). A non-empty body must also be ``Content-Type: application/json``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Dict, Mapping, Optional

from controller.errors import ControlError, KeelsonError, PolicyError, StackNotFoundError
from controller.telemetry.scrub import scrub

PREFIX = "/api/stacks/"
MAX_CONTROL_BODY_BYTES = 4096  # {"to": "<40 hex>"} is under 64 bytes
# A stack is a folder name; docker stack names allow letters, digits, "_", "-" and "." here.
STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
POST_ACTIONS = ("sync", "suspend", "resume", "rollback")
GET_ACTIONS = ("diff",)
ACTION_HEADER = "X-Keelson-Action"  # every POST needs it (any non-empty value; clients send "1")


@dataclass(frozen=True)
class ApiAnswer:
    """One answer of the control API.

    Attributes:
        status: the HTTP status. payload: the JSON object to send.
        headers: extra headers (``Allow`` on 405).
    """

    status: HTTPStatus
    payload: Dict[str, Any]
    headers: Dict[str, str] = field(default_factory=dict)


def is_control_path(path: str) -> bool:
    """Whether ``path`` (query removed, no trailing slash) belongs to the control API."""
    return path.startswith(PREFIX)


def _header(headers: Mapping[str, str], wanted: str) -> str:
    """The value of header ``wanted`` (name in any case), stripped; ``""`` when absent."""
    for name, value in headers.items():
        if str(name).lower() == wanted.lower():
            return str(value).strip()
    return ""


def browser_guard(method: str, headers: Mapping[str, str], body: bytes) -> Optional[ApiAnswer]:
    """Refuse a control request a page of another site could have sent (CSRF).

    Args:
        method: the request method (only POST is checked). headers: the request headers.
        body: the request body.
    Returns:
        ApiAnswer or None: 403 when a POST lacks ``X-Keelson-Action`` (a cross-origin page can
        send that header only after a CORS preflight, which is never granted); 415 when a POST
        has a body whose ``Content-Type`` is not ``application/json``; None when it may go on.
    """
    if method != "POST":
        return None
    if not _header(headers, ACTION_HEADER):
        return ApiAnswer(HTTPStatus.FORBIDDEN, {
            "error": f"a control POST needs the header {ACTION_HEADER}: 1 (refused as a "
                     "possible cross-site request)", "reason": "ActionHeaderMissing"})
    media = _header(headers, "Content-Type").split(";", 1)[0].strip().lower()
    if body.strip() and media != "application/json":
        return ApiAnswer(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {
            "error": "a control POST body must be Content-Type: application/json",
            "reason": "UnsupportedMediaType"})
    return None


def answer(controls: Any, method: str, path: str, body: bytes,
           headers: Mapping[str, str]) -> ApiAnswer:
    """Run the control a request names.

    Args:
        controls: ``reconcile.controls.StackControls`` (None: controls are off, 503).
        method: ``GET``, ``HEAD`` or ``POST`` (others get 405). path: the request path.
        body: the request body (already bounded by the server).
        headers: the request headers (``browser_guard``; the token was checked before).
    Returns:
        ApiAnswer: see the module docstring for the statuses.
    """
    parts = path[len(PREFIX):].split("/")
    if len(parts) != 2 or not STACK_NAME.match(parts[0]) or \
            parts[1] not in POST_ACTIONS + GET_ACTIONS:
        return ApiAnswer(HTTPStatus.NOT_FOUND, {"error": "not found"})
    name, action = parts
    wanted = "POST" if action in POST_ACTIONS else "GET"
    if method != wanted and not (wanted == "GET" and method == "HEAD"):
        allow = "POST" if wanted == "POST" else "GET, HEAD"
        return ApiAnswer(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "method not allowed"},
                         {"Allow": allow})
    refused = browser_guard(method, headers, body)
    if refused is not None:
        return refused
    if controls is None:
        return ApiAnswer(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "controls are not available"})
    to = ""
    if action == "rollback" and body.strip():
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return ApiAnswer(HTTPStatus.BAD_REQUEST, {"error": "body is not JSON"})
        if not isinstance(doc, dict) or not isinstance(doc.get("to", ""), str) or \
                set(doc) - {"to"}:
            return ApiAnswer(HTTPStatus.BAD_REQUEST,
                             {"error": 'body must be {"to": "<revision>"} or empty'})
        to = doc.get("to", "")
    try:
        if action == "sync":
            return ApiAnswer(HTTPStatus.ACCEPTED, controls.sync_now(name))
        if action == "suspend":
            return ApiAnswer(HTTPStatus.OK, controls.suspend(name))
        if action == "resume":
            return ApiAnswer(HTTPStatus.OK, controls.resume(name))
        if action == "rollback":
            return ApiAnswer(HTTPStatus.OK, controls.rollback(name, to))
        return ApiAnswer(HTTPStatus.OK, controls.diff(name))
    except StackNotFoundError as exc:
        return _error(HTTPStatus.NOT_FOUND, exc)
    except (ControlError, PolicyError) as exc:
        return _error(HTTPStatus.CONFLICT, exc)
    except KeelsonError as exc:
        return _error(HTTPStatus.SERVICE_UNAVAILABLE, exc)


def _error(status: HTTPStatus, exc: KeelsonError) -> ApiAnswer:
    """An error answer: ``{"error": message (scrubbed), "reason": CamelCase reason}``."""
    return ApiAnswer(status, {"error": scrub(str(exc)), "reason": exc.reason})
