"""The reconcile loop: one worker thread, one coalescing trigger.

The poll timer, webhooks and file events all call ``trigger()``; a burst of triggers while a
pass runs gives exactly one more pass. After a pass with retryable failures (a fetch or a push
that failed) the next poll comes sooner, with exponential backoff capped at the poll interval.

Triggers cannot make passes run back to back (issue 7: anyone who can reach the webhook, or push
a burst of commits, would otherwise keep the loop busy): a triggered pass starts no sooner than
``min_gap_s`` after the previous pass ended, and after a failed pass no sooner than the failure
backoff. Triggers that arrive while a pass is held are coalesced into it.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable, Optional

log = logging.getLogger("keelson.loop")


class Trigger:
    """A coalescing wake-up flag (many ``set()`` calls -> one wake-up).

    A trigger may name stacks (``keelson sync STACK --now``, issue 13.3): the pass it wakes then
    reconciles only those, unless a trigger for every stack joined it (a full pass covers all).

    Attributes:
        selection: after ``wait`` returned reasons: None for a full pass, else the frozenset
            of stack names the coalesced triggers asked for.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._pending = False
        self._full = False
        self._stacks: set = set()
        self.reasons: list = []
        self.selection: Optional[frozenset] = None

    def set(self, reason: str = "", stacks: Optional[Iterable[str]] = None) -> None:
        """Ask for a pass; ``reason`` is logged (``poll``, ``webhook``, ``file``, ``api``).

        Args:
            reason: why, for the log. stacks: only these stacks (None: every stack).
        """
        with self._cond:
            self._pending = True
            if stacks is None:
                self._full = True
            else:
                self._stacks.update(stacks)
            if reason and reason not in self.reasons:
                self.reasons.append(reason)
            self._cond.notify_all()

    def wait(self, timeout_s: float) -> Optional[list]:
        """Block up to ``timeout_s`` seconds; returns the reasons (consumed) or None on timeout.
        ``selection`` then tells which stacks the pass is for."""
        with self._cond:
            if not self._pending:
                self._cond.wait(timeout_s)
            if not self._pending:
                return None
            self._pending = False
            self.selection = None if self._full or not self._stacks else frozenset(self._stacks)
            self._full, self._stacks = False, set()
            reasons, self.reasons = self.reasons, []
            return reasons


def trigger_hold_s(backoff_s: float, min_gap_s: float, interval_s: float) -> float:
    """How long after a pass ended a triggered pass must wait.

    Args:
        backoff_s: the failure backoff in seconds (0 after a pass that did not fail).
        min_gap_s: the minimum gap between passes, seconds (KEELSON_MIN_PASS_GAP).
        interval_s: the poll interval, seconds: no hold is longer than the next poll.
    Returns:
        float: seconds; the backoff after a failure (a trigger never skips it), else the gap.
    """
    return backoff_s if backoff_s > 0 else min(max(min_gap_s, 0.0), interval_s)


class ReconcileLoop:
    """Runs ``reconcile_once`` on every trigger and every ``interval_s`` seconds.

    Args:
        reconcile_once: callable running one pass; returns an object with ``result``.
        interval_s: seconds between polls. min_backoff_s: first retry delay after a failed pass.
        min_gap_s: seconds a triggered pass waits after the previous pass ended (default 0).
        reconcile_stacks: callable running a pass for some stacks only (a sorted list of
            names), for triggers that name stacks; None runs a full pass for them too.
    """

    def __init__(self, reconcile_once: Callable[[], object], interval_s: float,
                 min_backoff_s: float = 2.0, min_gap_s: float = 0.0,
                 reconcile_stacks: Optional[Callable[[list], object]] = None):
        self.reconcile_once = reconcile_once
        self.reconcile_stacks = reconcile_stacks
        self._selection: Optional[frozenset] = None
        self.interval_s = interval_s
        self.min_backoff_s = min_backoff_s
        self.min_gap_s = min_gap_s
        self.trigger = Trigger()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.passes = 0

    def start(self) -> None:
        """Start the worker thread (a first pass runs at once)."""
        self._thread = threading.Thread(target=self.run_forever, name="reconcile", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask the worker to stop after its current pass and wait up to ``timeout_s`` seconds."""
        self._stop.set()
        self.trigger.set("stop")
        if self._thread:
            self._thread.join(timeout_s)

    def run_forever(self) -> None:
        """The loop body; never dies on an exception (logged, then backoff)."""
        backoff = 0.0
        reasons = ["start"]
        while not self._stop.is_set():
            selection, self._selection = self._selection, None
            try:
                if selection and self.reconcile_stacks is not None:
                    log.info("pass starting for %s (%s)", ", ".join(sorted(selection)),
                             ", ".join(reasons))
                    outcome = self.reconcile_stacks(sorted(selection))
                else:
                    log.info("pass starting (%s)", ", ".join(reasons) or "poll")
                    outcome = self.reconcile_once()
                failed = getattr(outcome, "result", "") == "failed"
            except Exception:  # the loop never dies
                log.exception("pass crashed")
                failed = True
            self.passes += 1
            backoff = min(self.interval_s, max(self.min_backoff_s, backoff * 2)) if failed else 0.0
            reasons = self._next_reasons(backoff)

    def _next_reasons(self, backoff_s: float) -> list:
        """Wait for the next pass (a poll, or a trigger held per ``trigger_hold_s``); its reasons."""
        ended = time.monotonic()
        woke = self.trigger.wait(backoff_s or self.interval_s)
        if woke is None:
            return ["poll"]
        selection = self.trigger.selection
        hold = ended + trigger_hold_s(backoff_s, self.min_gap_s, self.interval_s) - time.monotonic()
        if hold > 0 and not self._stop.is_set():
            log.info("pass held %.1fs (%s)", hold, "failure backoff" if backoff_s else "minimum gap")
            self._stop.wait(hold)
            more = self.trigger.wait(0)
            if more is not None:  # triggers meanwhile join this pass
                woke.extend(r for r in more if r not in woke)
                other = self.trigger.selection
                selection = None if selection is None or other is None else selection | other
        self._selection = selection
        return woke


class PassClock:
    """When the running pass started, to tell a stuck loop from a busy one (issue 7).

    ``/readyz`` turns 503 while a pass has run longer than ``deadline_s``: every step of a pass
    is bounded (git, builds, rollouts), so a pass that long means something blocks the loop.

    Args:
        deadline_s: seconds a pass may run before it counts as overdue (KEELSON_PASS_DEADLINE).
        clock: monotonic time in seconds (tests pass their own).
    """

    def __init__(self, deadline_s: float, clock: Callable[[], float] = time.monotonic):
        self.deadline_s = deadline_s
        self._clock = clock
        self._started: Optional[float] = None
        self._warned = False

    def started(self) -> None:
        """A pass begins now."""
        self._started, self._warned = self._clock(), False

    def finished(self) -> None:
        """The pass ended (success or not)."""
        if self._warned:
            log.warning("the overdue pass ended after %.0f s", self._clock() - (self._started or 0))
        self._started = None

    def overdue(self) -> bool:
        """True while the running pass has run longer than ``deadline_s`` (logged once)."""
        started = self._started
        if started is None or self._clock() - started <= self.deadline_s:
            return False
        if not self._warned:
            self._warned = True
            log.warning("a pass has run for more than %.0f s (KEELSON_PASS_DEADLINE): "
                        "reporting not ready until it ends", self.deadline_s)
        return True
