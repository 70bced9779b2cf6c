"""Sends notification events through Apprise, off the reconcile loop.

The status store calls ``stack_changed`` / ``source_failed`` / ``source_fetched`` from the pass;
they derive events (``notify.events``), filter them by kind, drop repeats inside the repeat
window, and put them on a bounded queue. One daemon thread sends them, so a slow or unreachable
receiver never blocks a pass; when the queue is full an event is dropped (and counted). Nothing
here raises into the loop: every failure is counted in ``keelson_notifications_total{event,
result}`` and logged without the URLs (they are secrets: Slack and Discord put the token in
the path).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from controller.errors import ConfigError
from controller.model import Revision, StackStatus
from controller.model.status import EventKind
from controller.notify.events import (REPEATABLE, NotificationEvent, source_failing,
                                      source_recovered, stack_events)
from controller.telemetry.scrub import scrub

log = logging.getLogger("keelson.notify")

QUEUE_SIZE = 256  # events waiting to be sent; more are dropped (result="dropped")
RESULTS = ("sent", "error", "suppressed", "dropped")


def parse_urls(text: str) -> Tuple[str, ...]:
    """Apprise URLs from a secrets file: one a line; blank lines and ``#`` comments skipped."""
    return tuple(line.strip() for line in text.splitlines()
                 if line.strip() and not line.strip().startswith("#"))


def parse_events(names: Iterable[str]) -> frozenset:
    """The EventKinds named in KEELSON_NOTIFY_EVENTS (empty: every kind).

    Raises:
        ConfigError: an unknown name, listing the known ones.
    """
    names = [n.strip().lower() for n in names if n.strip()]
    if not names:
        return frozenset(EventKind)
    known = {k.value: k for k in EventKind}
    bad = [n for n in names if n not in known]
    if bad:
        raise ConfigError(f"KEELSON_NOTIFY_EVENTS: unknown event {', '.join(bad)}; "
                          f"use {', '.join(known)}")
    return frozenset(known[n] for n in names)


class _ScrubUrls(logging.Filter):
    """Masks the notification URLs (and their parts) in Apprise's own log records."""

    def __init__(self, secrets: Sequence[str]):
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with every secret masked; always keep the record."""
        record.msg = scrub(record.getMessage(), known=self.secrets)
        record.args = ()
        return True


def _secret_parts(urls: Sequence[str]) -> List[str]:
    """Each URL and every path/host part of it long enough to be a token (masked in logs)."""
    parts: List[str] = []
    for url in urls:
        parts.append(url)
        rest = url.split("://", 1)[-1]
        for piece in rest.replace("@", "/").replace("?", "/").replace(":", "/").split("/"):
            if len(piece) >= 8:
                parts.append(piece)
    return sorted(set(parts), key=len, reverse=True)


class Notifier:
    """Derives, filters, de-duplicates and sends notifications.

    Args:
        urls: Apprise URLs (``json://host:port/path``, ``slack://...``, ``mailto://...``).
            Secrets: never logged, never in the status.
        events: the kinds to send (``parse_events``); others are ignored.
        repeat_window_s: seconds during which the same failure (kind, stack, revision, reason)
            is sent once.
        fetch_failing_after_s: seconds of failing fetches before fetch_failing is sent.
        metrics: MetricsRecorder (``notification(event, result)``), or None.
        send: ``(title, body) -> bool`` used instead of Apprise (None: Apprise with ``urls``).
        clock: unix-seconds clock (tests of the repeat window pass their own).
    Raises:
        ConfigError: a URL Apprise does not understand (named by its position only).
    """

    def __init__(self, urls: Sequence[str], *, events: Iterable[EventKind] = tuple(EventKind),
                 repeat_window_s: float = 3600.0, fetch_failing_after_s: float = 600.0,
                 metrics=None, send: Optional[Callable[[str, str], bool]] = None,
                 clock: Callable[[], float] = time.time):
        self.events = frozenset(events)
        self.repeat_window_s = repeat_window_s
        self.fetch_failing_after_s = fetch_failing_after_s
        self.metrics = metrics
        self.clock = clock
        self._send = send or self._apprise(urls)
        self._sent: Dict[Tuple[str, str, str, str], float] = {}
        self._lock = threading.Lock()
        self._queue: "queue.Queue[Optional[NotificationEvent]]" = queue.Queue(QUEUE_SIZE)
        self._source: Optional[Revision] = None
        self._failing_since: Optional[float] = None
        self._failing_told = False
        self._thread = threading.Thread(target=self._worker, name="notify", daemon=True)
        self._thread.start()

    @staticmethod
    def _apprise(urls: Sequence[str]) -> Callable[[str, str], bool]:
        """An Apprise object holding ``urls``, as a send function."""
        import apprise  # only when notifications are configured

        logging.getLogger("apprise").addFilter(_ScrubUrls(_secret_parts(urls)))
        client = apprise.Apprise()
        for i, url in enumerate(urls, 1):
            if not client.add(url):
                raise ConfigError(f"KEELSON_NOTIFY_URLS_FILE: line {i} is not an Apprise URL "
                                  "this Keelson understands (the URL itself is not shown)")

        def send(title: str, body: str) -> bool:
            """Send to every URL; True when all accepted it."""
            return bool(client.notify(title=title, body=body))
        return send

    # -- what the status store reports --------------------------------------------------------
    def stack_changed(self, prev: Optional[StackStatus], new: StackStatus) -> None:
        """A stack's status changed (any put in the status store). Never raises."""
        self._guard(lambda: self._offer(stack_events(prev, new, self._source, self.clock())))

    def source_fetched(self, revision: Revision) -> None:
        """The source fetched ``revision``: a failing source has recovered. Never raises."""
        def run():
            """Note the revision; tell a recovery after a fetch_failing."""
            self._source = revision
            told, self._failing_told, self._failing_since = self._failing_told, False, None
            if told:
                self._offer([source_recovered(revision, self.clock())])
        self._guard(run)

    def source_failed(self, message: str) -> None:
        """A fetch failed; past ``fetch_failing_after_s`` of failures, tell it once (then once
        per repeat window). Never raises."""
        def run():
            """Start or continue the failing period."""
            now = self.clock()
            if self._failing_since is None:
                self._failing_since = now
            if now - self._failing_since >= self.fetch_failing_after_s:
                self._failing_told = True
                self._offer([source_failing(message, self._failing_since, now)])
        self._guard(run)

    # -- sending ------------------------------------------------------------------------------
    def _offer(self, events: Sequence[NotificationEvent]) -> None:
        """Filter, de-duplicate and queue ``events``."""
        for ev in events:
            if ev.kind not in self.events:
                continue
            if ev.kind in REPEATABLE:
                with self._lock:
                    last = self._sent.get(ev.repeat_key)
                    if last is not None and ev.at - last < self.repeat_window_s:
                        self._count(ev, "suppressed")
                        continue
                    self._sent[ev.repeat_key] = ev.at
                    self._forget_old(ev.at)
            try:
                self._queue.put_nowait(ev)
            except queue.Full:
                self._count(ev, "dropped")
                log.warning("notification queue full: %s for %s dropped", ev.kind,
                            ev.stack or "source")

    def _forget_old(self, now: float) -> None:
        """Drop repeat keys older than the window (memory stays bounded); caller holds lock."""
        if len(self._sent) > 1000:
            for key in [k for k, t in self._sent.items() if now - t >= self.repeat_window_s]:
                del self._sent[key]

    def _worker(self) -> None:
        """Send queued events until ``close`` queues None."""
        while True:
            ev = self._queue.get()
            if ev is None:
                return
            try:
                ok = self._send(ev.title, ev.body())
            except Exception as exc:  # a plugin's bug must not end the thread
                log.error("notification %s for %s failed: %s", ev.kind, ev.stack or "source",
                          type(exc).__name__)
                ok = False
            self._count(ev, "sent" if ok else "error")
            if not ok:
                log.warning("notification %s for %s was not accepted by every receiver",
                            ev.kind, ev.stack or "source")

    def _count(self, ev: NotificationEvent, result: str) -> None:
        """Count one event's result in the metrics (never raises)."""
        if self.metrics is not None:
            self._guard(lambda: self.metrics.notification(ev.kind.value, result))

    @staticmethod
    def _guard(fn: Callable[[], None]) -> None:
        """Run ``fn``; log and swallow anything it raises (notifications never break a pass)."""
        try:
            fn()
        except Exception:
            log.exception("notification bookkeeping failed")

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the sender after what is queued (waits at most ``timeout_s`` seconds)."""
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout_s)
