"""The digest cache: tag -> digest resolutions, kept in memory with their own refresh interval.

Asking the registry for every service's tag on every pass is what made a no-op pass slow (four
registry requests per service through the Engine's ``/distribution`` endpoint). Tags are
therefore resolved at most once per ``max_age_s`` (``KEELSON_IMAGE_POLL_INTERVAL``), once for
every stack that uses them, and concurrent passes asking for the same tag share one request.
A reference not in the cache (a commit that names a new image) is resolved at once. On restart
the digests that live services pin seed the cache, so a restarted Keelson asks nothing until
the interval passes.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Optional, Tuple

Platforms = Tuple[Tuple[str, str], ...]
# What the registry says of one repo:tag: (digest, platforms), or None when it has no such tag.
Lookup = Callable[[str], Optional[Tuple[str, Platforms]]]


@dataclass(frozen=True)
class CachedDigest:
    """One resolution: ``digest`` (``sha256:...``), ``platforms`` ((os, arch), ...) and the
    monotonic time it was learned (seconds)."""

    digest: str
    platforms: Platforms
    learned_at: float


class DigestCache:
    """Thread-safe, single-flight cache of tag -> digest answers.

    Args:
        lookup: asks the registry (``ImageEngine.registry_info``); raises ImageResolveError when
            the registry cannot be reached, returns None when it has no such tag.
        max_age_s: seconds an answer stays fresh (KEELSON_IMAGE_POLL_INTERVAL, default 300).
        clock: monotonic seconds, replaceable in tests.
    """

    def __init__(self, lookup: Lookup, max_age_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic):
        self._lookup = lookup
        self.max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: Dict[str, CachedDigest] = {}
        self._inflight: Dict[str, "_Flight"] = {}
        self.lookups = 0  # registry look-ups made (for tests and benchmarks)

    def fresh(self, reference: str) -> Optional[CachedDigest]:
        """The cached answer for ``repo:tag`` when younger than ``max_age_s``, else None."""
        with self._lock:
            entry = self._entries.get(reference)
        if entry is not None and self._clock() - entry.learned_at < self.max_age_s:
            return entry
        return None

    def resolve(self, reference: str) -> Optional[Tuple[str, Platforms]]:
        """``(digest, platforms)`` for ``repo:tag``, from the cache while fresh.

        Concurrent callers for the same stale reference share one registry request and its
        answer (or its error).

        Returns:
            (digest, platforms), or None when the registry has no such tag (not cached: a tag
            pushed a moment later is found on the next call).
        Raises:
            ImageResolveError: the registry could not be asked.
        """
        entry = self.fresh(reference)
        if entry is not None:
            return entry.digest, entry.platforms
        with self._lock:
            flight = self._inflight.get(reference)
            owner = flight is None
            if owner:
                flight = self._inflight[reference] = _Flight()
                self.lookups += 1
        if not owner:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.answer
        try:
            flight.answer = self._lookup(reference)
            if flight.answer is not None:
                self.remember(reference, *flight.answer)
            return flight.answer
        except Exception as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._inflight.pop(reference, None)
            flight.done.set()

    def registry_info(self, reference: str) -> Optional[Tuple[str, Platforms]]:
        """Same as :meth:`resolve`; lets the cache stand wherever an ImageEngine is asked."""
        return self.resolve(reference)

    def remember(self, reference: str, digest: str, platforms: Platforms = ()) -> None:
        """Store a fresh answer (after a push, or from the registry)."""
        with self._lock:
            self._entries[reference] = CachedDigest(digest, tuple(platforms), self._clock())

    def seed(self, pinned: Iterable[Tuple[str, str, Platforms]]) -> int:
        """Seed the cache from what live services pin: (``repo:tag``, digest, platforms).

        Only references the cache does not know yet are taken (a fresher answer wins).

        Returns:
            int: how many entries were added.
        """
        added = 0
        now = self._clock()
        with self._lock:
            for reference, digest, platforms in pinned:
                if reference and digest and reference not in self._entries:
                    self._entries[reference] = CachedDigest(digest, tuple(platforms), now)
                    added += 1
        return added

    def forget_unused(self, used: Iterable[str]) -> None:
        """Drop entries no stack referenced in the last pass (keeps memory bounded)."""
        keep = set(used)
        with self._lock:
            for ref in [r for r in self._entries if r not in keep]:
                del self._entries[ref]


class _Flight:
    """One registry request in progress, shared by every caller asking the same reference."""

    def __init__(self):
        self.done = threading.Event()
        self.answer: Optional[Tuple[str, Platforms]] = None
        self.error: Optional[BaseException] = None
