"""Watch rollouts until each service settles: the poller around the pure assess().

Goes through SwarmClient only (no docker import). One watcher serves every stack of a pass:
stacks hand it their rollouts from their own worker threads, and each polling round costs one
service list and one task list for every rollout in flight, whatever the number of services.
When a rollout fails in a way Swarm does not act on by itself (a task Pending forever, field
case c10; tasks failing without an UpdateStatus), the watcher rolls the service back as
``docker service rollback`` would, if the service's ``UpdateConfig.FailureAction`` asks for
rollback.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

from controller.errors import SwarmError
from controller.health.assess import Assessment, assess
from controller.model.live import LiveService, LiveTask
from controller.model.status import Rollout, RolloutOutcome, RolloutPhase, RolloutResult

log = logging.getLogger(__name__)

ROLLBACK_STATES = frozenset({"rollback_started", "rollback_paused", "rollback_completed"})


@dataclass
class _Watch:
    """Book-keeping for one service under watch (owned by the polling thread)."""

    rollout: Rollout
    started_at: float
    done: threading.Event = field(default_factory=threading.Event)
    image: str = ""
    last: Optional[Assessment] = None
    rolling_back: bool = False
    failure: str = ""  # why the watcher rolled back (the task's error)
    result: Optional[RolloutResult] = None
    engine_back_at: Optional[float] = None  # when the engine answered again after an outage

    @property
    def name(self) -> str:
        """The service's name, or its ID before the first look."""
        return self.rollout.service or self.rollout.service_id


class RolloutWatcher:
    """Polls services after an apply until each one's rollout completes, rolls back or fails.

    Thread-safe: stacks call :meth:`watch` from their own workers; one polling thread serves
    all of them, so N rollouts in flight cost one service list and one task list per round.

    Args:
        client: a SwarmClient (``services_by_id``, ``tasks_by_service``, ``rollback_service``).
        timeout_s: seconds from a rollout's start after which it is failed if still progressing
            (reason RolloutTimeout).
        pending_timeout_s: seconds a task may stay unstarted (pending/assigned/accepted) before
            the rollout is failed (case c10: start-first with a host-mode port on one node).
        poll_s: seconds between polling rounds (KEELSON_WATCH_INTERVAL).
        clock / sleep: time source (unix seconds) and sleeper, replaceable in tests.
    """

    def __init__(self, client, *, timeout_s: float = 300, pending_timeout_s: float = 60,
                 poll_s: float = 0.5, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.client = client
        self.timeout_s = timeout_s
        self.pending_timeout_s = pending_timeout_s
        self.poll_s = poll_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._open: List[_Watch] = []
        self._poller: Optional[threading.Thread] = None
        self.rounds = 0  # polling rounds made (for tests and benchmarks)

    def watch(self, rollouts: Sequence[Rollout]) -> List[RolloutResult]:
        """Wait until every rollout settles or its timeout passes.

        Args:
            rollouts: what an apply wrote; ``started_at`` (unix seconds, just before the write)
                starts each rollout's clock, ``created`` says there is nothing to roll back
                to, and ``prior_update_started`` tells the previous update's status apart from
                ours (see ``assess``).
        Returns:
            list[RolloutResult], one per input in the same order. Outcomes: ``completed``
            (reason Succeeded); ``rolled_back`` (RolledBack: Swarm's own rollback or the
            watcher's, message = UpdateStatus message and/or the failing task's error);
            ``failed`` with reason UpdatePaused / RollbackPaused (Swarm paused the update),
            TaskPending / TasksFailing (no rollback possible), RolloutTimeout (still
            progressing ``timeout_s`` after its start) or ServiceMissing. ``image`` is the spec
            image after the rollout (the previous one after a rollback); ``duration_s`` is
            seconds from the rollout's start.
        Raises:
            Nothing from Docker: an Engine error during a round is logged and retried next round.
        """
        now = self._clock()
        watches = [_Watch(r, r.started_at or now) for r in rollouts]
        if not watches:
            return []
        with self._lock:
            self._open.extend(watches)
            if self._poller is None:
                self._poller = threading.Thread(target=self._poll_forever, name="rollouts",
                                                daemon=True)
                self._poller.start()
        for w in watches:
            w.done.wait()
        return [w.result for w in watches]

    # ---- the polling thread ------------------------------------------------------------------
    def _poll_forever(self) -> None:
        """Poll rounds while any watch is open; then the thread ends (a later watch restarts it)."""
        while True:
            with self._lock:
                open_ = list(self._open)
                if not open_:
                    self._poller = None
                    return
            try:
                self._round(open_)
            except Exception:  # a bug must not leave callers waiting forever
                log.exception("rollout watch round failed")
                for w in open_:
                    if w.result is None:
                        w.result = RolloutResult(w.name, RolloutOutcome.FAILED, "WatchFailed",
                                                 "internal error while watching", w.image,
                                                 self._clock() - w.started_at)
            settled = [w for w in open_ if w.result is not None]
            with self._lock:
                self._open = [w for w in self._open if w.result is None]
            for w in settled:
                w.done.set()
            if len(settled) < len(open_):
                self._sleep(self.poll_s)

    def _round(self, watches: List[_Watch]) -> None:
        """One look at every open rollout: one service list and one task list in all."""
        self.rounds += 1
        ids = sorted({w.rollout.service_id for w in watches})
        try:
            services = self.client.services_by_id(ids)
            tasks = self.client.tasks_by_service(ids)
        except SwarmError as err:
            log.warning("rollout watch: engine error, retrying: %s", err)
            services, tasks = None, {}
        now = self._clock()
        for w in watches:
            if services is None:
                w.engine_back_at = -1.0  # an outage: the pending clock restarts when it ends
            elif w.engine_back_at is not None and w.engine_back_at < 0:
                w.engine_back_at = now
            if services is not None:
                self._judge(w, services.get(w.rollout.service_id),
                            tasks.get(w.rollout.service_id, []), now)
            if w.result is None and now >= w.started_at + self.timeout_s:
                w.result = self._timed_out(w, now - w.started_at)

    # ---- one service, one round ------------------------------------------------------------
    def _judge(self, w: _Watch, svc: Optional[LiveService], tasks: List[LiveTask],
               now: float) -> None:
        """Judge one rollout from this round's listing; set ``w.result`` when it settles."""
        started_at = w.started_at
        if svc is None:
            w.result = RolloutResult(w.name, RolloutOutcome.FAILED, "ServiceMissing",
                                     "the service is gone", w.image, now - started_at)
            return
        w.image = _image(svc)
        a = assess(svc, tasks, started_at=started_at, now=now,
                   pending_timeout_s=self.pending_timeout_s, created=w.rollout.created,
                   prior_update_started=w.rollout.prior_update_started,
                   pending_since=w.engine_back_at)
        if a != w.last:
            # rollbacks and failures stand out in the log; progress is info
            level = logging.WARNING if a.phase in (RolloutPhase.ROLLED_BACK, RolloutPhase.PAUSED, RolloutPhase.FAILED) else logging.INFO
            log.log(level, "rollout of %s: %s (%s) %s", svc.name, a.phase, a.reason, a.message)
        w.last = a
        elapsed = now - started_at
        if w.rolling_back:
            self._poll_rollback(w, svc, a, elapsed)
        elif a.phase == RolloutPhase.COMPLETED:
            w.result = RolloutResult(svc.name, RolloutOutcome.COMPLETED, "Succeeded", a.message,
                                     w.image, elapsed)
        elif a.phase == RolloutPhase.ROLLED_BACK:
            w.result = RolloutResult(svc.name, RolloutOutcome.ROLLED_BACK, "RolledBack", a.message,
                                     w.image, elapsed)
        elif a.phase == RolloutPhase.PAUSED:
            w.result = RolloutResult(svc.name, RolloutOutcome.FAILED, a.reason, a.message, w.image,
                                     elapsed)
        elif a.phase == RolloutPhase.FAILED:
            self._on_failure(w, svc, a, elapsed)

    def _on_failure(self, w: _Watch, svc: LiveService, a: Assessment, elapsed: float) -> None:
        """Roll back when allowed, otherwise report the failure."""
        if not self._may_roll_back(svc, w.rollout.created):
            w.result = RolloutResult(svc.name, RolloutOutcome.FAILED, a.reason, a.message, w.image,
                                     elapsed)
            return
        log.warning("rollout of %s failed (%s): %s; rolling back", svc.name, a.reason,
                    a.message)
        try:
            self.client.rollback_service(svc.id)
        except SwarmError as err:
            w.result = RolloutResult(svc.name, RolloutOutcome.FAILED, a.reason,
                                     f"{a.message}; rollback failed: {err}", w.image, elapsed)
            return
        w.rolling_back, w.failure = True, a.message

    def _poll_rollback(self, w: _Watch, svc: LiveService, a: Assessment,
                       elapsed: float) -> None:
        """Follow a rollback the watcher started until Swarm reports it done or paused."""
        state = (svc.update_status or {}).get("State", "")
        if a.phase in (RolloutPhase.ROLLED_BACK, RolloutPhase.COMPLETED) and state in ("rollback_completed", "completed"):
            w.result = RolloutResult(svc.name, RolloutOutcome.ROLLED_BACK, "RolledBack", w.failure,
                                     w.image, elapsed)
        elif a.phase == RolloutPhase.PAUSED:
            w.result = RolloutResult(svc.name, RolloutOutcome.FAILED, a.reason,
                                     f"{w.failure}; {a.message}", w.image, elapsed)

    @staticmethod
    def _may_roll_back(svc: LiveService, created: bool) -> bool:
        """True when the watcher should roll back a failed rollout itself.

        Only an updated service (a created one has no previous spec), whose
        ``UpdateConfig.FailureAction`` is ``rollback`` (docker docs: ``--update-failure-action``
        pause|continue|rollback), that has a PreviousSpec, and that Swarm is not already
        rolling back.
        """
        action = (svc.spec.get("UpdateConfig") or {}).get("FailureAction", "pause")
        state = (svc.update_status or {}).get("State", "")
        return (not created and action == "rollback" and svc.previous_spec is not None
                and state not in ROLLBACK_STATES)

    def _timed_out(self, w: _Watch, elapsed: float) -> RolloutResult:
        """The result of a rollout still unsettled at the deadline."""
        last = w.last or Assessment(RolloutPhase.PROGRESSING, "Unknown", "never inspected")
        doing = "rollback" if w.rolling_back else "rollout"
        message = f"{doing} still {last.reason} after {elapsed:.0f}s"
        if last.message:
            message += f": {last.message}"
        if w.failure:
            message = f"{w.failure}; {message}"
        return RolloutResult(w.name, RolloutOutcome.FAILED, "RolloutTimeout", message,
                             w.image, elapsed)


def _image(svc: LiveService) -> str:
    """TaskTemplate.ContainerSpec.Image of the service's current spec."""
    return ((svc.spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", "")
