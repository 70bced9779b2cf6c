"""The per-stack control API (issue 13.3): what ``/api/stacks/NAME/ACTION`` does.

Routes (JSON in and out; ``server.py`` authenticates, bounds the body and sends):
    POST /api/stacks/NAME/sync      queue a pass for NAME alone now (202)
    POST /api/stacks/NAME/suspend   no writes, no prune, no drift heal until resume (200)
    POST /api/stacks/NAME/resume    end a suspension or a rollback hold; a pass is queued (200)
    POST /api/stacks/NAME/rollback  body ``{"to": "<commit>"}`` (optional): apply that revision
                                    (default: the last good one) and hold it (200)
    GET  /api/stacks/NAME/diff      what a pass would change, field by field (200)

Answers: 404 for an unknown stack or action (``{"error"}``), 405 with ``Allow`` for the wrong
method, 400 for a body that is not a JSON object, 409 when the control is refused (a folder
source cannot roll back, a revision not on the branch, a record of another instance), 503 when
the swarm or the source failed. Every control needs the API token when one is configured, even
on a loopback bind (``auth.control_access``).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Dict

from controller.errors import ControlError, KeelsonError, PolicyError, StackNotFoundError
from controller.telemetry.scrub import scrub

PREFIX = "/api/stacks/"
MAX_CONTROL_BODY_BYTES = 4096  # {"to": "<40 hex>"} is under 64 bytes
# A stack is a folder name; docker stack names allow letters, digits, "_", "-" and "." here.
STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
POST_ACTIONS = ("sync", "suspend", "resume", "rollback")
GET_ACTIONS = ("diff",)


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


def answer(controls: Any, method: str, path: str, body: bytes) -> ApiAnswer:
    """Run the control a request names.

    Args:
        controls: ``reconcile.controls.StackControls`` (None: controls are off, 503).
        method: ``GET``, ``HEAD`` or ``POST`` (others get 405). path: the request path.
        body: the request body (already bounded by the server).
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
