"""A counting HTTP/1.1 proxy: every request on the way through is counted by route.

Used by the benchmarks to count what one pass asks of dockerd (a unix socket in front of
``/var/run/docker.sock``; Keelson and the docker CLI get ``DOCKER_HOST=unix://<its path>``)
and of the registry (a loopback TCP port in front of ``127.0.0.1:5000``; stack files name
their images ``127.0.0.1:<port>/...``, so dockerd's digest look-ups and pulls go through it).

Only the client-to-server direction is parsed, just enough to find where each request ends
(``Content-Length`` or chunked bodies); responses are copied byte for byte. A connection that
upgrades (``Upgrade:`` header, e.g. docker's attach) is copied raw from then on.
"""
from __future__ import annotations

import collections
import os
import re
import socket
import threading
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple, Union

MAX_HEAD_BYTES = 64 * 1024  # a request head longer than this is not HTTP we understand
COPY_CHUNK_BYTES = 64 * 1024

_DOCKER_VERSION = re.compile(r"^/v\d+\.\d+(?=/)")
_DOCKER_VERBS = ("create", "prune", "json", "events")  # second segments that are not IDs
_HTTP_START = re.compile(rb"^[A-Z]{1,12}( |$)")
_REGISTRY_ROUTE = re.compile(r"^/v2/.+/(manifests|blobs|tags)(/.*)?$")


def route_of(method: str, target: str) -> str:
    """A request's route with names and IDs folded, for grouping counts.

    Args:
        method: the HTTP method (``GET``). target: the request target (``/v1.41/services?x=y``).
    Returns:
        str: e.g. ``GET /services``, ``POST /services/*/update``, ``GET /distribution/*/json``
        (docker's API version prefix dropped; a second segment other than ``create``,
        ``prune``, ``json`` or ``events`` is an ID or name), or
        for the registry ``HEAD /v2/*/manifests/*`` and ``GET /v2/``.
    """
    path = target.split("?", 1)[0]
    path = _DOCKER_VERSION.sub("", path)
    m = _REGISTRY_ROUTE.match(path)
    if m:
        return f"{method} /v2/*/{m.group(1)}" + ("/*" if m.group(2) else "")
    if path.startswith("/distribution/"):  # the image reference itself contains slashes
        return f"{method} /distribution/*/json"
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[1] not in _DOCKER_VERBS:
        parts[1] = "*"
    return f"{method} /" + "/".join(parts) + ("/" if path.endswith("/") and parts else "")


@dataclass(frozen=True)
class RequestCount:
    """Requests seen by a proxy up to a moment.

    Attributes:
        total: number of requests. by_route: route (see ``route_of``) -> number of requests.
    """

    total: int = 0
    by_route: Mapping[str, int] = field(default_factory=dict)

    def minus(self, earlier: "RequestCount") -> "RequestCount":
        """The requests made between ``earlier`` and this snapshot."""
        routes = {r: n - earlier.by_route.get(r, 0) for r, n in self.by_route.items()}
        return RequestCount(self.total - earlier.total, {r: n for r, n in routes.items() if n})


class _Head:
    """The parts of one request head the proxy needs."""

    def __init__(self, raw: bytes):
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) < 3:
            raise ValueError(f"not an HTTP request line: {lines[0]!r}")
        self.method, self.target = parts[0], parts[1]
        self.headers: Dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                self.headers[k.strip().lower()] = v.strip()

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def content_length(self) -> int:
        return int(self.headers.get("content-length", "0") or 0)

    @property
    def upgrades(self) -> bool:
        return "upgrade" in self.headers or self.method == "CONNECT"


class _Reader:
    """Buffered reads from a socket that also forward every byte read to ``dst``."""

    def __init__(self, src: socket.socket, dst: socket.socket):
        self.src, self.dst, self.buf = src, dst, b""

    def _fill(self) -> bool:
        data = self.src.recv(COPY_CHUNK_BYTES)
        if not data:
            return False
        self.buf += data
        return True

    def head(self) -> Optional[bytes]:
        """The next request head (through the blank line), forwarded; None at end of stream.

        Raises:
            ValueError: the bytes are not an HTTP request (a TLS handshake: dockerd tries
                HTTPS first on an insecure registry); the caller copies them raw.
        """
        while b"\r\n\r\n" not in self.buf:
            if self.buf and not _HTTP_START.match(self.buf):
                raise ValueError("not HTTP")
            if len(self.buf) > MAX_HEAD_BYTES or not self._fill():
                return None
        end = self.buf.index(b"\r\n\r\n") + 4
        raw, self.buf = self.buf[:end], self.buf[end:]
        self.dst.sendall(raw)
        return raw

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError
        end = self.buf.index(b"\r\n") + 2
        raw, self.buf = self.buf[:end], self.buf[end:]
        self.dst.sendall(raw)
        return raw

    def exactly(self, n: int) -> None:
        while n > 0:
            if not self.buf and not self._fill():
                raise EOFError
            part, self.buf = self.buf[:n], self.buf[n:]
            self.dst.sendall(part)
            n -= len(part)

    def chunked_body(self) -> None:
        while True:
            size = int(self.line().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.line() != b"\r\n":  # trailers, then the blank line
                    pass
                return
            self.exactly(size + 2)  # the chunk and its CRLF

    def rest(self) -> None:
        """Copy everything else raw (after an upgrade)."""
        if self.buf:
            self.dst.sendall(self.buf)
            self.buf = b""
        _copy(self.src, self.dst)


def _copy(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(COPY_CHUNK_BYTES)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (dst,):
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass


Address = Union[str, Tuple[str, int]]  # a unix socket path, or (host, port)


def _connect(address: Address) -> socket.socket:
    if isinstance(address, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(address)
    return s


class CountingProxy:
    """Forward connections from ``listen`` to ``upstream``, counting requests by route.

    Args:
        listen: a unix socket path to create (removed first if it exists) or ``(host, port)``;
            port 0 picks a free port (see ``address``).
        upstream: a unix socket path or ``(host, port)`` to forward to.
    Use ``start()`` / ``stop()``; ``snapshot()`` at any time. Threads: one accept thread and two
    per connection, all daemons.
    """

    def __init__(self, listen: Address, upstream: Address):
        self.upstream = upstream
        if isinstance(listen, str):
            if os.path.exists(listen):
                os.unlink(listen)
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(listen)
        self._sock.listen(128)
        self.address: Address = self._sock.getsockname()
        self._lock = threading.Lock()
        self._counts: collections.Counter = collections.Counter()
        self._total = 0
        self.unparsed_connections = 0  # connections whose bytes stopped looking like HTTP
        self._stopped = False

    def start(self) -> "CountingProxy":
        """Start accepting; returns self."""
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop accepting (open connections finish on their own) and remove a unix socket."""
        self._stopped = True
        try:
            self._sock.close()
        except OSError:
            pass
        if isinstance(self.address, str) and os.path.exists(self.address):
            os.unlink(self.address)

    def snapshot(self) -> RequestCount:
        """The requests counted so far."""
        with self._lock:
            return RequestCount(self._total, dict(self._counts))

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            try:
                server = _connect(self.upstream)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._requests, args=(client, server), daemon=True).start()
            threading.Thread(target=_copy, args=(server, client), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket) -> None:
        reader = _Reader(client, server)
        try:
            while True:
                try:
                    raw = reader.head()
                    if raw is None:
                        break
                    head = _Head(raw)
                except ValueError:
                    with self._lock:
                        self.unparsed_connections += 1
                    reader.rest()
                    return
                with self._lock:
                    self._total += 1
                    self._counts[route_of(head.method, head.target)] += 1
                if head.upgrades:
                    reader.rest()
                    return
                if head.chunked:
                    reader.chunked_body()
                elif head.content_length:
                    reader.exactly(head.content_length)
        except (OSError, EOFError, ValueError):
            pass
        finally:
            try:
                server.shutdown(socket.SHUT_WR)
            except OSError:
                pass
