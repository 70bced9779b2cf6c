"""One writer per instance: take, renew, wait for and hand over the writer lease.

``WriterLease.tick()`` is called before every pass and by a renewal thread every third of the
TTL; only while it returns True does this Keelson write. The rules are in ``model.lease``; the
Swarm object in ``swarm.lease_store``.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Callable, Optional, Tuple

from controller.errors import LeaseLostError, SwarmError
from controller.model.lease import LeaseAction, LeaseRecord, decide

log = logging.getLogger("keelson.lease")


def new_holder_id() -> str:
    """A holder identity: hostname (the task's container ID on Swarm), pid, random part."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class WriterLease:
    """The lease as one contender sees it.

    Args:
        store: a ``swarm.lease_store.LeaseStore`` (read / create / write / remove).
        ttl_s: lease duration in seconds (KEELSON_LEASE_TTL); renewed every ``ttl_s / 3``.
        holder: this contender's identity (default ``new_holder_id()``).
        monotonic, wall: clocks (seconds), injectable for tests.
    """

    def __init__(self, store, ttl_s: float, holder: Optional[str] = None, *,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self.store = store
        self.ttl_s = ttl_s
        self.holder = holder or new_holder_id()
        self._monotonic, self._wall = monotonic, wall
        self._lock = threading.Lock()
        self._held = False
        self._renewed_mono = 0.0
        self._seen: Optional[Tuple[str, int]] = None  # (holder, version) under observation
        self._seen_since = 0.0
        self.other = ""  # the live holder we wait for, "" when none
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def held(self) -> bool:
        """True while this contender holds the lease (as of its last tick)."""
        return self._held

    def check(self) -> None:
        """Raise LeaseLostError unless the lease is held (called before writes)."""
        if not self._held:
            raise LeaseLostError(f"the writer lease is held by {self.other or 'another Keelson'}; "
                                 "this Keelson writes nothing")

    def tick(self) -> bool:
        """Take, renew or observe the lease once.

        Returns:
            bool: True when this contender holds the lease afterwards.
        Never raises: an Engine failure keeps a held lease until a whole TTL has passed
        without a renewal (the others cannot take it over sooner), then counts as lost.
        """
        with self._lock:
            try:
                self._tick()
            except SwarmError as exc:
                if self._held and self._monotonic() - self._renewed_mono >= self.ttl_s:
                    self._lose(f"cannot renew for a whole TTL: {exc}")
                else:
                    log.warning("writer lease: %s", exc)
            return self._held

    def _tick(self) -> None:
        record = self.store.read()
        now = self._monotonic()
        action = decide(record, self.holder, seen_for_s=self._observe(record, now),
                        since_renewal_s=now - self._renewed_mono, ttl_s=self.ttl_s)
        if action is LeaseAction.CREATE:
            self._won(self.store.create(self.holder, self._wall()), "created", now)
        elif action in (LeaseAction.RENEW, LeaseAction.TAKE_OVER):
            if action is LeaseAction.TAKE_OVER:
                log.warning("writer lease: %s stopped renewing for %.0f s; taking over",
                            record.holder, self.ttl_s)
            self._won(self.store.write(record, self.holder, self._wall()), action.value, now)
        elif action is LeaseAction.KEEP:
            self._held = True
        else:
            if self._held:
                self._lose(f"taken over by {record.holder}")
            elif self.other != record.holder:
                log.info("writer lease held by %s: waiting (standby)", record.holder)
            self.other = record.holder

    def _observe(self, record: Optional[LeaseRecord], now: float) -> float:
        """Seconds the current record version has been seen unchanged (first sight: its age by
        the holder's wall clock)."""
        if record is None:
            self._seen = None
            return 0.0
        key = (record.holder, record.version)
        if key != self._seen:
            self._seen = key
            self._seen_since = now - max(0.0, self._wall() - record.renewed_at)
        return now - self._seen_since

    def _won(self, ok: bool, how: str, now: float) -> None:
        if ok:
            if not self._held:
                log.info("writer lease %s: this Keelson (%s) writes", how, self.holder)
            self._held, self._renewed_mono, self.other = True, now, ""
        else:
            self.other = self.other or "another Keelson"  # the next tick reads who
            if self._held:
                self._lose("a concurrent write won the lease")

    def _lose(self, why: str) -> None:
        log.warning("writer lease lost (%s): this Keelson stops writing", why)
        self._held = False

    def start_renewing(self) -> None:
        """Tick every third of the TTL in a daemon thread (a held lease stays fresh during
        long rollouts; a waiting contender notices a dead holder)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_forever, name="keelson-lease",
                                        daemon=True)
        self._thread.start()

    def _renew_forever(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            self.tick()

    def stop(self, release: bool = True) -> None:
        """Stop renewing; with ``release``, remove the lease when this contender holds it (a
        clean stop hands over at once; a crash hands over after one TTL)."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        if not release:
            return
        with self._lock:
            try:
                record = self.store.read()
                if record is not None and record.holder == self.holder:
                    self.store.remove(record)
            except SwarmError as exc:
                log.warning("writer lease not released: %s", exc)
            self._held = False
