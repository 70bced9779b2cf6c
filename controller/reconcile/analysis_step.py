"""The analysis step of a stack's line (issue 10.2): after a wave's rollouts completed, check.

:meth:`AnalysisStep.post_check` ``(stack, services, specs) -> Optional[str]`` runs the checks
that apply to the services that rolled out; a returned reason means the analysis failed (it
names the query or URL, the value and the threshold), and the rollout line
(``reconcile.rollout_line``) then rolls the stack back (or, with ``rollback: service``, the
wave's services) like any failed rollout.

Checks run at the same time (each in its own thread), so a stack waits for its longest
``for`` (plus a few seconds of margin), never for their sum.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence

from controller.health.analysis import run_analysis
from controller.model.analysis import AnalysisResult, AnalysisSpec, AnalysisVerdict
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
    """Runs a stack's analysis after its rollouts.

    Args:
        allow: KEELSON_ANALYSIS_ALLOW entries (checked again here: a URL not allowed is never
            called, whatever the caller checked before).
        metrics: MetricsRecorder (``analysis(stack, result)``).
        run: runs one check (``health.analysis.run_analysis``; replaceable in tests).
    """

    def __init__(self, allow: Sequence[str], metrics, *,
                 run: Callable[[AnalysisSpec], AnalysisResult] = run_analysis):
        self.allow = tuple(allow)
        self.metrics = metrics
        self._run = run

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

