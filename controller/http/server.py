"""Keelson's HTTP server: metrics, probes, status, the web page, controls and the git webhook.

``StatusServer`` binds, serves from daemon threads, says at start who can reach what, and
stops. The rest of the endpoint, one concept a module:
    handler.py     routes one request and sends its answer (the route table is there).
    bounded.py     the ``ThreadingHTTPServer`` serving at most ``max_connections`` at once; one
                   more is answered 503 at once and closed (issue 7).
    auth.py        the API token rule.
    webhooks.py    webhook proofs, replay refusal and the answer to ``POST /hooks/git``.
    api.py         the per-stack controls; ui.py the web page; swarm_view.py ``/api/swarm``.
Standard library only (``ThreadingHTTPServer``): a few requests a minute need nothing more.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional, Tuple

from controller.errors import ConfigError
from controller.http.auth import is_loopback_host
from controller.http.bounded import MAX_CONNECTIONS, BoundedHTTPServer
from controller.http.handler import RequestHandler
from controller.http.webhooks import DeliveryMemory
from controller.telemetry.metrics import MetricsRecorder

log = logging.getLogger(__name__)


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


class StatusServer:
    """The HTTP endpoint of Keelson, served from daemon threads.

    Args:
        listen: ``host:port`` to bind (``[::1]:port`` for IPv6); port 0 picks a free port.
        metrics: the recorder whose registry ``/metrics`` exposes.
        status: returns the ``/api/status`` document (a JSON-serialisable dict; dataclasses
            inside are converted). Called on the request thread: it must be thread-safe.
        ready: returns True once Keelson is ready (e.g. after its first pass); drives ``/readyz``.
        on_webhook: wakes the reconcile loop; must not block (enqueue and return).
        webhook_secret: shared secret webhooks must prove; empty refuses every POST unless
            ``webhook_allow_unsigned``.
        webhook_allow_unsigned: with no secret, accept unsigned POSTs (logged as a warning at
            start).
        api_token: bearer token protected routes need when ``listen`` is beyond loopback
            (empty: they answer 401 there). On a loopback bind they are open.
        max_connections: connections served at once; more are answered 503 and closed.
        delivery_memory: accepted webhook deliveries remembered for replay refusal.
        controls: ``reconcile.controls.StackControls`` behind ``/api/stacks/NAME/...``
            (None: those routes answer 503).
        swarm: returns the ``/api/swarm`` document (``swarm_view.SwarmView``); None answers 503.
            Called on the request thread: it must be thread-safe.
    Raises:
        ConfigError: ``listen`` is not ``host:port``.
    """

    def __init__(self, listen: str, *, metrics: MetricsRecorder, status: Callable[[], dict],
                 ready: Callable[[], bool], on_webhook: Callable[[], None], webhook_secret: str = "",
                 webhook_allow_unsigned: bool = False, api_token: str = "",
                 max_connections: int = MAX_CONNECTIONS, delivery_memory: int = 1024,
                 controls: Any = None, swarm: Optional[Callable[[], dict]] = None):
        self.host, self._requested_port = parse_listen(listen)
        self.metrics = metrics
        self.status = status
        self.swarm = swarm
        self.ready = ready
        self.on_webhook = on_webhook
        self.webhook_secret = webhook_secret
        self.webhook_allow_unsigned = webhook_allow_unsigned
        self.api_token = api_token
        self.loopback_bind = is_loopback_host(self.host)
        self.max_connections = max_connections
        self.deliveries = DeliveryMemory(delivery_memory)
        self.controls = controls
        self._server: Optional[BoundedHTTPServer] = None
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
            self._server = BoundedHTTPServer((self.host, self._requested_port), RequestHandler,
                                             self, self.max_connections)
        except OSError as exc:
            raise ConfigError(f"--listen {self.host}:{self._requested_port}: cannot bind: {exc}") from exc
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="keelson-http", daemon=True)
        self._thread.start()
        log.info("http server listening", extra={"host": self.host, "port": self.port,
                                                  "max_connections": self.max_connections})
        self._log_exposure()

    def _log_exposure(self) -> None:
        """Say at start who can read the API and who can trigger a pass (issue 7)."""
        if self.loopback_bind:
            log.info("api open: bound to loopback, /api/status and /api/swarm need no token")
        elif self.api_token:
            log.info("api protected: /api/status and /api/swarm need Authorization: Bearer <token> "
                     "(the page at / takes it as #token=<token>)")
        else:
            log.warning("api locked: bound beyond loopback and no API token; /api/status and "
                        "/api/swarm answer "
                        "401 until KEELSON_API_TOKEN_FILE names a file holding a token "
                        "(e.g. a Docker secret), or --listen binds 127.0.0.1")
        if self.webhook_secret:
            if self.webhook_allow_unsigned:
                log.info("webhooks need a signature: a secret is set, so "
                         "KEELSON_WEBHOOK_ALLOW_UNSIGNED=true has no effect")
        elif self.webhook_allow_unsigned:
            log.warning("UNSIGNED WEBHOOKS ALLOWED: anyone who reaches %s:%s can start a pass "
                        "(KEELSON_WEBHOOK_ALLOW_UNSIGNED=true); set KEELSON_WEBHOOK_SECRET_FILE "
                        "instead", self.host, self.port)
        else:
            log.warning("webhooks refused: no webhook secret; set KEELSON_WEBHOOK_SECRET_FILE "
                        "(or KEELSON_WEBHOOK_ALLOW_UNSIGNED=true) to use POST /hooks/git")

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
