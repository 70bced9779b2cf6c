"""Watch rollouts until each service settles: the poller around the pure assess().

Goes through SwarmClient only (no docker import). One watcher polls every changed service of a
pass together, so N services cost one timeout, not N. When a rollout fails in a way Swarm does
not act on by itself (a task Pending forever, field case c10; tasks failing without an
UpdateStatus), the watcher rolls the service back as ``docker service rollback`` would, if the
service's ``UpdateConfig.FailureAction`` asks for rollback.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from controller.errors import SwarmError
from controller.health.assess import (COMPLETED, FAILED, PAUSED, PROGRESSING, ROLLED_BACK,
                                      Assessment, assess)
from controller.model.live import LiveService
from controller.model.status import COMPLETED as OUT_COMPLETED
from controller.model.status import ROLLED_BACK_RESULT, ROLLOUT_FAILED, RolloutResult

log = logging.getLogger(__name__)

ROLLBACK_STATES = frozenset({"rollback_started", "rollback_paused", "rollback_completed"})


@dataclass
class _Watch:
    """Book-keeping for one service under watch."""

    service_id: str
    created: bool
    prior_update_started: str = ""  # UpdateStatus.StartedAt before our update ("" if none)
    name: str = ""
    image: str = ""
    last: Optional[Assessment] = None
    rolling_back: bool = False
    failure: str = ""  # why the watcher rolled back (the task's error)
    result: Optional[RolloutResult] = None


class RolloutWatcher:
    """Polls services after an apply until each one's rollout completes, rolls back or fails.

    Args:
        client: a SwarmClient (``service``, ``tasks``, ``rollback_service`` are used).
        timeout_s: seconds from ``started_at`` after which a rollout still progressing is failed
            (reason RolloutTimeout).
        pending_timeout_s: seconds a task may stay unstarted (pending/assigned/accepted) before
            the rollout is failed (case c10: start-first with a host-mode port on one node).
        poll_s: seconds between polling rounds.
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

    def watch(self, services: List[Tuple[str, bool]], started_at: float) -> List[RolloutResult]:
        """Poll every service together until each settles or the overall timeout passes.

        Args:
            services: (service id or name, created[, prior UpdateStatus.StartedAt]) per changed
                service; ``created`` is True when this pass created it (a new service has
                nothing to roll back to); the third item, when given, tells the previous
                update's status apart from ours (see ``assess``).
            started_at: unix seconds when the apply began (before the first create/update).
        Returns:
            list[RolloutResult], one per input in the same order. Outcomes: ``completed``
            (reason Succeeded); ``rolled_back`` (RolledBack: Swarm's own rollback or the
            watcher's, message = UpdateStatus message and/or the failing task's error);
            ``failed`` with reason UpdatePaused / RollbackPaused (Swarm paused the update),
            TaskPending / TasksFailing (no rollback possible), RolloutTimeout (still
            progressing at ``started_at + timeout_s``) or ServiceMissing. ``image`` is the spec
            image after the rollout (the previous one after a rollback); ``duration_s`` is
            seconds from ``started_at``.
        Raises:
            Nothing from Docker: an Engine error during a round is logged and retried next round.
        """
        watches = [_Watch(service_id=item[0], created=item[1],
                          prior_update_started=item[2] if len(item) > 2 else "")
                   for item in services]
        deadline = started_at + self.timeout_s
        while True:
            open_ = [w for w in watches if w.result is None]
            if not open_:
                break
            for w in open_:
                try:
                    self._poll(w, started_at)
                except SwarmError as err:
                    log.warning("rollout of %s: engine error, retrying: %s",
                                w.name or w.service_id, err)
            now = self._clock()
            if all(w.result is not None for w in watches):
                break
            if now >= deadline:
                for w in watches:
                    if w.result is None:
                        w.result = self._timed_out(w, now - started_at)
                break
            self._sleep(self.poll_s)
        return [w.result for w in watches]

    # ---- one service, one round ------------------------------------------------------------
    def _poll(self, w: _Watch, started_at: float) -> None:
        """Look at one service once; set ``w.result`` when it settles."""
        svc = self.client.service(w.service_id)
        now = self._clock()
        if svc is None:
            w.result = RolloutResult(w.name or w.service_id, ROLLOUT_FAILED, "ServiceMissing",
                                     "the service is gone", w.image, now - started_at)
            return
        w.name, w.image = svc.name, _image(svc)
        tasks = self.client.tasks(svc.id)
        a = assess(svc, tasks, started_at=started_at, now=now,
                   pending_timeout_s=self.pending_timeout_s, created=w.created,
                   prior_update_started=w.prior_update_started)
        if a != w.last:
            # rollbacks and failures stand out in the log; progress is info
            level = logging.WARNING if a.phase in (ROLLED_BACK, PAUSED, FAILED) else logging.INFO
            log.log(level, "rollout of %s: %s (%s) %s", svc.name, a.phase, a.reason, a.message)
        w.last = a
        elapsed = now - started_at
        if w.rolling_back:
            self._poll_rollback(w, svc, a, elapsed)
        elif a.phase == COMPLETED:
            w.result = RolloutResult(svc.name, OUT_COMPLETED, "Succeeded", a.message,
                                     w.image, elapsed)
        elif a.phase == ROLLED_BACK:
            w.result = RolloutResult(svc.name, ROLLED_BACK_RESULT, "RolledBack", a.message,
                                     w.image, elapsed)
        elif a.phase == PAUSED:
            w.result = RolloutResult(svc.name, ROLLOUT_FAILED, a.reason, a.message, w.image,
                                     elapsed)
        elif a.phase == FAILED:
            self._on_failure(w, svc, a, elapsed)

    def _on_failure(self, w: _Watch, svc: LiveService, a: Assessment, elapsed: float) -> None:
        """Roll back when allowed, otherwise report the failure."""
        if not self._may_roll_back(svc, w.created):
            w.result = RolloutResult(svc.name, ROLLOUT_FAILED, a.reason, a.message, w.image,
                                     elapsed)
            return
        log.warning("rollout of %s failed (%s): %s; rolling back", svc.name, a.reason,
                    a.message)
        try:
            self.client.rollback_service(svc.id)
        except SwarmError as err:
            w.result = RolloutResult(svc.name, ROLLOUT_FAILED, a.reason,
                                     f"{a.message}; rollback failed: {err}", w.image, elapsed)
            return
        w.rolling_back, w.failure = True, a.message

    def _poll_rollback(self, w: _Watch, svc: LiveService, a: Assessment,
                       elapsed: float) -> None:
        """Follow a rollback the watcher started until Swarm reports it done or paused."""
        state = (svc.update_status or {}).get("State", "")
        if a.phase in (ROLLED_BACK, COMPLETED) and state in ("rollback_completed", "completed"):
            w.result = RolloutResult(svc.name, ROLLED_BACK_RESULT, "RolledBack", w.failure,
                                     w.image, elapsed)
        elif a.phase == PAUSED:
            w.result = RolloutResult(svc.name, ROLLOUT_FAILED, a.reason,
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
        last = w.last or Assessment(PROGRESSING, "Unknown", "never inspected")
        doing = "rollback" if w.rolling_back else "rollout"
        message = f"{doing} still {last.reason} after {elapsed:.0f}s"
        if last.message:
            message += f": {last.message}"
        if w.failure:
            message = f"{w.failure}; {message}"
        return RolloutResult(w.name or w.service_id, ROLLOUT_FAILED, "RolloutTimeout", message,
                             w.image, elapsed)


def _image(svc: LiveService) -> str:
    """TaskTemplate.ContainerSpec.Image of the service's current spec."""
    return ((svc.spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", "")
