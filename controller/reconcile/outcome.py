"""PURE: what one stack's pass came to, decided from its plan and its rollouts.

No I/O: the stack's line (``reconcile/stack.py``) carries out what an Outcome says (record the
failure, prune, write the state record) and reports it. Unit-tested without Docker.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence

from controller.model import LiveService, RolloutResult, StackPlan, StackRecord
from controller.model import labels as L
from controller.model.status import (HealthStatus, RollbackScope, RolloutOutcome, ServiceReturn,
                                     SuspendMode, SyncStatus)

# Condition reasons (Flux's words, DESIGN.md).
SUCCEEDED, ROLLED_BACK, FAILED, INTERNAL_ERROR = "Succeeded", "RolledBack", "Failed", "InternalError"
ANALYSIS_FAILED = "AnalysisFailed"  # issue 10.2: the check after a completed rollout failed


@dataclass(frozen=True)
class Outcome:
    """A stack's result for one pass.

    Attributes:
        sync: Synced / Failed / Stalled / OutOfSync. health: Healthy / Degraded / RolledBack /
            Unknown. reason: condition reason (Succeeded, RolledBack, RolloutTimeout, a
            KeelsonError's reason...). message: the error text ("" when Synced).
        remember_failure: write the failed input key into the stack's state record, so the
            same content is not applied again (Stalled) until an input changes.
        prune: remove what the plan marks ``remove`` (only once the rollouts succeeded).
        attempted: the revision to show as last attempted ("" = this pass's revision).
    """

    sync: SyncStatus
    health: HealthStatus
    reason: str
    message: str = ""
    remember_failure: bool = False
    prune: bool = False
    attempted: str = ""


def after_rollouts(plan: StackPlan, results: Sequence[RolloutResult], *, revision_short: str,
                   degraded: bool) -> Outcome:
    """Decide a stack's outcome once its rollouts settled.

    Args:
        plan: the stack's plan (its removals are pruned only when every rollout succeeded).
        results: one RolloutResult per service created or updated this pass (may be empty).
        revision_short: the revision's short id, for the failure message.
        degraded: True when an image could not be checked this pass (registry unreachable).
    Returns:
        Outcome: Failed (reason RolledBack when every bad rollout was rolled back, else the
        reason of the first bad rollout that was not rolled back; health RolledBack or Degraded; remembered so the content is
        not retried) when any rollout did not complete; otherwise Synced, pruning the plan's
        removals, health Degraded when ``degraded`` else Healthy.
    """
    bad = [r for r in results if r.outcome != RolloutOutcome.COMPLETED]
    if bad:
        rolled_back = all(r.outcome == RolloutOutcome.ROLLED_BACK for r in bad)
        worst = next(r for r in bad if rolled_back or r.outcome != RolloutOutcome.ROLLED_BACK)
        reason = ROLLED_BACK if rolled_back else (worst.reason or FAILED)
        detail = "; ".join(f"{r.service}: {r.outcome} ({r.message or r.reason})" for r in bad)
        return Outcome(SyncStatus.FAILED,
                       HealthStatus.ROLLED_BACK if rolled_back else HealthStatus.DEGRADED,
                       reason, f"failed at revision {revision_short}: {detail}",
                       remember_failure=True)
    return Outcome(SyncStatus.SYNCED, HealthStatus.DEGRADED if degraded else HealthStatus.HEALTHY,
                   SUCCEEDED, prune=bool(plan.of("remove")))


def stalled(record: StackRecord) -> Outcome:
    """The outcome of a stack whose current inputs already failed (not applied again).

    Returns:
        Outcome Stalled with the remembered reason and message, attempted = the failed revision.
    """
    return Outcome(SyncStatus.STALLED,
                   HealthStatus.ROLLED_BACK if record.failed_reason in (ROLLED_BACK,
                                                                        ANALYSIS_FAILED)
                   else HealthStatus.DEGRADED,
                   record.failed_reason or FAILED, _at_revision(record),
                   attempted=record.failed_revision)


def _at_revision(record: StackRecord) -> str:
    """The remembered failure, prefixed with its revision once (a rollout's message already
    carries the prefix)."""
    prefix = f"failed at revision {record.failed_revision[:12]}"
    message = record.failed_message
    return message if message.startswith("failed at revision") else f"{prefix}: {message}"


def refused(reason: str, message: str, *, retryable: bool, loaded: bool) -> Outcome:
    """The outcome of a stack stopped before or during apply by a KeelsonError.

    Args:
        reason: the error's reason (RenderFailed, ImageBuildFailed, ApplyFailed...).
        message: the error text. retryable: the error may pass by itself (registry or engine
            down): such a failure is not remembered, the next pass tries again.
        loaded: the stack loaded, so its inputs are known and a failure can be keyed by them.
    Returns:
        Outcome Failed, health Unknown; remembered when neither retryable nor before loading.
    """
    return Outcome(SyncStatus.FAILED, HealthStatus.UNKNOWN, reason, message,
                   remember_failure=loaded and not retryable)


def crashed(exc: BaseException) -> Outcome:
    """The outcome of a stack whose line raised something unexpected (a bug, a RecursionError,
    an engine that went away mid-call): Failed with reason InternalError, never remembered, so
    the next pass tries again."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return Outcome(SyncStatus.FAILED, HealthStatus.UNKNOWN, INTERNAL_ERROR,
                   f"internal error: {text}"[:500])


def is_stalled(record: Optional[StackRecord], inputs_hash: str) -> bool:
    """True when ``inputs_hash`` is the one that failed last (and nothing changed since)."""
    return bool(record is not None and inputs_hash and record.failed_source_hash == inputs_hash)


DRIFT_DETECTED = "DriftDetected"  # issue 8.4


def drift_left(verdict: Outcome, left: str) -> Outcome:
    """A Synced outcome becomes OutOfSync (reason DriftDetected) when drift is left in place.

    Args:
        verdict: the outcome so far.
        left: ``deploy.drift.describe`` of the drift the plan leaves (report mode, unmanaged
            services); "" when none.
    Returns:
        Outcome: ``verdict`` unchanged unless it is Synced and ``left`` is not empty; then
        sync OutOfSync, reason DriftDetected, message ``out of sync: <left>`` (issue 8.4).
    """
    if not left or verdict.sync != SyncStatus.SYNCED:
        return verdict
    return Outcome(SyncStatus.OUT_OF_SYNC, verdict.health, DRIFT_DETECTED,
                   f"out of sync: {left}", prune=verdict.prune, attempted=verdict.attempted)


SUSPENDED = "Suspended"  # issue 13.3: the condition reason of a suspended stack


def hold_released(record: StackRecord, stack_hash: str) -> bool:
    """Whether a suspended stack is to be reconciled again this pass.

    Args:
        record: the stack's state record. stack_hash: its folder's tree id at the branch head.
    Returns:
        bool: True when the stack is not suspended, or is held after a rollback and a commit
        has changed its folder since (the new content deploys normally and clears the hold);
        False for ``keelson suspend`` (until ``resume``) and an unchanged rollback hold.
    """
    if not record.suspended:
        return True
    return (record.suspended == SuspendMode.ROLLBACK and bool(stack_hash)
            and stack_hash != record.held_source)


def suspended(record: StackRecord, health: HealthStatus) -> Outcome:
    """The outcome of a suspended stack: nothing written, pruned or healed (Flux's suspend).

    Args:
        record: the stack's state record (``suspended`` set). health: what runs, as judged.
    Returns:
        Outcome Suspended (reason Suspended), attempted = the applied revision, with a message
        saying how the hold ends.
    """
    at = record.applied_revision[:12] or "no revision"
    if record.suspended == SuspendMode.ROLLBACK:
        message = (f"rolled back to {at}: held until a commit changes the stack "
                   "or `keelson resume`")
    else:
        message = f"suspended at {at}: no writes until `keelson resume`"
    return Outcome(SyncStatus.SUSPENDED, health, SUSPENDED, message,
                   attempted=record.applied_revision)


# ---- issue 10: stack-atomic rollback --------------------------------------------------------
ROLLBACK_FAILED = "RollbackFailed"
UPDATE_BACK, REMOVE_CREATED, KEPT = "update", "remove", "kept"


def scope_of(option: Optional[RollbackScope]) -> RollbackScope:
    """A stack's rollback scope: its ``x-keelson: {rollback: ...}``, else STACK (issue 10)."""
    return option or RollbackScope.STACK


def needs_stack_rollback(results: Sequence[RolloutResult], scope: RollbackScope,
                         last_good: str) -> bool:
    """True when the pass must return the whole stack: scope STACK, a last good revision to
    return to (``last_good``, the record's applied revision; a stack's first deploy has none
    and is left as the failing pass made it), and any rollout (or post-rollout check) of the
    pass did not complete."""
    return scope == RollbackScope.STACK and bool(last_good) and any(
        r.outcome != RolloutOutcome.COMPLETED for r in results)


def plan_returns(inputs: str, instance: str, results: Sequence[RolloutResult],
                 before: Mapping[str, LiveService],
                 now: Mapping[str, LiveService]) -> List[ServiceReturn]:
    """Decide how to return every service the failing content wrote (issue 10).

    A service was written by the failing content when its ``io.keelson.source-hash`` label is
    ``inputs`` (this pass, or an earlier pass of the same inputs that a restart interrupted).
    Its earlier spec is the first of: its spec when the pass began (``before``, kept in memory),
    its ``PreviousSpec`` (Swarm keeps it; it survives a restart), whose source-hash label is not
    ``inputs``. Without either and without a PreviousSpec, the failing content created it: it is
    removed. Services the pass rolled out that already run an earlier spec (Swarm or the watcher
    rolled them back) are ``kept``.

    Args:
        inputs: the failing inputs hash. instance: this Keelson's instance (only its services).
        results: the pass's rollout results (empty when a restart finishes a rollback).
        before: full name -> the service as listed when the pass began.
        now: full name -> the service as listed after the failure.
    Returns:
        list[ServiceReturn] sorted by service name: ``update`` (spec and its revision),
        ``remove``, or ``kept`` (already on an earlier spec, or no earlier spec known).
    """
    why = {r.service: f"{r.outcome} ({r.message or r.reason})" if r.outcome != RolloutOutcome.COMPLETED
           else "completed" for r in results}
    out: List[ServiceReturn] = []
    for name, svc in sorted(now.items()):
        if not L.owned_by(svc.labels, instance):
            continue
        reason = why.get(name, "written by the failing revision")
        if svc.labels.get(L.SOURCE_HASH) != inputs:
            if name in why:  # rolled out this pass and already back on an earlier spec
                out.append(ServiceReturn(name, svc.id, KEPT, None, svc.labels.get(L.REVISION, ""),
                                         reason))
            continue
        earlier = [s for s in ((before[name].spec if name in before else None), svc.previous_spec)
                   if s is not None and (s.get("Labels") or {}).get(L.SOURCE_HASH) != inputs]
        if earlier:
            spec = earlier[0]
            out.append(ServiceReturn(name, svc.id, UPDATE_BACK, spec,
                                     (spec.get("Labels") or {}).get(L.REVISION, ""), reason))
        elif svc.previous_spec is None and (
                name not in before or before[name].labels.get(L.SOURCE_HASH) == inputs):
            out.append(ServiceReturn(name, svc.id, REMOVE_CREATED, None, "", reason))
        else:
            out.append(ServiceReturn(name, svc.id, KEPT, None, "",
                                     f"{reason}; no earlier spec known: left as it is"))
    return out


def describe_return(ret: ServiceReturn) -> str:
    """One service a stack rollback returned, for the status, the history and ``keelson sync``:
    ``<svc> returned to <rev12> (<image>[, <outcome>])``, ``<svc> removed (created by the
    failing revision)`` or ``<svc> kept (<why>)``."""
    if ret.action == REMOVE_CREATED:
        failed = "" if ret.outcome in ("", "removed") else f"; {ret.why}"
        return f"{ret.service} removed (created by the failing revision{failed})"
    if ret.action == UPDATE_BACK:
        to = f" to {ret.revision[:12]}" if ret.revision else ""
        how = "" if ret.outcome in ("", RolloutOutcome.COMPLETED) else f", {ret.outcome}"
        return f"{ret.service} returned{to} ({ret.image or 'image unknown'}{how})"
    return f"{ret.service} kept ({ret.why})"


def stack_rolled_back(results: Sequence[RolloutResult], returns: Sequence[ServiceReturn], *,
                      revision_short: str, interrupted: bool = False) -> Outcome:
    """The outcome of a pass whose stack was returned to its earlier revision (issue 10).

    Args:
        results: the pass's rollout results (the failures are named first).
        returns: every service returned, with how returning it ended (``outcome``).
        revision_short: the failing revision's short id.
        interrupted: a restart interrupted the rollback and this pass finished it.
    Returns:
        Outcome Failed, remembered (Stalled until an input changes): health RolledBack when
        every return completed (or was a removal or kept), with the trigger's reason as
        ``after_rollouts`` gives it (RolledBack when every failing rollout was rolled back,
        else the first other one's: AnalysisFailed, RolloutTimeout, UpdatePaused...); else
        reason RollbackFailed, health Degraded. The message names the failing rollouts and every
        service returned: ``failed at revision R: <svc>: <outcome> (<why>); stack rolled back:
        <svc> returned to <rev> (<image>), <svc> removed (created by the failing revision)``.
    """
    bad = [r for r in results if r.outcome != RolloutOutcome.COMPLETED]
    failed = "; ".join(f"{r.service}: {r.outcome} ({r.message or r.reason})" for r in bad)
    parts = [describe_return(ret) for ret in returns]
    ok = all(r.action != UPDATE_BACK or r.outcome == RolloutOutcome.COMPLETED for r in returns)
    # the trigger's reason, as after_rollouts gives it (RolledBack, AnalysisFailed, ...)
    trigger = ROLLED_BACK
    if bad and not all(r.outcome == RolloutOutcome.ROLLED_BACK for r in bad):
        trigger = next(r for r in bad if r.outcome != RolloutOutcome.ROLLED_BACK).reason or FAILED
    if interrupted:
        failed = "a stack rollback was interrupted (Keelson restarted) and is now finished"
    message = (f"failed at revision {revision_short}: {failed or 'rollback in progress'}; "
               f"stack rolled back: {', '.join(parts) or 'nothing to return'}")
    return Outcome(SyncStatus.FAILED, HealthStatus.ROLLED_BACK if ok else HealthStatus.DEGRADED,
                   trigger if ok else ROLLBACK_FAILED, message, remember_failure=True)
