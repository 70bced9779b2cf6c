"""Composition root: builds every object from Settings and runs them.

Nothing else in Keelson creates clients or threads; tests build an App the same way.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Mapping, Optional

from controller.config import Settings
from controller.errors import SwarmError
from controller.deploy.apply import Applier
from controller.health.rollout import RolloutWatcher
from controller.images.build import ImageBuilder
from controller.http.links import repo_web_url
from controller.images.digests import DigestCache
from controller.reconcile.loop import PassClock, ReconcileLoop
from controller.reconcile.reconciler import PassResult, Reconciler
from controller.reconcile.state import StatusStore
from controller.render.compose.sandbox import RepoLimits
from controller.render.compose.variables import allowed_variables
from controller.source import local_watch_path, make_source
from controller.swarm.client import SwarmClient
from controller.swarm.engine_images import ImageEngine
from controller.swarm.identity import detect_identity
from controller.swarm.overview import read_overview
from controller.model.identity import ControllerIdentity
from controller.policy.guard import Guard
from controller.telemetry.metrics import MetricsRecorder

log = logging.getLogger("keelson.app")

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
        settings: validated Settings. environ: the process environment; stack files see only
            the variables ``settings.env_allow`` allows (``render.variables``).
        client: an existing SwarmClient (tests); None builds one from DOCKER_HOST.
        metrics: an existing MetricsRecorder (tests); None builds one with a fresh registry.
        identity: Keelson's own service (tests); None detects it from the Engine (issue 7).
    """

    def __init__(self, settings: Settings, environ: Optional[Mapping[str, str]] = None, *,
                 client: Optional[SwarmClient] = None, metrics: Optional[MetricsRecorder] = None,
                 identity: Optional[ControllerIdentity] = None):
        settings = settings if settings.instance else settings.validated()
        self.settings = settings
        environ = dict(os.environ if environ is None else environ)
        self.metrics = metrics or MetricsRecorder()
        self.store = StatusStore()
        self.store.describe_source(repo_web_url(settings.repo))  # the page's commit links
        self.client = client or connect_swarm(environ)
        self.engine = ImageEngine(self.client)
        self.digests = DigestCache(self.engine.registry_info, settings.image_poll_interval_s)
        self.builder = ImageBuilder(self.engine, settings.registry, observer=self.metrics,
                                    digests=self.digests, build_timeout_s=settings.build_timeout_s,
                                    limits=RepoLimits.from_settings(settings))
        self.source = make_source(settings.repo, settings.branch, settings.path, settings.workdir,
                                  git_timeout_s=settings.git_timeout_s,
                                  max_tree_bytes=settings.max_tree_bytes)
        # issue 7: who Keelson is on the swarm (its own stack and secrets are off limits)
        self.identity = identity or detect_identity(self.client.api)
        self.guard = Guard.from_settings(settings, self.identity)
        self.watcher = RolloutWatcher(self.client, timeout_s=settings.rollout_timeout_s,
                                      pending_timeout_s=settings.pending_timeout_s,
                                      poll_s=settings.watch_interval_s)
        self.applier = Applier(self.client, self.metrics, settings.instance)
        self.reconciler = Reconciler(settings, source=self.source, client=self.client,
                                     builder=self.builder, digests=self.digests,
                                     applier=self.applier, watcher=self.watcher,
                                     metrics=self.metrics, store=self.store,
                                     environ=allowed_variables(environ, settings.env_allow),
                                     guard=self.guard)
        self.loop: Optional[ReconcileLoop] = None
        self.server = None
        self.file_watcher = None
        self._first_pass = threading.Event()
        self.pass_clock = PassClock(settings.pass_deadline_s)  # issue 7: /readyz on a stuck pass

    def sync(self, dry_run: bool = False, allow_mass_prune: bool = False) -> PassResult:
        """Run one pass now (``dry_run``: plan only; ``allow_mass_prune``: lift the prune
        guard for this pass)."""
        return self.reconciler.reconcile(dry_run=dry_run, allow_mass_prune=allow_mass_prune)

    def _pass(self) -> PassResult:
        self.pass_clock.started()
        try:
            return self.sync()
        finally:
            self.pass_clock.finished()
            self._first_pass.set()

    def ready(self) -> bool:
        """Ready once a first pass has finished, no pass has run past KEELSON_PASS_DEADLINE,
        and the Docker engine answers."""
        return (self._first_pass.is_set() and not self.pass_clock.overdue()
                and self.client.ping())

    def start(self) -> None:
        """Start the HTTP server, the local file watcher (if any) and the loop thread."""
        from controller.http.server import StatusServer
        from controller.http.swarm_view import SwarmView
        self.loop = ReconcileLoop(self._pass, self.settings.interval_s,
                                  min_gap_s=self.settings.min_pass_gap_s)
        if self.settings.listen:
            self.server = StatusServer(self.settings.listen, metrics=self.metrics,
                                       status=self.store.snapshot, ready=self.ready,
                                       on_webhook=lambda: self.loop.trigger.set("webhook"),
                                       webhook_secret=self.settings.webhook_secret,
                                       webhook_allow_unsigned=self.settings.webhook_allow_unsigned,
                                       api_token=self.settings.api_token,
                                       max_connections=self.settings.http_max_connections,
                                       swarm=SwarmView(lambda: read_overview(self.client.api)))
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
