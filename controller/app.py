"""Composition root: builds every object from Settings and runs them.

Nothing else in Keelson creates clients or threads; tests build an App the same way.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from typing import List, Mapping, Optional

from controller.config import Settings
from controller.errors import SwarmError
from controller.deploy.apply import Applier
from controller.health.rollout import RolloutWatcher
from controller.images.build import ImageBuilder
from controller.http.links import repo_web_url
from controller.images.digests import DigestCache
from controller.secrets.sops import SopsDecryptor
from controller.notify.notifier import Notifier, parse_events, parse_urls
from controller.model.registry_auth import RegistryAuth, registry_auth, unusable_entries
from controller.reconcile.controls import StackControls
from controller.model.lease import lease_name
from controller.model.status import PassResult as Result
from controller.reconcile.lease import WriterLease
from controller.reconcile.loop import PassClock, ReconcileLoop
from controller.reconcile.reconciler import PassResult, Reconciler
from controller.reconcile.state import StatusStore
from controller.render.compose.sandbox import RepoLimits
from controller.render.compose.variables import allowed_variables
from controller.source import local_watch_path, make_source
from controller.swarm.client import SwarmClient
from controller.swarm.engine_images import ImageEngine
from controller.swarm.identity import detect_identity
from controller.swarm.lease_store import LeaseStore
from controller.swarm.overview import read_overview
from controller.model.identity import ControllerIdentity
from controller.policy.guard import Guard
from controller.telemetry.metrics import MetricsRecorder

log = logging.getLogger("keelson.app")


def load_registry_auth(settings: Settings) -> RegistryAuth:
    """The registry logins the settings name (KEELSON_REGISTRY_AUTH_FILE,
    KEELSON_REGISTRY_USERNAME_FILE/PASSWORD_FILE); logs which registries have one (never a
    secret) and warns about config.json entries it cannot use (credential helpers).

    Raises:
        ConfigError: a bad config.json, or a username without password (or the reverse).
    """
    auth = registry_auth(settings.registry_auth, registry=settings.registry,
                         username=settings.registry_username, password=settings.registry_password)
    if settings.registry_auth:
        skipped = unusable_entries(settings.registry_auth)
        if skipped:
            log.warning("KEELSON_REGISTRY_AUTH_FILE: no usable login in %s (credential helpers "
                        "and credsStore are not supported: put the login in auths)",
                        ", ".join(skipped))
    if auth.hosts:
        log.info("registry logins for: %s", ", ".join(auth.hosts))
    return auth

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


def make_notifier(settings: Settings, metrics: MetricsRecorder) -> Optional[Notifier]:
    """The Notifier for KEELSON_NOTIFY_URLS_FILE's URLs, or None when there are none.

    Raises:
        ConfigError: an unknown event name or a URL Apprise does not understand.
    """
    urls = parse_urls(settings.notify_urls)
    if not urls:
        return None
    return Notifier(urls, events=parse_events(settings.notify_events),
                    repeat_window_s=settings.notify_repeat_window_s,
                    fetch_failing_after_s=settings.notify_fetch_failing_after_s, metrics=metrics)


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
        self.metrics.reconcile_interval(settings.interval_s)
        self.notifier = make_notifier(settings, self.metrics)  # issue 13.2; None when no URLs
        self.store = StatusStore(observer=self.notifier)
        # issue 9: registry logins for digest look-ups, builds, pushes and service writes
        self.registry_auth = load_registry_auth(settings)
        self.store.describe_source(repo_web_url(settings.repo))  # the page's commit links
        self.client = client or connect_swarm(environ)
        self.engine = ImageEngine(self.client, self.registry_auth)
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
        # issue 11: one writer per instance, even when Swarm briefly runs two Keelson tasks
        lease = lease_name(settings.instance, settings.stacks)
        self.lease = WriterLease(LeaseStore(self.client.api, lease, settings.instance),
                                 settings.lease_ttl_s)
        self.applier = Applier(self.client, self.metrics, settings.instance,
                               registry_auth=self.registry_auth, fence=self.lease.check)
        self.reconciler = Reconciler(settings, source=self.source, client=self.client,
                                     builder=self.builder, digests=self.digests,
                                     applier=self.applier, watcher=self.watcher,
                                     metrics=self.metrics, store=self.store,
                                     environ=allowed_variables(environ, settings.env_allow),
                                     guard=self.guard,
                                     # issue 9: SOPS files decrypted in memory with the age key
                                     decryptor=(SopsDecryptor(settings.sops_age_key_file)
                                                if settings.sops_age_key_file else None))
        self.loop: Optional[ReconcileLoop] = None
        self.server = None
        self.file_watcher = None
        self._first_pass = threading.Event()
        self.pass_clock = PassClock(settings.pass_deadline_s)  # issue 7: /readyz on a stuck pass
        # issue 13.3: passes and per-stack controls never overlap (both read/write records)
        self.pass_lock = threading.Lock()
        self.controls = StackControls(self.reconciler, client=self.client, source=self.source,
                                      store=self.store, instance=settings.instance,
                                      lock=self.pass_lock, request_pass=self._request_pass,
                                      fence=self.lease.check)

    def sync(self, dry_run: bool = False, allow_mass_prune: bool = False,
             stacks: Optional[List[str]] = None) -> PassResult:
        """Run one pass now (``dry_run``: plan only; ``allow_mass_prune``: lift the prune
        guard for this pass; ``stacks``: only these stacks, None for all).

        A writing pass needs the instance's writer lease: while another Keelson task of the
        same instance holds it, nothing is done and the result is ``standby``. A one-shot pass
        (no loop started) releases the lease when it ends.
        """
        if dry_run:
            return self.reconciler.reconcile(dry_run=True, stacks=stacks)
        if not self.lease.tick():
            self.store.lease_waiting(self.lease.other)
            self.metrics.lease_held(False)
            return PassResult(Result.STANDBY.value, error=f"standby: the writer lease of instance "
                                             f"{self.settings.instance} is held by "
                                             f"{self.lease.other or 'another Keelson'}")
        self.store.lease_waiting("", holder=self.lease.holder)
        self.metrics.lease_held(True)
        one_shot = self.loop is None
        if one_shot:  # renewed while the pass runs (a rollout watch outlasts a TTL)
            self.lease.start_renewing()
        try:
            return self.reconciler.reconcile(allow_mass_prune=allow_mass_prune, stacks=stacks)
        finally:
            if one_shot:
                self.lease.stop(release=True)

    def _request_pass(self, stacks: List[str]) -> None:
        """Queue a pass for ``stacks`` alone (a control was used); no-op without a loop."""
        if self.loop is not None:
            self.loop.trigger.set("api", stacks)

    def _pass(self, stacks: Optional[List[str]] = None) -> PassResult:
        self.pass_clock.started()
        try:
            with self.pass_lock:
                return self.sync(stacks=stacks)
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
                                  min_gap_s=self.settings.min_pass_gap_s,
                                  reconcile_stacks=self._pass)
        if self.settings.listen:
            self.server = StatusServer(self.settings.listen, metrics=self.metrics,
                                       status=self.store.snapshot, ready=self.ready,
                                       on_webhook=lambda: self.loop.trigger.set("webhook"),
                                       webhook_secret=self.settings.webhook_secret,
                                       webhook_allow_unsigned=self.settings.webhook_allow_unsigned,
                                       api_token=self.settings.api_token,
                                       max_connections=self.settings.http_max_connections,
                                       controls=self.controls,
                                       swarm=SwarmView(lambda: read_overview(self.client.api)))
            self.server.start()
            log.info("http listening on %s", self.settings.listen)
        path = local_watch_path(self.settings.repo)
        if path:
            from controller.source.watch import ChangeWatcher
            self.file_watcher = ChangeWatcher(path, lambda: self.loop.trigger.set("file"))
            self.file_watcher.start()
            log.info("watching %s for changes", path)
        self.lease.start_renewing()
        self.loop.start()

    def stop(self) -> None:
        """Stop everything started by ``start`` (the current pass finishes first)."""
        if self.file_watcher:
            self.file_watcher.stop()
        if self.loop:
            self.loop.stop()
        self.lease.stop(release=True)  # a clean stop hands the lease over at once
        if self.server:
            self.server.stop()
        if self.notifier:
            self.notifier.close()
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
