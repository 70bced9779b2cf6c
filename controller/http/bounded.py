"""A ``ThreadingHTTPServer`` with a bound on connections served at once (issue 7).

At most ``max_connections`` connections are served at once, each on its own daemon thread; one
more is answered ``503`` at once (without reading its request) and closed, so threads never grow
without bound and the accept loop never blocks. A connection that fails outside a route costs one
log line (DEBUG for a client that left or timed out), never a traceback on stderr.
"""
from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Tuple, Type

# The HTTP endpoint logs under one name, whichever of its modules writes the line.
log = logging.getLogger("controller.http.server")

MAX_CONNECTIONS = 32  # served at once (KEELSON_HTTP_MAX_CONNECTIONS); more get 503
BUSY_WARNING_EVERY_S = 60.0  # "connection limit reached" is logged at most this often

_BUSY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                  b"Content-Length: 5\r\nRetry-After: 1\r\nConnection: close\r\n\r\nbusy\n")


class BoundedHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its owner and the address family of its host, and serves
    at most ``max_connections`` connections at once (one daemon thread each).

    Args:
        address: (host, port) to bind; a host with ``:`` binds IPv6. Port 0 picks a free port.
        handler: the request handler class; it reaches the owner as ``self.server.owner``.
        owner: the object whose callbacks and settings the handler serves (``StatusServer``).
        max_connections: connections served at once (at least 1); more are answered 503.
    Raises:
        OSError: the address cannot be bound.
    """

    daemon_threads = True  # a hung client never blocks process exit
    block_on_close = False
    request_queue_size = 64  # listen backlog: a burst waits in the kernel, not in a thread

    def __init__(self, address: Tuple[str, int], handler: Type[BaseHTTPRequestHandler],
                 owner: Any, max_connections: int):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.owner = owner
        self._slots = threading.BoundedSemaphore(max(1, max_connections))
        self._busy_logged_at = 0.0
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        """Serve ``request`` on a new daemon thread if a slot is free, else answer 503 and close."""
        if not self._slots.acquire(blocking=False):
            self._refuse_busy(request, client_address)
            return
        try:
            threading.Thread(target=self._serve_in_slot, args=(request, client_address),
                             name="keelson-http-conn", daemon=True).start()
        except BaseException:
            self._slots.release()
            self.shutdown_request(request)
            raise

    def _serve_in_slot(self, request: socket.socket, client_address: Any) -> None:
        """Run one connection, then free its slot (whatever happened)."""
        try:
            self.process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse_busy(self, request: socket.socket, client_address: Any) -> None:
        """Answer 503 without reading the request (never blocks the accept loop) and close."""
        now = time.monotonic()
        if now - self._busy_logged_at >= BUSY_WARNING_EVERY_S:
            self._busy_logged_at = now
            log.warning("http connection limit reached; answering 503",
                        extra={"client": client_address[0] if client_address else ""})
        try:
            request.setblocking(False)
            request.send(_BUSY_RESPONSE)
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection failed outside a route (socketserver prints a traceback to stderr by
        default): a client that left or timed out is one DEBUG line, anything else an ERROR
        through the logger (scrubbed like every log line)."""
        exc = sys.exc_info()[1]
        client = client_address[0] if client_address else ""
        if isinstance(exc, OSError):
            log.debug("http client went away: %s", type(exc).__name__, extra={"client": client})
        else:
            log.error("http connection failed", exc_info=True, extra={"client": client})
