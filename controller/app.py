"""Composition root: builds every object from Settings and runs them.

Nothing else in Keelson creates clients or threads; tests build an App the same way.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Dict, Mapping, Optional

from controller.config import Settings
from controller.errors import SwarmError
from controller.deploy.apply import Applier
from controller.health.rollout import RolloutWatcher
from controller.images.build import ImageBuilder
from controller.images.digests import DigestCache
from controller.reconcile.loop import ReconcileLoop
from controller.reconcile.reconciler import PassResult, Reconciler
from controller.reconcile.state import StatusStore
from controller.source import local_watch_path, make_source
from controller.swarm.client import SwarmClient
from controller.swarm.engine_images import ImageEngine
from controller.telemetry.metrics import MetricsRecorder

log = logging.getLogger("keelson.app")

# Variables never offered to stack interpolation: credentials of Keelson itself.
PRIVATE_ENV_PREFIXES = ("KEELSON_GIT_", "KEELSON_WEBHOOK_SECRET")


def interpolation_environ(environ: Mapping[str, str]) -> Dict[str, str]:
    """The controller environment stack files may use (Keelson's own secrets removed)."""
    return {k: v for k, v in environ.items() if not k.startswith(PRIVATE_ENV_PREFIXES)}


def connect_swarm(environ: Mapping[str, str]) -> SwarmClient:
    """A SwarmClient for DOCKER_HOST (or the default socket).

    Raises:
        SwarmError: the Docker engine cannot be reached (one line naming the endpoint, instead
            of the SDK's chained traceback).
    """
    try:
        return SwarmClient()
    except Exception as exc:  # docker.errors.DockerException; app must not import docker
        endpoint = environ.get("DOCKER_HOST") or "the default socket (DOCKER_HOST unset)"
        raise SwarmError(f"cannot connect to the Docker engine at {endpoint}: {exc}") from exc


class App:
    """Keelson, wired.

    Args:
        settings: validated Settings. environ: the process environment (interpolation input).
        client: an existing SwarmClient (tests); None builds one from DOCKER_HOST.
        metrics: an existing MetricsRecorder (tests); None builds one with a fresh registry.
    """

    def __init__(self, settings: Settings, environ: Optional[Mapping[str, str]] = None, *,
                 client: Optional[SwarmClient] = None, metrics: Optional[MetricsRecorder] = None):
        settings = settings if settings.instance else settings.validated()
        self.settings = settings
        environ = dict(os.environ if environ is None else environ)
        self.metrics = metrics or MetricsRecorder()
        self.store = StatusStore()
        self.client = client or connect_swarm(environ)
        self.engine = ImageEngine(self.client)
        self.digests = DigestCache(self.engine.registry_info, settings.image_poll_interval_s)
        self.builder = ImageBuilder(self.engine, settings.registry, observer=self.metrics,
                                    digests=self.digests)
        self.source = make_source(settings.repo, settings.branch, settings.path, settings.workdir)
        self.watcher = RolloutWatcher(self.client, timeout_s=settings.rollout_timeout_s,
                                      pending_timeout_s=settings.pending_timeout_s,
                                      poll_s=settings.watch_interval_s)
        self.applier = Applier(self.client, self.metrics, settings.instance)
        self.reconciler = Reconciler(settings, source=self.source, client=self.client,
                                     builder=self.builder, digests=self.digests,
                                     applier=self.applier, watcher=self.watcher,
                                     metrics=self.metrics, store=self.store,
                                     environ=interpolation_environ(environ))
        self.loop: Optional[ReconcileLoop] = None
        self.server = None
        self.file_watcher = None
        self._first_pass = threading.Event()

    def sync(self, dry_run: bool = False, allow_mass_prune: bool = False) -> PassResult:
        """Run one pass now (``dry_run``: plan only; ``allow_mass_prune``: lift the prune
        guard for this pass)."""
        return self.reconciler.reconcile(dry_run=dry_run, allow_mass_prune=allow_mass_prune)

    def _pass(self) -> PassResult:
        try:
            return self.sync()
        finally:
            self._first_pass.set()

    def ready(self) -> bool:
        """Ready once a first pass has finished and the Docker engine answers."""
        return self._first_pass.is_set() and self.client.ping()

    def start(self) -> None:
        """Start the HTTP server, the local file watcher (if any) and the loop thread."""
        from controller.http.server import StatusServer
        self.loop = ReconcileLoop(self._pass, self.settings.interval_s)
        if self.settings.listen:
            self.server = StatusServer(self.settings.listen, metrics=self.metrics,
                                       status=self.store.snapshot, ready=self.ready,
                                       on_webhook=lambda: self.loop.trigger.set("webhook"),
                                       webhook_secret=self.settings.webhook_secret)
            self.server.start()
            log.info("http listening on %s", self.settings.listen)
        path = local_watch_path(self.settings.repo)
        if path:
            from controller.source.watch import ChangeWatcher
            self.file_watcher = ChangeWatcher(path, lambda: self.loop.trigger.set("file"))
            self.file_watcher.start()
            log.info("watching %s for changes", path)
        self.loop.start()

    def stop(self) -> None:
        """Stop everything started by ``start`` (the current pass finishes first)."""
        if self.file_watcher:
            self.file_watcher.stop()
        if self.loop:
            self.loop.stop()
        if self.server:
            self.server.stop()
        self.client.close()

    def run_forever(self) -> None:
        """``start()``, then block until SIGTERM/SIGINT, then ``stop()``."""
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        self.start()
        done.wait()
        log.info("stopping")
        self.stop()
