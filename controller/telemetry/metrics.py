"""Every Prometheus metric Keelson exports, behind one small recorder.

The reconciler, the rollout watcher and the source call the verbs of ``MetricsRecorder``; none
of them touches ``prometheus_client``. Each recorder owns a fresh ``CollectorRegistry`` (never
the process-wide default), so tests build as many as they like. Names follow the Prometheus
conventions: ``keelson_`` prefix, base units (seconds), ``_total`` on counters, ``_info`` gauges
that are always 1 and carry their facts as labels. docs/metrics.md lists every series.
"""
from __future__ import annotations

import platform
import threading
import time
from typing import Dict, Iterable, Optional, Set, Tuple

from prometheus_client import (CollectorRegistry, Counter, GCCollector, Gauge, Histogram,
                               PlatformCollector, ProcessCollector, generate_latest)
from prometheus_client import exposition as _exposition

from controller import __version__
from controller.model.analysis import AnalysisVerdict
from controller.model.status import NodePassResult, RolloutOutcome

RECONCILE_RESULTS = ("success", "failed", "partial", "noop")
ROLLOUT_RESULTS = tuple(RolloutOutcome)
ANALYSIS_RESULTS = tuple(AnalysisVerdict)  # issue 10.2
DRIFT_KINDS = ("service", "network", "config", "secret", "volume", "unmanaged")  # issue 8.4
ROLLBACK_SCOPES = ("service", "stack")  # issue 13.4
NOTIFY_RESULTS = ("sent", "error", "suppressed", "dropped")  # issue 13.2
NODE_RESULTS = tuple(str(r) for r in NodePassResult if r not in (NodePassResult.NOOP, NodePassResult.PLANNED))  # issue 11
OP_RESULTS = ("success", "error")  # image builds, image pushes, git fetches

# Bucket edges in seconds. A pass spans a no-op (tens of ms) to a slow rollout (10 min).
RECONCILE_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
ROLLOUT_BUCKETS_S = (1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200)
BUILD_BUCKETS_S = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200)
PUSH_BUCKETS_S = (0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
FETCH_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# The text format generate_latest writes; 0.0.4 is understood by every Prometheus version.
_CONTENT_TYPE = getattr(_exposition, "CONTENT_TYPE_PLAIN_0_0_4", _exposition.CONTENT_TYPE_LATEST)


def _check(value: str, allowed: Tuple[str, ...], what: str) -> str:
    """Return ``value`` if it is one of ``allowed``; raise ValueError otherwise (bounded labels)."""
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _seconds(duration_s: float) -> float:
    """Clamp a duration to >= 0 s: a wall-clock step backwards must not poison a histogram."""
    return max(0.0, float(duration_s))


class MetricsRecorder:
    """Records what Keelson does as Prometheus metrics in a registry of its own.

    Thread-safe: the reconcile worker records while the HTTP server scrapes.

    Args:
        registry: where the metrics are registered; None creates a fresh ``CollectorRegistry``.
            Never the global default registry, so two recorders never collide.
    Attributes:
        registry: the registry holding every Keelson metric (tests read samples from it).
    """

    def __init__(self, registry: Optional[CollectorRegistry] = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        self._lock = threading.Lock()
        r = self.registry
        self._build_info = Gauge(
            "keelson_build_info", "Always 1; Keelson's version and the Python it runs on.",
            ["version", "python"], registry=r)
        self._build_info.labels(version=__version__, python=platform.python_version()).set(1)
        # issue 13.4: the standard collectors, on Keelson's own registry (process_* on Linux,
        # python_info, python_gc_*), as the default registry would have them
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self._reconciles = Counter(
            "keelson_reconcile_total", "Reconcile passes, by result (success|failed|partial|noop).",
            ["result"], registry=r)
        self._reconcile_duration = Histogram(
            "keelson_reconcile_duration_seconds", "Wall time of one reconcile pass, in seconds.",
            buckets=RECONCILE_BUCKETS_S, registry=r)
        self._last_success = Gauge(
            "keelson_last_successful_reconcile_timestamp_seconds",
            "Unix time the last pass completed (result success, noop or partial; 0 before the "
            "first).", registry=r)
        # issue 8: per-stack freshness, so one Stalled stack does not hide the others
        self._stack_synced = Gauge(
            "keelson_stack_last_synced_timestamp_seconds",
            "Unix time a pass last found the stack Synced (its live state matches git).",
            ["stack"], registry=r)
        self._revision_info = Gauge(
            "keelson_source_revision_info", "The source revision last fetched; always 1.",
            ["revision", "ref"], registry=r)
        self._commit_time = Gauge(
            "keelson_source_commit_timestamp_seconds",
            "Commit time of the source revision, unix seconds (0 when unknown, e.g. a folder).",
            registry=r)
        self._stack_info = Gauge(
            "keelson_stack_info", "One series per stack with its revision, sync and health; always 1.",
            ["stack", "revision", "sync_status", "health_status"], registry=r)
        self._rollouts = Counter(
            "keelson_rollouts_total", "Service rollouts, by stack and result "
            "(completed|rolled_back|failed).", ["stack", "result"], registry=r)
        self._rollout_duration = Histogram(
            "keelson_rollout_duration_seconds", "Time from a service update to its outcome, seconds.",
            ["stack"], buckets=ROLLOUT_BUCKETS_S, registry=r)
        self._rollbacks = Counter(
            "keelson_rollbacks_total", "Service rollouts that Swarm rolled back, by stack.",
            ["stack"], registry=r)
        # issue 10: stack-atomic rollback
        self._stack_rollbacks = Counter(
            "keelson_stack_rollbacks_total", "Rollbacks, by stack and scope (service: one "
            "service rolled back, by Swarm or Keelson; stack: Keelson put the whole stack back, "
            "once per failed pass).",
            ["stack", "scope"], registry=r)
        self._builds = Counter(
            "keelson_image_builds_total", "Image builds, by result (success|error).",
            ["result"], registry=r)
        self._build_duration = Histogram(
            "keelson_image_build_duration_seconds", "Wall time of one image build, seconds.",
            buckets=BUILD_BUCKETS_S, registry=r)
        self._pushes = Counter(
            "keelson_image_pushes_total", "Image pushes, by result (success|error).",
            ["result"], registry=r)
        self._push_duration = Histogram(
            "keelson_image_push_duration_seconds", "Wall time of one image push, seconds.",
            buckets=PUSH_BUCKETS_S, registry=r)
        self._fetches = Counter(
            "keelson_git_fetches_total", "Fetches of the manifests source, by result (success|error).",
            ["result"], registry=r)
        self._fetch_errors = Counter(
            "keelson_git_fetch_errors_total", "Failed fetches of the manifests source.", registry=r)
        self._fetch_duration = Histogram(
            "keelson_git_fetch_duration_seconds", "Wall time of one fetch of the source, seconds.",
            buckets=FETCH_BUCKETS_S, registry=r)
        self._lease_held = Gauge(
            "keelson_lease_held", "1 while this Keelson holds its instance's writer lease "
            "(0: another task of the instance writes; this one waits)", registry=r)
        self._swarm_writes = Counter(
            "keelson_swarm_writes_total", "Writes to the Swarm API, by object kind and action.",
            ["kind", "action"], registry=r)
        self._node_changes = Counter(
            "keelson_node_changes_total", "Node changes from the nodes file, by result "
            "(applied|failed|refused|invalid; a refused or invalid plan counts once per pass).",
            ["result"], registry=r)

        # issue 8.4: drift
        self._drift_detected = Counter(
            "keelson_drift_detected_total", "Live objects found differing from git, by stack and "
            "kind (service|network|config|secret|volume|unmanaged); once per object per pass.",
            ["stack", "kind"], registry=r)
        self._drifted = Gauge(
            "keelson_stack_drifted_objects", "Objects of a stack that differ from git after the "
            "latest pass (0 once healed; stays above 0 in report mode).", ["stack"], registry=r)
        # issue 10.2: analysis after a rollout
        self._analyses = Counter(
            "keelson_analysis", "Analyses run after a stack's rollout, by stack and result "
            "(passed|failed).", ["stack", "result"], registry=r)

        # issue 13.4: what the shipped alert rules need
        self._prune_blocked = Gauge(
            "keelson_prune_blocked", "1 while the latest pass's prune was blocked by the "
            "guard (KEELSON_PRUNE_MAX_STACKS / _RATIO), else 0.", registry=r)
        self._interval = Gauge(
            "keelson_reconcile_interval_seconds", "The poll interval (KEELSON_INTERVAL), "
            "seconds; alert rules compare the last completed pass with it.", registry=r)

        # issue 13.2: notifications
        self._notifications = Counter(
            "keelson_notifications_total", "Notification events, by event kind and result "
            "(sent|error|suppressed|dropped).", ["event", "result"], registry=r)

        # Series that must exist from the start, so dashboards and increase() see a 0.
        for result in RECONCILE_RESULTS:
            self._reconciles.labels(result=result)
        for result in OP_RESULTS:
            self._builds.labels(result=result)
            self._pushes.labels(result=result)
            self._fetches.labels(result=result)
        for result in NODE_RESULTS:
            self._node_changes.labels(result=result)

        self._revision: Optional[Tuple[str, str]] = None  # labels of the live revision series
        self._stack_labels: Dict[str, Tuple[str, str, str, str]] = {}  # stack -> stack_info labels
        self._stacks_seen: Set[str] = set()  # stacks whose per-stack counters exist

    # -- reconcile ------------------------------------------------------------------------------

    def reconcile_finished(self, result: str, duration_s: float) -> None:
        """Record one finished reconcile pass.

        Args:
            result: ``success`` (changes applied), ``failed``, ``partial`` (some stacks failed)
                or ``noop`` (nothing to change).
            duration_s: wall time of the pass, seconds.
        Returns:
            None. Increments ``keelson_reconcile_total{result}``, observes
            ``keelson_reconcile_duration_seconds``; for a pass that completed (success, noop,
            and partial: the pass ran to its end although some stack failed or is stalled)
            also sets ``keelson_last_successful_reconcile_timestamp_seconds`` to now (unix
            seconds). A failed pass (fetch or listing failed) leaves it as it was.
        Raises:
            ValueError: ``result`` is not one of the four above.
        """
        _check(result, RECONCILE_RESULTS, "reconcile result")
        self._reconciles.labels(result=result).inc()
        self._reconcile_duration.observe(_seconds(duration_s))
        if result in ("success", "noop", "partial"):
            self._last_success.set(time.time())

    def source_revision(self, sha: str, ref: str, committed_at: Optional[float]) -> None:
        """Record the revision of the manifests source the latest pass fetched.

        Args:
            sha: revision id (full git commit hash, or ``dir-<sha256>`` for a folder).
            ref: the branch followed, or ``folder``.
            committed_at: commit time, unix seconds; None when the source has none (set to 0).
        Returns:
            None. ``keelson_source_revision_info{revision,ref}`` is 1 for this revision only
            (the previous revision's series is removed); sets
            ``keelson_source_commit_timestamp_seconds``.
        Raises:
            Nothing.
        """
        labels = (sha, ref)
        with self._lock:
            self._revision_info.labels(*labels).set(1)
            if self._revision is not None and self._revision != labels:
                self._revision_info.remove(*self._revision)
            self._revision = labels
        self._commit_time.set(float(committed_at) if committed_at is not None else 0.0)

    # -- stacks ---------------------------------------------------------------------------------

    def stack_status(self, stack: str, revision: str, sync_status: str, health_status: str) -> None:
        """Publish a stack's current state as its single ``keelson_stack_info`` series.

        Args:
            stack: stack name.
            revision: the revision last applied to (or attempted on) the stack.
            sync_status: Synced / OutOfSync / Progressing / Failed / Stalled / Unknown.
            health_status: Healthy / Degraded / RolledBack / Missing / Unknown.
        Returns:
            None. The stack's previous series (other label values) is removed, so each stack has
            exactly one series (Argo CD's ``app_info`` pattern). The first time a stack is seen
            its rollout and rollback counters are created at 0. When ``sync_status`` is Synced,
            ``keelson_stack_last_synced_timestamp_seconds{stack}`` is set to now (unix seconds).
        Raises:
            Nothing.
        """
        labels = (stack, revision, sync_status, health_status)
        with self._lock:
            # Set the new series before removing the old one: a scrape never sees the stack gone.
            self._stack_info.labels(*labels).set(1)
            old = self._stack_labels.get(stack)
            if old is not None and old != labels:
                self._stack_info.remove(*old)
            self._stack_labels[stack] = labels
            self._ensure_stack_counters(stack)
            if sync_status == "Synced":
                self._stack_synced.labels(stack=stack).set(time.time())

    def forget_stack(self, stack: str) -> None:
        """Remove every series that carries ``stack`` (the stack left the repo or was pruned).

        Args:
            stack: stack name.
        Returns:
            None. Removes its ``keelson_stack_info``,
            ``keelson_stack_last_synced_timestamp_seconds``, ``keelson_rollouts_total``,
            ``keelson_rollout_duration_seconds``, ``keelson_rollbacks_total``,
            ``keelson_stack_rollbacks_total``,
            ``keelson_drift_detected_total`` and ``keelson_stack_drifted_objects`` series.
            Unknown stacks are ignored.
        Raises:
            Nothing.
        """
        with self._lock:
            old = self._stack_labels.pop(stack, None)
            if old is not None:
                self._stack_info.remove(*old)
            try:
                self._stack_synced.remove(stack)
            except KeyError:
                pass  # never Synced
            if stack in self._stacks_seen:
                self._stacks_seen.discard(stack)
                for result in ROLLOUT_RESULTS:
                    self._rollouts.remove(stack, result)
                self._rollout_duration.remove(stack)
                self._rollbacks.remove(stack)
                for scope in ROLLBACK_SCOPES:
                    self._stack_rollbacks.remove(stack, scope)
            for kind in DRIFT_KINDS:
                try:
                    self._drift_detected.remove(stack, kind)
                except KeyError:
                    pass
            try:
                self._drifted.remove(stack)
            except KeyError:
                pass
            for result in ANALYSIS_RESULTS:  # issue 10.2
                try:
                    self._analyses.remove(stack, result)
                except KeyError:
                    pass

    def _ensure_stack_counters(self, stack: str) -> None:
        """Create ``stack``'s per-stack series at 0 once; caller holds the lock."""
        if stack in self._stacks_seen:
            return
        for result in ROLLOUT_RESULTS:
            self._rollouts.labels(stack=stack, result=result)
        self._rollout_duration.labels(stack=stack)
        self._rollbacks.labels(stack=stack)
        for scope in ROLLBACK_SCOPES:
            self._stack_rollbacks.labels(stack=stack, scope=scope)
        self._stacks_seen.add(stack)

    # -- rollouts and images ----------------------------------------------------------------------

    def rollout_finished(self, stack: str, service: str, result: str, duration_s: float) -> None:
        """Record how one service's rollout ended.

        Args:
            stack: stack name. service: service name (not a label: it would multiply series;
                the per-service story is in /api/status and the logs).
            result: ``completed``, ``rolled_back`` or ``failed``.
            duration_s: seconds from the service update to the outcome.
        Returns:
            None. Increments ``keelson_rollouts_total{stack,result}``, observes
            ``keelson_rollout_duration_seconds{stack}``; ``rolled_back`` also increments
            ``keelson_rollbacks_total{stack}`` and ``keelson_stack_rollbacks_total{stack,
            scope="service"}``.
        Raises:
            ValueError: ``result`` is not one of the three above.
        """
        _check(result, ROLLOUT_RESULTS, "rollout result")
        with self._lock:
            self._ensure_stack_counters(stack)
            self._rollouts.labels(stack=stack, result=result).inc()
            self._rollout_duration.labels(stack=stack).observe(_seconds(duration_s))
            if result == RolloutOutcome.ROLLED_BACK:
                self._rollbacks.labels(stack=stack).inc()
                self._stack_rollbacks.labels(stack=stack, scope="service").inc()

    def stack_rollback(self, stack: str, scope: str) -> None:
        """Count one rollback (issue 10).

        Args:
            stack: stack name. scope: ``stack`` (every service the pass changed was returned)
                or ``service`` (one service rolled back alone).
        Returns:
            None. Increments ``keelson_stack_rollbacks_total{stack,scope}`` (services Swarm
            rolled back are counted by ``rollout_finished`` already).
        Raises:
            ValueError: ``scope`` is neither stack nor service.
        """
        _check(scope, ROLLBACK_SCOPES, "rollback scope")
        with self._lock:
            self._ensure_stack_counters(stack)
            self._stack_rollbacks.labels(stack=stack, scope=str(scope)).inc()

    def prune_blocked(self, blocked: bool) -> None:
        """Set ``keelson_prune_blocked`` to 1 when the latest pass's prune was blocked, else 0."""
        self._prune_blocked.set(1 if blocked else 0)

    def reconcile_interval(self, interval_s: float) -> None:
        """Publish the poll interval (``keelson_reconcile_interval_seconds``, seconds)."""
        self._interval.set(float(interval_s))

    def analysis(self, stack: str, result: str) -> None:
        """Record how one stack's analysis after a rollout ended (issue 10.2).

        Args:
            stack: stack name. result: ``passed`` or ``failed`` (a refused URL is failed).
        Returns:
            None. Increments ``keelson_analysis_total{stack,result}`` (both results of the
            stack exist from its first analysis, so increase() sees a 0).
        Raises:
            ValueError: ``result`` is not one of the two above.
        """
        _check(result, ANALYSIS_RESULTS, "analysis result")
        with self._lock:
            for other in ANALYSIS_RESULTS:
                self._analyses.labels(stack=stack, result=other)
            self._analyses.labels(stack=stack, result=result).inc()

    def image_build(self, stack: str, service: str, result: str, duration_s: float) -> None:
        """Record one image build.

        Args:
            stack, service: what the image is for (not labels; builds are few and logged).
            result: ``success`` or ``error``.
            duration_s: wall time of the build, seconds.
        Returns:
            None. Increments ``keelson_image_builds_total{result}``, observes
            ``keelson_image_build_duration_seconds``.
        Raises:
            ValueError: ``result`` is neither success nor error.
        """
        self._builds.labels(result=_check(result, OP_RESULTS, "build result")).inc()
        self._build_duration.observe(_seconds(duration_s))

    def image_push(self, stack: str, service: str, result: str, duration_s: float) -> None:
        """Record one image push.

        Args:
            stack, service: what the image is for (not labels).
            result: ``success`` or ``error``.
            duration_s: wall time of the push, seconds.
        Returns:
            None. Increments ``keelson_image_pushes_total{result}``, observes
            ``keelson_image_push_duration_seconds``.
        Raises:
            ValueError: ``result`` is neither success nor error.
        """
        self._pushes.labels(result=_check(result, OP_RESULTS, "push result")).inc()
        self._push_duration.observe(_seconds(duration_s))

    # -- source and swarm -----------------------------------------------------------------------

    def git_fetch(self, result: str, duration_s: float) -> None:
        """Record one fetch of the manifests source.

        Args:
            result: ``success`` or ``error``.
            duration_s: wall time of the fetch, seconds.
        Returns:
            None. Increments ``keelson_git_fetches_total{result}`` (and
            ``keelson_git_fetch_errors_total`` on error), observes
            ``keelson_git_fetch_duration_seconds``.
        Raises:
            ValueError: ``result`` is neither success nor error.
        """
        self._fetches.labels(result=_check(result, OP_RESULTS, "fetch result")).inc()
        if result == "error":
            self._fetch_errors.inc()
        self._fetch_duration.observe(_seconds(duration_s))

    def swarm_write(self, kind: str, action: str) -> None:
        """Count one write to the Swarm API (a no-op pass must leave these unchanged).

        Args:
            kind: object kind (``service``, ``network``, ``config``, ``secret``, ...).
            action: ``create``, ``update`` or ``remove``.
        Returns:
            None. Increments ``keelson_swarm_writes_total{kind,action}``.
        Raises:
            Nothing.
        """
        self._swarm_writes.labels(kind=kind, action=action).inc()

    def lease_held(self, held: bool) -> None:
        """Set ``keelson_lease_held`` (1 holding the writer lease, 0 waiting). Raises nothing."""
        self._lease_held.set(1 if held else 0)

    def node_changes(self, result: str, count: int = 1) -> None:
        """Count node changes of one pass (issue 11).

        Args:
            result: ``applied`` or ``failed`` (count: node updates), ``refused`` or ``invalid``
                (count 1: a guard refused the plan, or the nodes file is wrong).
            count: how many (0 records nothing).
        Returns:
            None. Increments ``keelson_node_changes_total{result}``.
        Raises:
            ValueError: an unknown result.
        """
        if count > 0:
            self._node_changes.labels(result=_check(result, NODE_RESULTS, "node result")).inc(count)

    def drift(self, stack: str, kinds: Iterable[str], remaining: int) -> None:
        """Record the drift one pass found in one stack (issue 8.4).

        Args:
            stack: stack name.
            kinds: the kind of each drifted object found (``service``, ``network``, ``config``,
                ``secret``, ``volume``, ``unmanaged``); one increment each.
            remaining: objects still differing from git after the pass (0 when healed).
        Returns:
            None. Increments ``keelson_drift_detected_total{stack,kind}`` and sets
            ``keelson_stack_drifted_objects{stack}``.
        Raises:
            ValueError: an unknown kind (labels stay bounded).
        """
        for kind in kinds:
            self._drift_detected.labels(stack=stack, kind=_check(kind, DRIFT_KINDS, "kind")).inc()
        self._drifted.labels(stack=stack).set(max(0, int(remaining)))


    def notification(self, event: str, result: str) -> None:
        """Count one notification event (issue 13.2).

        Args:
            event: the EventKind value (rollout_started, failed, stalled...).
            result: ``sent`` (every receiver accepted it), ``error`` (a receiver refused it or
                was unreachable), ``suppressed`` (a repeat inside the repeat window) or
                ``dropped`` (the send queue was full).
        Returns:
            None. Increments ``keelson_notifications_total{event,result}``.
        Raises:
            ValueError: an unknown result (labels stay bounded).
        """
        _check(result, NOTIFY_RESULTS, "notification result")
        self._notifications.labels(event=event, result=result).inc()

    # -- exposition -----------------------------------------------------------------------------

    def exposition(self) -> Tuple[bytes, str]:
        """Render every metric in the Prometheus text format.

        Returns:
            tuple: (body as UTF-8 bytes, the Content-Type header value to send with it).
        Raises:
            Nothing.
        """
        return generate_latest(self.registry), _CONTENT_TYPE
