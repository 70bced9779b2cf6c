"""A real HTTP receiver on loopback for notification tests (Apprise ``json://`` target)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, List


class Receiver:
    """Collects the JSON bodies POSTed to it; ``url`` is its Apprise ``json://`` URL.

    Args:
        status: HTTP status to answer (500 makes every notification an error).
    """

    def __init__(self, status: int = 200):
        self.payloads: List[dict] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            """Stores each POST's body."""

            def do_POST(self):  # noqa: N802 (http.server's name)
                """Read the body as JSON, store it, answer ``outer.status``."""
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    outer.payloads.append(json.loads(body))
                except ValueError:
                    outer.payloads.append({"raw": body.decode(errors="replace")})
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """``json://127.0.0.1:<port>/hook``."""
        return f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def messages(self) -> List[str]:
        """The ``message`` field of every payload received so far."""
        return [p.get("message", "") for p in list(self.payloads)]

    def wait_for(self, predicate: Callable[[List[dict]], bool], timeout_s: float = 60.0) -> List[dict]:
        """Poll until ``predicate(payloads)`` holds; fail with what arrived when it never does."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(list(self.payloads)):
                return list(self.payloads)
            time.sleep(0.1)
        raise AssertionError(f"receiver never got what was expected; got {self.payloads!r}")

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
