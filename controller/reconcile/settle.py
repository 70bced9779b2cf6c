"""Record and report what one stack came to in a pass: its state record on the engine, its
status (store, history, metrics) and one log line.

The stack's line (``reconcile/stack.py``) decides; this module writes down the decision. Nothing
here changes what a pass does to the swarm.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

from controller.deploy.waves import Waves
from controller.errors import KeelsonError
from controller.images.stack import TagMove
from controller.model import (DesiredStack, HistoryEntry, LiveStack, RolloutResult,
                              StackManifest, StackPlan, StackRecord, StackStatus)
from controller.model.status import HealthStatus, ServiceReturn, SyncStatus
from controller.policy.guard import Guard
from controller.reconcile import outcome as decide
from controller.reconcile.outcome import Outcome
from controller.reconcile.state import StatusStore
from controller.telemetry.scrub import scrub

log = logging.getLogger("keelson.reconcile")


@dataclass(frozen=True)
class StackResult:
    """What one stack came to in a pass (also what ``keelson plan`` prints).

    Attributes:
        name: the stack. status: its StackStatus after the pass (None when not reported).
        plan: the plan (None when the stack failed before planning).
        error: the KeelsonError that stopped it, if any. warnings: every warning of the pass.
        to_build: services whose image a pass would build (plan mode). written: writes by
            ``kind:action``. fast: True when the fast path served it (nothing re-rendered).
        manifest: the loaded stack (plan mode, for ``--show-merged``), else None.
        image_updates: tags that moved at the registry and rolled out this pass (issue 9:
            stack, service, tag, old -> new digest; the verdict says whether they held).
        desired: the rendered Swarm objects (plan mode, for ``keelson diff``), else None.
        waves: the services the pass rolls out, wave by wave (issue 10).
        rollback_scope: what a failed rollout returns (``stack`` or ``service``).
        last_good: the revision a stack rollback would return to (plan mode; "" on a first
            deploy, which is never rolled back).
    """

    name: str
    status: Optional[StackStatus] = None
    plan: Optional[StackPlan] = None
    error: Optional[KeelsonError] = None
    warnings: Tuple[str, ...] = ()
    to_build: Tuple[str, ...] = ()
    written: Dict[str, int] = field(default_factory=dict)
    fast: bool = False
    manifest: Optional[StackManifest] = None
    image_updates: Tuple[TagMove, ...] = ()
    desired: Optional[DesiredStack] = None
    waves: Waves = ()
    rollback_scope: str = ""
    last_good: str = ""


class Settler:
    """Writes a stack's state record and reports its outcome.

    Args:
        instance: this controller's instance name (``KEELSON_INSTANCE``, written in records).
        client: SwarmClient (``write_record``). store: StatusStore. metrics: MetricsRecorder.
        guard: ownership rules (``policy.guard.Guard``): its ``ownership.record_owners`` are
            the instances whose records this one may replace.
    """

    def __init__(self, *, instance: str, client, store: StatusStore, metrics,
                 guard: Guard) -> None:
        self.instance = instance
        self.client = client
        self.store = store
        self.metrics = metrics
        self.guard = guard

    def record(self, name: str, live: Optional[LiveStack], revision: str, inputs: str,
               verdict: Outcome, wrote: bool) -> None:
        """Write the stack's state record when what it says changed (a no-op pass writes none).

        A failure is remembered with its inputs key; a success records the applied revision.
        Either clears a stack rollback in progress (issue 10: its fields are not carried over).

        Args:
            name: the stack. live: what runs (its record is the old one). revision: the sha
                attempted. inputs: the stack's inputs key. verdict: the pass's outcome.
            wrote: True when the pass wrote anything to the swarm.

        Raises: nothing; a record that cannot be written is logged (the next pass tries again).
        """
        old = (live.record if live else None) or StackRecord()
        instance = self.instance
        if verdict.remember_failure:
            new = StackRecord(applied_revision=old.applied_revision,
                              applied_source_hash=old.applied_source_hash,
                              failed_revision=revision, failed_source_hash=inputs,
                              failed_reason=verdict.reason,
                              # scrub first, then cut: a cut credential would escape the patterns
                              failed_message=scrub(verdict.message)[:200],
                              instance=instance, previous_revision=old.previous_revision)
        elif verdict.sync == SyncStatus.SYNCED:
            if (old.applied_source_hash == inputs and not old.failed_source_hash
                    and old.applied_revision and old.instance == instance and not wrote
                    and not old.suspended and not old.rollback_source_hash):
                return
            # issue 13.3: the revision before this one is rollback's default target
            previous = (old.applied_revision if old.applied_source_hash != inputs
                        else old.previous_revision)
            new = StackRecord(applied_revision=revision, applied_source_hash=inputs,
                              instance=instance, previous_revision=previous)
        else:
            return
        try:
            self.client.write_record(name, new, replace=self.guard.ownership.record_owners)
        except KeelsonError as exc:
            log.error("stack %s: cannot write its state record: %s", name, exc)

    def tags_moved(self, name: str, rev, moves: Sequence[TagMove],
                   verdict: Outcome) -> Outcome:
        """Report tags that moved at the registry and rolled out (issue 9): one log line and
        one history entry per service, with the fields ``stack service tag old new result``
        (what a notifier hooks on). A failed rollout's message names the digest that failed, so
        the Stalled status after it says which digest is not retried until the tag moves.

        Args:
            name: the stack. rev: the Revision rolled out. moves: the tags that moved.
            verdict: the pass's outcome so far.

        Returns:
            the verdict, its message prefixed with the failed digests when it failed.
        """
        if not moves:
            return verdict
        ok = verdict.sync == SyncStatus.SYNCED
        result = "Succeeded" if ok else verdict.reason
        for m in moves:
            log.log(logging.INFO if ok else logging.WARNING,
                    "stack=%s service=%s image update tag=%s old=%s new=%s result=%s",
                    name, m.service, m.tag, m.old, m.new, result)
            self.store.add_history(name, HistoryEntry(
                rev.sha, "ImageUpdated" if ok else "ImageUpdateFailed", time.time(),
                f"service={m.service} tag={m.tag} old={m.old} new={m.new} result={result}"))
        if ok:
            return verdict
        named = ", ".join(f"{m.tag}@{m.new}" for m in moves)
        prefix = f"failed at revision {rev.short}"
        rest = verdict.message[len(prefix):].lstrip(": ") if verdict.message.startswith(
            prefix) else verdict.message
        return replace(verdict, message=f"{prefix}: image {named} (tag moved): {rest}")

    def progressing(self, name: str, revision: str, warnings: List[str],
                    plan: StackPlan) -> None:
        """Show the stack as Progressing (condition Reconciling) while its rollouts run.

        Args:
            name: the stack. revision: the sha rolling out. warnings: the pass's warnings so
                far. plan: the plan being rolled out.
        """
        prev = self.store.get(name)
        st = StackStatus(name, sync_status=SyncStatus.PROGRESSING,
                         health_status=HealthStatus.PROGRESSING,  # judged when it settles
                         last_attempted_revision=revision,
                         last_applied_revision=prev.last_applied_revision if prev else "",
                         reason="Progressing", warnings=list(warnings),
                         plan=list(plan.writes), drift=list(plan.drift))
        self.store.put(st)
        self.metrics.stack_status(name, revision, SyncStatus.PROGRESSING, st.health_status)

    def settle(self, name: str, live: Optional[LiveStack], rev, dry_run: bool,
               verdict: Outcome, *, plan: Optional[StackPlan] = None,
               warnings: Sequence[str] = (), rollouts: Sequence[RolloutResult] = (),
               written: Optional[Dict[str, int]] = None, desired: Optional[DesiredStack] = None,
               error: Optional[KeelsonError] = None, fast: bool = False,
               image_updates: Sequence[TagMove] = (), waves: Waves = (), scope: str = "",
               returns: Sequence[ServiceReturn] = ()) -> StackResult:
        """Report a stack's outcome: status store, metrics, one log line.

        Args:
            name: the stack. live: what runs. rev: the pass's Revision. dry_run: plan only
                (nothing stored, counted or logged). verdict: the outcome. The keywords are
                what the pass produced (all optional: a pass may stop early).

        Returns:
            the stack's StackResult.
        """
        if dry_run:
            return StackResult(name, plan=plan, error=error, warnings=tuple(warnings),
                               status=self.status(name, live, rev.sha, verdict, warnings,
                                                  rollouts, desired))
        record = (live.record if live else None) or StackRecord()
        applied = rev.sha if verdict.sync == SyncStatus.SYNCED else record.applied_revision
        st = self.status(name, live, rev.sha, verdict, warnings, rollouts, desired)
        st.waves, st.rollback_scope = [list(w) for w in waves], scope  # issue 10
        st.rolled_back = [decide.describe_return(r) for r in returns]
        prev = self.store.get(name)
        # issue 13: the stack page shows the latest plan; a pass that made none (stalled,
        # refused) keeps the one before, which is what failed
        if plan is not None:
            st.plan, st.drift = list(plan.writes), list(plan.drift)
        elif prev is not None:
            st.plan, st.drift = list(prev.plan), list(prev.drift)
        # one history entry per outcome: a Failed pass and the Stalled polls after it are one
        # and a Synced pass that wrote nothing (a commit to another stack) adds none
        quiet = (prev is not None and not sum((written or {}).values())
                 and prev.sync_status == st.sync_status == SyncStatus.SYNCED
                 and prev.reason == st.reason)
        changed = not quiet and (prev is None or (prev.last_attempted_revision, prev.reason) != (
            st.last_attempted_revision, st.reason))
        entry = (HistoryEntry(st.last_attempted_revision, verdict.reason, time.time(),
                              verdict.message) if changed else None)
        self.store.put(st, entry)
        self.metrics.stack_status(name, applied or st.last_attempted_revision, verdict.sync,
                                  verdict.health)
        writes = sum((written or {}).values())
        # a new failure is a warning; the same failure seen again on later polls is info
        level = (logging.WARNING if verdict.sync == SyncStatus.FAILED
                 or (verdict.sync == SyncStatus.STALLED and changed) else logging.INFO)
        # issue 13.5: the facts are fields (logfmt keys, JSON members), not words in msg
        fields = {"stack": name, "revision": rev.short, "result": verdict.sync.value,
                  "reason": verdict.reason, "writes": writes}
        if verdict.message:
            fields["error"] = verdict.message
        log.log(level, "stack reconciled", extra={"kv": fields})
        return StackResult(name, status=st, plan=plan, error=error, warnings=tuple(warnings),
                           written=dict(written or {}), fast=fast,
                           image_updates=tuple(image_updates))

    def status(self, name: str, live: Optional[LiveStack], revision: str, verdict: Outcome,
               warnings: Sequence[str], rollouts: Sequence[RolloutResult],
               desired: Optional[DesiredStack]) -> StackStatus:
        """The stack's StackStatus for a verdict.

        Args:
            name: the stack. live: what runs. revision: the sha attempted. verdict: the
                outcome. warnings: the pass's warnings. rollouts: this pass's rollouts.
            desired: the rendered stack (None when not rendered this pass: the images
                reported are then those running).

        Returns:
            a new StackStatus (waves, plan and drift left for the caller to fill).
        """
        record = (live.record if live else None) or StackRecord()
        applied = revision if verdict.sync == SyncStatus.SYNCED else record.applied_revision
        st = StackStatus(name, sync_status=verdict.sync, health_status=verdict.health,
                         last_attempted_revision=verdict.attempted or revision,
                         last_applied_revision=applied, last_error=verdict.message,
                         reason=verdict.reason, warnings=list(warnings), rollouts=list(rollouts))
        if desired is not None:
            st.services = {n: s.spec["TaskTemplate"]["ContainerSpec"].get("Image", "")
                           for n, s in desired.services.items()}
        elif live is not None:  # not rendered this pass (stalled or failed): report what runs
            st.services = {n: s.spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", "")
                           for n, s in live.services.items()}
        for res in rollouts:
            if res.image:
                st.services[res.service] = res.image
        return st
