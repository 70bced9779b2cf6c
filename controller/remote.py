"""The CLI's client for a running Keelson's HTTP API (issue 13.3).

``keelson status | history | diff | sync STACK --now | suspend | resume | rollback`` talk to the
controller at ``--server`` (KEELSON_SERVER, default ``http://127.0.0.1:9090``) with the bearer
token read from ``--token-file`` (KEELSON_API_TOKEN_FILE, the same file the controller reads).
Standard library only (``urllib``); the token never appears in a message.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Optional, TextIO, Tuple

from controller import views
from controller.errors import ConfigError, RemoteError

DEFAULT_SERVER = "http://127.0.0.1:9090"
DEFAULT_TIMEOUT_S = 600.0  # a rollback waits for its rollout; a status read is quick
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # /api/status at thousands of stacks stays well under


def read_token(path: str) -> str:
    """The API token from ``path`` (stripped), or "" when ``path`` is empty.

    Raises:
        ConfigError: the file cannot be read.
    """
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError as exc:
        raise ConfigError(f"--token-file {path}: cannot read: {exc.strerror}") from exc


class RemoteClient:
    """Requests to one Keelson server.

    Args:
        server: base URL (``http://host:port``); a bare ``host:port`` gets ``http://``.
        token: bearer token ("" sends none). timeout_s: seconds one request may take.
    Raises:
        ConfigError: ``server`` is not an http(s) URL.
    """

    def __init__(self, server: str, token: str = "", timeout_s: float = DEFAULT_TIMEOUT_S):
        server = (server or DEFAULT_SERVER).strip()
        if "://" not in server:
            server = "http://" + server
        parsed = urllib.parse.urlsplit(server)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"--server {server!r}: give an http(s)://host:port URL")
        self.server = server.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def request(self, method: str, path: str, body: Optional[dict] = None) -> Tuple[int, Any]:
        """Send one request and decode its JSON answer.

        Args:
            method: GET or POST. path: ``/api/...``. body: a JSON object to send, or None.
        Returns:
            (status, decoded JSON) for a 2xx answer.
        Raises:
            RemoteError: not reachable, a non-2xx answer (its ``error`` text in the message),
                or an answer that is not JSON.
        """
        data = json.dumps(body).encode("utf-8") if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if method == "POST":
            req.add_header("X-Keelson-Action", "1")  # the API's CSRF guard (http/api.py)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310
                status, raw = resp.status, resp.read(MAX_ANSWER_BYTES)
        except urllib.error.HTTPError as exc:
            raise RemoteError(f"{method} {path}: {exc.code} {_error_text(exc)}", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            why = getattr(exc, "reason", exc)
            raise RemoteError(f"cannot reach keelson at {self.server}: {why} "
                              "(is `keelson run` listening there? see --server)") from None
        try:
            return status, json.loads(raw.decode("utf-8"))
        except ValueError:
            raise RemoteError(f"{method} {path}: the answer is not JSON", status) from None

    def status(self) -> Dict[str, Any]:
        """``GET /api/status``. Raises RemoteError."""
        return self.request("GET", "/api/status")[1]

    def control(self, name: str, action: str, body: Optional[dict] = None) -> Dict[str, Any]:
        """``POST /api/stacks/NAME/ACTION`` (sync, suspend, resume, rollback). Raises
        RemoteError."""
        return self.request("POST", f"/api/stacks/{urllib.parse.quote(name, safe='')}/{action}",
                            body if body is not None else {})[1]

    def diff(self, name: str) -> Dict[str, Any]:
        """``GET /api/stacks/NAME/diff``. Raises RemoteError."""
        return self.request("GET", f"/api/stacks/{urllib.parse.quote(name, safe='')}/diff")[1]

    def wait_for(self, name: str, done: Callable[[Dict[str, Any]], bool], timeout_s: float,
                 poll_s: float = 0.5) -> Dict[str, Any]:
        """Poll ``/api/status`` until ``done(stack status)`` is true.

        Args:
            name: the stack. done: predicate on its status (a dict; {} while absent).
            timeout_s: seconds to wait at most. poll_s: seconds between reads.
        Returns:
            dict: the stack's status that satisfied ``done``.
        Raises:
            RemoteError: still not done after ``timeout_s`` (the last status in the message).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            st = dict((self.status().get("stacks") or {}).get(name) or {})
            if done(st):
                return st
            if time.monotonic() >= deadline:
                raise RemoteError(f"stack {name}: still {st.get('sync_status', 'unknown')} after "
                                  f"{timeout_s:g}s (see `keelson status {name}`)")
            time.sleep(poll_s)


def _error_text(exc: "urllib.error.HTTPError") -> str:
    """The ``error`` of a JSON error answer, else its first line of text."""
    try:
        raw = exc.read(4096).decode("utf-8", "replace")
    except OSError:
        return exc.reason or ""
    try:
        doc = json.loads(raw)
        if isinstance(doc, dict) and doc.get("error"):
            return str(doc["error"])
    except ValueError:
        pass
    return (raw.strip().splitlines() or [str(exc.reason or "")])[0]


# -- the commands ----------------------------------------------------------------------------
REMOTE_COMMANDS = ("status", "history", "diff", "suspend", "resume", "rollback")


def client_from(args: Any, environ: Dict[str, str]) -> RemoteClient:
    """A RemoteClient from ``--server``/``--token-file``/``--timeout`` or KEELSON_SERVER /
    KEELSON_API_TOKEN_FILE (options win). Raises ConfigError."""
    server = getattr(args, "server", None) or environ.get("KEELSON_SERVER") or DEFAULT_SERVER
    token_file = getattr(args, "token_file", None) or environ.get("KEELSON_API_TOKEN_FILE", "")
    return RemoteClient(server, read_token(token_file),
                        float(getattr(args, "timeout", None) or DEFAULT_TIMEOUT_S))


def _dump(doc: Any, fmt: str, out: TextIO) -> None:
    """Print ``doc`` as JSON or YAML."""
    if fmt == "yaml":
        import yaml
        out.write(yaml.safe_dump(doc, sort_keys=True, default_flow_style=False))
    else:
        out.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def run_remote(args: Any, environ: Dict[str, str], out: TextIO) -> int:
    """Run one remote command (``args.command`` in REMOTE_COMMANDS, or ``sync`` with
    ``--now``) against the server; returns the exit code (0 done, 1 failed or not Synced).

    Raises:
        ConfigError: bad --server or unreadable token file. RemoteError: the request failed.
    """
    client = client_from(args, environ)
    cmd, fmt = args.command, getattr(args, "output", "table")
    name = getattr(args, "stack_name", None) or ""
    if cmd in ("status", "history"):
        snap = client.status()
        stacks = snap.get("stacks") or {}
        if name and name not in stacks:
            raise RemoteError(f"no stack {name!r} (stacks: {', '.join(sorted(stacks)) or 'none'})",
                              404)
        chosen = {name: stacks[name]} if name else stacks
        if cmd == "history":
            if fmt != "table":
                _dump(chosen[name].get("history") or [], fmt, out)
            else:
                out.write(views.history_table(chosen[name], time.time()))
        elif fmt != "table":
            _dump(chosen[name] if name else snap, fmt, out)
        else:
            out.write(views.standby_line(snap))
            out.write(views.status_table(chosen, time.time()))
            if not name and snap.get("nodes"):  # issue 11: declared vs live nodes
                out.write("\n" + views.nodes_text(snap["nodes"]))
        return 0
    if cmd == "diff":
        names = [name] if name else sorted(client.status().get("stacks") or {})
        docs = [client.diff(n) for n in names]
        if fmt != "table":
            _dump(docs if not name else docs[0], fmt, out)
        else:
            color = bool(getattr(out, "isatty", lambda: False)()) and not environ.get("NO_COLOR")
            for doc in docs:
                out.write(views.diff_text(doc, color=color))
        return 0
    return _act(client, cmd, name, args, out)


def _act(client: RemoteClient, cmd: str, name: str, args: Any, out: TextIO) -> int:
    """sync --now, suspend, resume, rollback: POST, then (unless --no-wait) wait for the
    stack's status to show the result and print its row."""
    before = views.one_stack(client.status(), name)
    if cmd == "sync":
        answer = client.control(name, "sync")
    elif cmd == "rollback":
        answer = client.control(name, "rollback", {"to": args.to} if args.to else {})
    else:
        answer = client.control(name, cmd)
    if getattr(args, "no_wait", False):
        out.write(json.dumps(answer, sort_keys=True) + "\n")
        return 0
    since = before.get("updated_at") or 0

    def newer(st: Dict[str, Any]) -> bool:
        """True once ``st`` (the stack's status JSON) shows a finished pass after the request."""
        if not st:
            return True  # the pass removed the stack (it left the repo)
        return (st.get("updated_at") or 0) > since and st.get("sync_status") != "Progressing"

    if cmd == "suspend":
        done: Callable[[Dict[str, Any]], bool] = lambda st: st.get("sync_status") == "Suspended"
    elif cmd == "rollback":
        done = lambda st: (st.get("sync_status") == "Suspended" and  # noqa: E731
                           st.get("last_applied_revision") == answer.get("revision"))
    elif cmd == "resume":
        done = lambda st: newer(st) and st.get("sync_status") != "Suspended"  # noqa: E731
    else:
        done = newer
    st = client.wait_for(name, done, client.timeout_s)
    if not st:
        out.write(f"stack {name}: removed (it is no longer in the repo)\n")
        return 0
    out.write(views.status_table({name: st}, time.time()))
    if cmd == "rollback":
        out.write(f"rolled back to {str(answer.get('revision'))[:12]}; held until a commit "
                  f"changes the stack or `keelson resume {name}`\n")
    return 0 if st.get("sync_status") in ("Synced", "Suspended") else 1
