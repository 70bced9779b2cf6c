"""PURE: what one stack's pass came to, decided from its plan and its rollouts.

No I/O: the stack's line (``reconcile/stack.py``) carries out what an Outcome says (record the
failure, prune, write the state record) and reports it. Unit-tested without Docker.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from controller.model import RolloutResult, StackPlan, StackRecord
from controller.model.status import HealthStatus, RolloutOutcome, SuspendMode, SyncStatus

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


def after_analysis(failure: str, rollbacks: Sequence[RolloutResult], *,
                   revision_short: str) -> Outcome:
    """Decide a stack's outcome when its rollouts completed but its analysis failed.

    Args:
        failure: why the analysis failed (names the query or URL, the value and the threshold).
        rollbacks: one RolloutResult per updated service Keelson rolled back (services the
            pass created have nothing to roll back to and are left as they are).
        revision_short: the revision's short id, for the message.
    Returns:
        Outcome Failed, reason AnalysisFailed, remembered (Stalled until an input changes);
        health RolledBack when every rollback completed (and there was one), else Degraded;
        nothing pruned. The message is ``failed at revision R: analysis failed: <failure>``
        plus how each rollback ended.
    """
    done = [r for r in rollbacks if r.outcome == RolloutOutcome.ROLLED_BACK]
    message = f"failed at revision {revision_short}: analysis failed: {failure}"
    if rollbacks:
        message += "; " + "; ".join(
            f"{r.service}: rolled back" if r in done else
            f"{r.service}: rollback {r.outcome} ({r.message or r.reason})" for r in rollbacks)
    else:
        message += "; nothing to roll back (the services were created by this pass)"
    healthy_back = bool(rollbacks) and len(done) == len(rollbacks)
    return Outcome(SyncStatus.FAILED,
                   HealthStatus.ROLLED_BACK if healthy_back else HealthStatus.DEGRADED,
                   ANALYSIS_FAILED, message, remember_failure=True)


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
