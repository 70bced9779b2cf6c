"""A stack's rollout (issue 10): apply in waves, watch, check, and roll the stack back.

    prepare (networks, configs, secrets) -> for each wave: apply its services -> watch ->
    post-check -> (a failure stops the later waves) -> stack rollback when the scope says so

The decisions are pure (``deploy.waves``: the waves; ``reconcile.outcome``: the rollback
scope, which services return to which spec, the outcome); this module does the I/O. A stack
rollback is written down first (``rollback-revision`` / ``rollback-source-hash`` on the
stack's state record), so a Keelson that restarts in the middle finishes it (``resume``):
every service still labelled with the failing inputs hash goes back to its PreviousSpec, or is
removed when that content created it. Removals of the failing revision are never made before
every wave is healthy (prune runs only after a successful pass), so nothing must be re-created.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from controller.deploy.apply import Applier, ApplyResult
from controller.deploy.waves import Waves
from controller.errors import KeelsonError
from controller.model import DesiredStack, LiveService, LiveStack, Revision, StackPlan, StackRecord
from controller.model.status import (RollbackScope, Rollout, RolloutOutcome, RolloutResult,
                                     ServiceReturn)
from controller.reconcile import outcome as decide

log = logging.getLogger("keelson.rollback")

ANALYSIS_FAILED = "AnalysisFailed"  # condition reason of a failed post-rollout check

# post_check(stack, services) -> None when the wave is good, else why it is not (issue 10 hook
# for the post-rollout analysis, controller/health/analysis.py)
PostCheck = Callable[[str, Sequence[str]], Optional[str]]


@dataclass(frozen=True)
class LineResult:
    """What rolling a stack out came to.

    Attributes:
        applied: what was written (rollouts, write counts).
        results: one RolloutResult per service rolled out, wave by wave (a failed post-check
            turns its wave's results into ``failed`` with reason AnalysisFailed).
        untouched: services of the waves after a failing one (never written).
        returns: the services a stack rollback returned (empty when none happened).
        scope: the stack's rollback scope.
    """

    applied: ApplyResult = field(default_factory=ApplyResult)
    results: Tuple[RolloutResult, ...] = ()
    untouched: Tuple[str, ...] = ()
    returns: Tuple[ServiceReturn, ...] = ()
    scope: RollbackScope = RollbackScope.STACK

    @property
    def rolled_back(self) -> bool:
        """True when the whole stack was returned (a stack rollback happened)."""
        return bool(self.returns)


class RolloutLine:
    """Rolls a stack's plan out in waves and, on failure, rolls the stack back.

    Args:
        client: SwarmClient (services_by_id, update_service, remove_service, write_record).
        applier: Applier. watcher: RolloutWatcher. metrics: MetricsRecorder.
        instance: this Keelson's instance name (it returns only services it owns).
        post_check: optional ``post_check(stack, services) -> Optional[str]`` called after each
            wave completed; a returned reason fails the wave (issue 10, part 2's hook).
    """

    def __init__(self, *, client, applier: Applier, watcher, metrics, instance: str,
                 post_check: Optional[PostCheck] = None):
        self.client = client
        self.applier = applier
        self.watcher = watcher
        self.metrics = metrics
        self.instance = instance
        self.post_check = post_check

    def roll_out(self, name: str, desired: DesiredStack, live: Optional[LiveStack],
                 plan: StackPlan, revision: Revision, inputs: str, waves: Waves,
                 scope: RollbackScope, record: StackRecord,
                 post_check: Optional[PostCheck] = None,
                 on_started: Callable[[], None] = lambda: None) -> LineResult:
        """Apply ``plan`` wave by wave; on a failure stop, and roll back as ``scope`` says.

        Args:
            name: the stack. desired / live / plan: as for ``Applier.apply``.
            revision: the revision written to service labels. inputs: the inputs hash.
            waves: from ``deploy.waves.plan_waves``. scope: the stack's rollback scope.
            record: the stack's state record (its applied revision is the last good one; the
                stack rollback is noted on it).
            post_check: this stack's post-rollout check (e.g. its analysis, bound to its
                options); None uses the line's own ``post_check``.
            on_started: called once the first objects are written (status Progressing).
        Returns:
            LineResult.
        Raises:
            ApplyError / ImmutableChangeError: a write of the plan failed (as ``Applier.apply``).
        """
        applied = ApplyResult()
        prepared = self.applier.prepare(desired, live, plan, applied)
        on_started()
        results: List[RolloutResult] = []
        untouched: List[str] = []
        for i, wave in enumerate(waves):
            if any(r.outcome != RolloutOutcome.COMPLETED for r in results):
                untouched.extend(wave)
                continue
            if len(waves) > 1:
                log.info("stack=%s wave %d/%d: %s", name, i + 1, len(waves), ", ".join(wave))
            rollouts = self.applier.apply_services(desired, live, plan, prepared, revision,
                                                   inputs, set(wave), applied)
            done = self.watcher.watch(rollouts) if rollouts else []
            for res in done:
                self.metrics.rollout_finished(name, res.service, res.outcome, res.duration_s)
            results.extend(self._checked(name, done, post_check or self.post_check))
        if untouched:
            log.warning("stack=%s a rollout failed: later waves not rolled out: %s", name,
                        ", ".join(untouched))
        line = LineResult(applied, tuple(results), tuple(untouched), (), scope)
        if decide.needs_stack_rollback(results, scope, record.applied_revision):
            before = dict(live.services) if live else {}
            returns = self.return_stack(name, record, revision.sha, inputs, results, before,
                                        applied.rollouts)
            return dataclasses.replace(line, returns=tuple(returns))
        if scope == RollbackScope.SERVICE:
            checked = [r for r in results if r.reason == ANALYSIS_FAILED]
            if checked:  # Swarm does not roll these back: each goes back alone
                line = dataclasses.replace(line, results=tuple(self._return_each(
                    name, inputs, results, live, applied.rollouts)))
        return line

    def _return_each(self, name: str, inputs: str, results: Sequence[RolloutResult],
                     live: Optional[LiveStack],
                     rollouts: Sequence[Rollout]) -> List[RolloutResult]:
        """``rollback: service``: return each service whose post-rollout check failed to its
        earlier spec (as ``docker service rollback`` would); the others keep the new spec.

        Returns:
            the results, the returned ones' messages ending ``; rolled back``.
        """
        failed = {r.service for r in results if r.reason == ANALYSIS_FAILED}
        before = dict(live.services) if live else {}
        ids = {s.id for s in before.values()} | {r.service_id for r in rollouts}
        now = {s.name: s for s in self.client.services_by_id(sorted(ids)).values()}
        # updated services only: one the pass created has nothing to go back to (kept)
        picked = [r for r in decide.plan_returns(inputs, self.instance, results, before, now)
                  if r.service in failed and r.action == decide.UPDATE_BACK]
        done = {r.service: r for r in self._carry_out(name, picked, now)}
        out = []
        for res in results:
            ret = done.get(res.service)
            if ret is not None and ret.outcome == RolloutOutcome.COMPLETED:
                self.metrics.stack_rollback(name, RollbackScope.SERVICE)
                res = dataclasses.replace(res, message=f"{res.message}; rolled back",
                                          image=ret.image or res.image)
            out.append(res)
        return out

    @staticmethod
    def _checked(name: str, done: List[RolloutResult],
                 post_check: Optional[PostCheck]) -> List[RolloutResult]:
        """The wave's results, failed (reason AnalysisFailed) when every rollout completed but
        the post-rollout check says no."""
        if (post_check is None or not done
                or any(r.outcome != RolloutOutcome.COMPLETED for r in done)):
            return done
        try:
            why = post_check(name, [r.service for r in done])
        except Exception as exc:  # a broken check fails the wave, not the controller
            log.exception("stack=%s post-rollout check raised", name)
            why = f"post-rollout check raised {type(exc).__name__}: {exc}"
        if not why:
            return done
        log.warning("stack=%s post-rollout check failed: %s", name, why)
        return [dataclasses.replace(r, outcome=RolloutOutcome.FAILED, reason=ANALYSIS_FAILED,
                                    message=why) for r in done]

    # ---- the stack rollback --------------------------------------------------------------------
    def return_stack(self, name: str, record: StackRecord, revision: str, inputs: str,
                     results: Sequence[RolloutResult], before: Dict[str, LiveService],
                     rollouts: Sequence[Rollout]) -> List[ServiceReturn]:
        """Return every service the failing content wrote to its earlier spec (issue 10).

        The rollback is first written on the state record (a restart finishes it), then the
        stack's services are listed again and ``reconcile.outcome.plan_returns`` decides.

        Args:
            name: the stack. record: its state record as read at the pass's start.
            revision / inputs: the failing revision and inputs hash.
            results: the pass's rollout results. before: the services when the pass began.
            rollouts: what the pass wrote (the services it created are listed too).
        Returns:
            list[ServiceReturn] with how each return ended.
        """
        old = record
        mark = dataclasses.replace(old, instance=self.instance, rollback_revision=revision,
                                   rollback_source_hash=inputs)
        try:
            self.client.write_record(name, mark, replace=(old.instance,))
        except KeelsonError as exc:
            log.error("stack %s: cannot write the rollback on its state record: %s", name, exc)
        ids = {s.id for s in before.values()} | {r.service_id for r in rollouts}
        now = {s.name: s for s in self.client.services_by_id(sorted(ids)).values()}
        returns = decide.plan_returns(inputs, self.instance, results, before, now)
        log.warning("stack=%s rollout failed at revision %s: rolling the stack back (%d "
                    "services)", name, revision[:12], len(returns))
        out = self._carry_out(name, returns, now)
        self.metrics.stack_rollback(name, RollbackScope.STACK)
        return out

    def resume(self, name: str, live: LiveStack, record: StackRecord) -> List[ServiceReturn]:
        """Finish a stack rollback a restart interrupted (the state record names it).

        Args:
            name: the stack. live: the stack as this pass listed it. record: its state record
                (``rollback_source_hash`` set).
        Returns:
            list[ServiceReturn]: what was returned now (services already back are left out).
        """
        log.warning("stack=%s finishing the stack rollback of revision %s (interrupted)", name,
                    record.rollback_revision[:12])
        returns = decide.plan_returns(record.rollback_source_hash, self.instance, (), {},
                                      live.services)
        out = self._carry_out(name, returns, live.services)
        self.metrics.stack_rollback(name, RollbackScope.STACK)
        return out

    def _carry_out(self, name: str, returns: Sequence[ServiceReturn],
                   now: Dict[str, LiveService]) -> List[ServiceReturn]:
        """Write each return (update back, remove), then watch the updates until they settle."""
        out: Dict[str, ServiceReturn] = {}
        rollouts: List[Rollout] = []
        for ret in returns:
            try:
                if ret.action == decide.UPDATE_BACK:
                    prior = (now[ret.service].update_status or {}).get("StartedAt", "")
                    started = time.time()
                    self.client.update_service(ret.service_id, ret.spec)
                    self.metrics.swarm_write("service", "rollback")
                    rollouts.append(Rollout(name, ret.service, ret.service_id, False, prior,
                                            started))
                elif ret.action == decide.REMOVE_CREATED:
                    self.client.remove_service(ret.service_id)
                    self.metrics.swarm_write("service", "remove")
                    ret = dataclasses.replace(ret, outcome="removed")
                    log.warning("stack=%s rollback: service %s removed (created by the failing "
                                "revision; %s)", name, ret.service, ret.why)
                else:
                    ret = dataclasses.replace(ret, image=_image(now[ret.service].spec))
                    log.warning("stack=%s rollback: service %s kept at revision %s, image %s "
                                "(%s)", name, ret.service, ret.revision[:12] or "?", ret.image,
                                ret.why)
            except KeelsonError as exc:
                log.error("stack=%s rollback: service %s: %s", name, ret.service, exc)
                ret = dataclasses.replace(ret, outcome=RolloutOutcome.FAILED,
                                          why=f"{ret.why}; cannot return it: {exc}")
            out[ret.service] = ret
        watched = self.watcher.watch(rollouts) if rollouts else []
        for rollout, res in zip(rollouts, watched):
            ret = dataclasses.replace(out[rollout.service], outcome=res.outcome, image=res.image)
            level = logging.WARNING if res.outcome == RolloutOutcome.COMPLETED else logging.ERROR
            log.log(level, "stack=%s rollback: service %s returned to revision %s, image %s "
                    "(%s; its rollout: %s)", name, ret.service, ret.revision[:12] or "?",
                    ret.image, ret.why, res.outcome)
            out[rollout.service] = ret
        return [out[r.service] for r in returns]


def _image(spec: dict) -> str:
    """TaskTemplate.ContainerSpec.Image of a ServiceSpec."""
    return ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", "")
