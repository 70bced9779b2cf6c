"""The analysis step of a stack's line (issue 10.2): after the rollouts completed, check.

Two verbs, so the stack's line (or a wave runner's ``post_check`` hook) can wire them in a
few lines:

- :meth:`AnalysisStep.post_check` ``(stack, services, specs) -> Optional[str]``: run the
  checks that apply to the services that rolled out; a returned reason means the analysis
  failed (it names the query or URL, the value and the threshold);
- :meth:`AnalysisStep.roll_back` ``(rollouts) -> [RolloutResult]``: roll the services this
  pass updated back to their previous spec, as ``docker service rollback`` does, and follow
  the rollbacks with the rollout watcher until Swarm reports them done.

Checks run at the same time (each in its own thread), so a stack waits for its longest
``for`` (plus a few seconds of margin), never for their sum.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence

from controller.errors import SwarmError
from controller.health.analysis import run_analysis
from controller.model.analysis import AnalysisResult, AnalysisSpec, AnalysisVerdict
from controller.model.status import Rollout, RolloutOutcome, RolloutResult
from controller.policy.analysis import refused_urls

log = logging.getLogger("keelson.analysis")

MAX_PARALLEL_CHECKS = 8  # checks of one stack run at once (more wait for a free thread)


def applicable(specs: Sequence[AnalysisSpec], stack: str,
               services: Sequence[str]) -> List[AnalysisSpec]:
    """The checks that apply when ``services`` rolled out.

    Args:
        specs: the stack's checks (``StackOptions.analysis``).
        stack: the stack's name. services: the services that rolled out, full
            (``stack_web``) or short (``web``) names.
    Returns:
        The stack-level checks when any service rolled out, plus each service's own checks
        when that service rolled out; in the stack file's order.
    """
    if not services:
        return []
    rolled = set(services)
    return [s for s in specs
            if not s.service or s.service in rolled or f"{stack}_{s.service}" in rolled]


class AnalysisStep:
    """Runs a stack's analysis after its rollouts and rolls back on failure.

    Args:
        allow: KEELSON_ANALYSIS_ALLOW entries (checked again here: a URL not allowed is never
            called, whatever the caller checked before).
        metrics: MetricsRecorder (``analysis(stack, result)``).
        client: SwarmClient (``services_by_id``, ``rollback_service``); only for roll_back.
        watcher: RolloutWatcher following the rollbacks; only for roll_back.
        run: runs one check (``health.analysis.run_analysis``; replaceable in tests).
        clock: unix seconds (a rollback's start, for the watcher).
    """

    def __init__(self, allow: Sequence[str], metrics, *, client=None, watcher=None,
                 run: Callable[[AnalysisSpec], AnalysisResult] = run_analysis,
                 clock: Callable[[], float] = time.time):
        self.allow = tuple(allow)
        self.metrics = metrics
        self.client = client
        self.watcher = watcher
        self._run = run
        self._clock = clock

    def post_check(self, stack: str, services: Sequence[str],
                   specs: Sequence[AnalysisSpec] = ()) -> Optional[str]:
        """Run the checks that apply to ``services`` (see :func:`applicable`).

        Args:
            stack: the stack's name. services: the services whose rollout completed.
            specs: the stack's checks (``manifest.options.analysis``); bind them with
                ``functools.partial`` to get a ``post_check(stack, services)`` hook.
        Returns:
            None when no check applies or every check passed; otherwise the failure, one
            ``<key>: <reason>`` per failed check joined by ``; ``. Counts
            ``keelson_analysis_total{stack,result}`` once per call that ran checks.
        Raises:
            Nothing: a check that raises (a bug) is a failed check.
        """
        checks = applicable(specs, stack, services)
        if not checks:
            return None
        refused = refused_urls(checks, self.allow)
        if refused:  # the line refuses such a stack before apply; never call them anyway
            self.metrics.analysis(stack, AnalysisVerdict.FAILED)
            return "; ".join(f"{s.key}: URL {s.url} is not allowed by KEELSON_ANALYSIS_ALLOW"
                             for s in refused)
        log.info("stack=%s analysis: %s", stack, "; ".join(s.describe() for s in checks))
        with ThreadPoolExecutor(max_workers=min(len(checks), MAX_PARALLEL_CHECKS),
                                thread_name_prefix=f"analysis-{stack}") as pool:
            futures = [pool.submit(self._run, spec) for spec in checks]
            results = []
            for spec, fut in zip(checks, futures):
                try:
                    results.append(fut.result())
                except Exception as exc:  # a bug in a check fails that check only
                    log.exception("stack=%s analysis %s crashed", stack, spec.key)
                    results.append(AnalysisResult(False, f"internal error: {exc}", (), spec))
        failed = [r for r in results if not r.passed]
        self.metrics.analysis(stack, AnalysisVerdict.FAILED if failed else AnalysisVerdict.PASSED)
        for r in results:
            log.log(logging.WARNING if not r.passed else logging.INFO,
                    "stack=%s analysis %s %s: %s samples=%s", stack, r.spec.key if r.spec else "",
                    "failed" if not r.passed else "passed", r.spec.describe() if r.spec else "",
                    list(r.samples)[-5:])
        if not failed:
            return None
        return "; ".join(f"{r.reason}" + (f" (service {r.spec.service})"
                                          if r.spec and r.spec.service else "")
                         for r in failed)

    def roll_back(self, rollouts: Sequence[Rollout]) -> List[RolloutResult]:
        """Roll back every service the pass updated (created ones have nothing to go back to).

        Args:
            rollouts: what the pass's apply wrote (``ApplyResult.rollouts``).
        Returns:
            One RolloutResult per updated service: ``rolled_back`` once Swarm reports the
            rollback done (``UpdateStatus.State`` rollback_completed), else ``failed`` with
            why (the rollback call failed, paused, or timed out).
        Raises:
            Nothing from Docker: a refused rollback is a failed result.
        Source: ``docker service rollback`` = ``POST /services/{id}/update?rollback=previous``
            (Engine API v1.41); the Engine swaps in PreviousSpec and rolls tasks by the
            service's ``RollbackConfig``.
        """
        updated = [r for r in rollouts if not r.created]
        if not updated:
            return []
        try:
            live = self.client.services_by_id([r.service_id for r in updated])
        except SwarmError as err:
            return [RolloutResult(r.service, RolloutOutcome.FAILED, "RollbackFailed",
                                  f"cannot inspect the service: {err}") for r in updated]
        results: List[RolloutResult] = []
        watch: List[Rollout] = []
        for r in updated:
            svc = live.get(r.service_id)
            if svc is None or svc.previous_spec is None:
                results.append(RolloutResult(r.service, RolloutOutcome.FAILED, "RollbackFailed",
                                             "no previous spec to roll back to"))
                continue
            prior = (svc.update_status or {}).get("StartedAt", "")
            started = self._clock()
            log.warning("analysis failed: rolling back %s", r.service)
            try:
                self.client.rollback_service(r.service_id)
            except SwarmError as err:
                results.append(RolloutResult(r.service, RolloutOutcome.FAILED, "RollbackFailed",
                                             f"rollback refused: {err}"))
                continue
            watch.append(Rollout(r.stack, r.service, r.service_id, created=False,
                                 prior_update_started=prior, started_at=started))
        for res in self.watcher.watch(watch) if watch else []:
            if res.outcome == RolloutOutcome.COMPLETED:  # our rollback settled: it is back
                res = RolloutResult(res.service, RolloutOutcome.ROLLED_BACK, "RolledBack",
                                    res.message, res.image, res.duration_s)
            results.append(res)
        return results
