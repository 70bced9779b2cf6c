"""One reconcile pass, top to bottom: fetch -> load -> images -> convert -> plan -> apply ->
watch rollouts -> record -> prune. The one place where errors become conditions.

Safety rules (DESIGN.md): a failed fetch, load or build changes nothing that runs; a stack that
fails to load is never pruned; a pass that would prune every stack stops; a revision whose
rollout failed is not applied again while the stack's content stays the same (it is remembered
in the stack's state record, a label-only Swarm config, so a restart keeps that memory).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from controller.config import Settings
from controller.deploy.apply import Applier, ApplyResult
from controller.deploy.diff import plan_stack, prune_changes, refuse_replacements
from controller.deploy.drift import describe, remaining_drift, resolve_options  # issue 8
from controller.errors import ImmutableChangeError, KeelsonError, ManifestError, SourceError
from controller.model import (Change, Checkout, DesiredStack, HistoryEntry, LiveStack, Revision,
                              RolloutResult, StackManifest, StackPlan, StackRecord, StackStatus)
from controller.model import status as S
from controller.health.assess import is_finite, stack_health
from controller.reconcile.stack_images import stack_images
from controller.reconcile.state import StatusStore
from controller.render.convert import to_desired
from controller.render.loader import find_stacks, load_stack
from controller.render.normalize import spec_hash
from controller.render.preflight import preflight

log = logging.getLogger("keelson.reconcile")


@dataclass
class StackRun:
    """One stack's way through a pass (internal bookkeeping, also returned for `keelson plan`)."""

    name: str
    source_hash: str = ""
    manifest: Optional[StackManifest] = None
    desired: Optional[DesiredStack] = None
    live: Optional[LiveStack] = None
    plan: Optional[StackPlan] = None
    applied: Optional[ApplyResult] = None
    status: Optional[StackStatus] = None
    error: Optional[KeelsonError] = None
    warnings: List[str] = field(default_factory=list)
    degraded: bool = False
    to_build: List[str] = field(default_factory=list)
    done: bool = False  # settled before the watch step (skipped, failed or unchanged)


@dataclass
class PassResult:
    """The outcome of one pass.

    Attributes:
        result: ``success`` (something changed, all converged), ``noop`` (nothing to change),
            ``partial`` (some stacks failed), ``failed`` (fetch or discovery failed).
        revision: the revision reconciled (None when the fetch failed).
        runs: stack name -> StackRun (plans, statuses). removed: stacks pruned from the swarm.
        error: the pass-level error message, if any.
    """

    result: str
    revision: Optional[Revision] = None
    runs: Dict[str, StackRun] = field(default_factory=dict)
    removed: List[str] = field(default_factory=list)
    error: str = ""

    @property
    def converged(self) -> bool:
        """True when every stack of the pass is Synced."""
        return self.result in ("success", "noop") and all(
            r.status is not None and r.status.sync_status == S.SYNCED for r in self.runs.values())


class Reconciler:
    """Runs passes. Every collaborator is built by ``app`` and passed in.

    Args:
        settings: Settings. source: GitSource/FolderSource. client: SwarmClient.
        builder: ImageBuilder. engine: ImageEngine. watcher: RolloutWatcher.
        metrics: MetricsRecorder. store: StatusStore. environ: variables for interpolation.
    """

    def __init__(self, settings: Settings, *, source, client, builder, engine, watcher, metrics,
                 store: StatusStore, environ: Dict[str, str]):
        self.settings = settings
        self.source = source
        self.client = client
        self.builder = builder
        self.engine = engine
        self.watcher = watcher
        self.metrics = metrics
        self.store = store
        self.environ = environ
        self.applier = Applier(client, metrics, settings.instance)
        self._apply_started = 0.0
        self._network_names: Dict[str, str] = {}  # issue 8.4: network ID -> name, per pass

    # -- the pass ------------------------------------------------------------------------------
    def reconcile(self, dry_run: bool = False) -> PassResult:
        """Run one pass (``dry_run``: plan only, write nothing, build nothing).

        Returns:
            PassResult. Never raises KeelsonError: failures become statuses and conditions.
        """
        started = time.monotonic()
        self.store.pass_started()
        try:
            outcome = self._reconcile(dry_run)
        except Exception as exc:  # a bug: report it, keep the loop alive
            log.exception("reconcile pass crashed")
            outcome = PassResult("failed", error=f"internal error: {exc}")
        if not dry_run:
            self.metrics.reconcile_finished(outcome.result, time.monotonic() - started)
        self.store.pass_finished(outcome.result)
        return outcome

    def _reconcile(self, dry_run: bool) -> PassResult:
        checkout = self._fetch()
        if isinstance(checkout, PassResult):
            return checkout
        revision = checkout.revision
        try:
            stack_files = find_stacks(checkout.manifests)
        except ManifestError as exc:
            return self._fail_pass(revision, f"cannot list stacks: {exc}")
        selected = {n: f for n, f in stack_files.items()
                    if not self.settings.stacks or n in self.settings.stacks}
        live_all = self.client.live_stacks()
        self._network_names = self.client.network_names()  # issue 8.4: read service targets
        for name in self.settings.stacks:
            if name not in stack_files and name not in live_all:
                log.warning("--stack %s: no such stack in the repo at %s nor in the swarm "
                            "(stacks: %s)", name, revision.short, ", ".join(stack_files) or "none")
        runs: Dict[str, StackRun] = {}
        self._apply_started = time.time()  # rollouts are judged from here on
        for name, file in selected.items():
            run = StackRun(name, source_hash=checkout.stack_hashes.get(name, ""),
                           live=live_all.get(name))
            runs[name] = run
            self._prepare(run, file, checkout, dry_run)
        if not dry_run:
            self._watch_and_record(runs, revision)
        removed = self._prune_gone(stack_files, live_all, revision, dry_run, runs)
        failed = [r for r in runs.values() if r.status and r.status.sync_status in (S.FAILED, S.STALLED)]
        wrote = any(r.applied and r.applied.written for r in runs.values()) or bool(removed)
        result = "partial" if failed else ("success" if wrote else "noop")
        return PassResult(result, revision, runs, removed)

    def _fetch(self):
        t0 = time.monotonic()
        try:
            checkout: Checkout = self.source.fetch()
        except SourceError as exc:
            self.metrics.git_fetch("error", time.monotonic() - t0)
            self.store.source_failed(str(exc))
            log.error("fetch failed, nothing changed: %s", exc)
            return PassResult("failed", error=str(exc))
        self.metrics.git_fetch("success", time.monotonic() - t0)
        rev = checkout.revision
        self.store.source_fetched(rev)
        self.metrics.source_revision(rev.sha, rev.ref, rev.committed_at)
        return checkout

    def _fail_pass(self, revision: Revision, message: str) -> PassResult:
        log.error("%s (revision %s): nothing changed", message, revision.short)
        self.store.source_failed(message)
        return PassResult("failed", revision, error=message)

    # -- per stack, up to apply ------------------------------------------------------------------
    def _prepare(self, run: StackRun, file: str, checkout: Checkout, dry_run: bool) -> None:
        rev = checkout.revision
        record = (run.live.record if run.live else None) or StackRecord()
        if run.source_hash and record.failed_source_hash == run.source_hash:
            # Stalled: this content already failed; wait for a new commit to the stack.
            self._settle(run, rev, S.STALLED, record.failed_reason or "Failed",
                         f"failed at revision {record.failed_revision[:12]}: "
                         f"{record.failed_message}", attempted=record.failed_revision,
                         health=S.ROLLED_BACK if record.failed_reason == "RolledBack" else S.DEGRADED)
            return
        try:
            run.manifest = load_stack(run.name, file, self.environ, root=checkout.root)
            run.manifest.source_hash = run.source_hash
            run.warnings.extend(run.manifest.warnings)
            imgs = stack_images(run.manifest, checkout, run.live, source=self.source,
                                builder=self.builder, engine=self.engine,
                                registry=self.settings.registry, dry_run=dry_run)
            run.warnings.extend(imgs.warnings)
            run.degraded, run.to_build = imgs.degraded, imgs.to_build
            run.desired = to_desired(run.manifest, imgs.refs, rev, environ=self.environ)
            run.warnings.extend(run.desired.warnings)
            self._preflight(run)
            hashes = {n: spec_hash(s.spec) for n, s in run.desired.services.items()}
            # issue 8.3/8.4: every field compared (drift), immutable changes planned `replace`
            opts = resolve_options(run.manifest.options, self.settings.drift, self.settings.recreate)
            run.plan = plan_stack(run.desired, run.live, hashes, self.settings.instance,
                                  network_names=self._network_names, drift_mode=opts.drift)
            self._drift_found(run, opts, dry_run)
            try:
                refuse_replacements(run.plan, opts.recreate)
            except ImmutableChangeError as exc:
                if not dry_run:
                    raise
                run.warnings.append(f"a pass would refuse this stack: {exc}")
            if dry_run:
                run.plan = self._kept_while_referenced(run.plan, run.live)
                run.done = True
                return
            if run.plan.of("create") or run.plan.of("update") or run.plan.of("replace"):
                run.applied = self.applier.apply(run.desired, run.live, run.plan, rev,
                                                 run.source_hash, hashes)
                self._progressing(run, rev)
        except KeelsonError as exc:
            run.error = exc
            if not exc.retryable and not dry_run and run.manifest is not None:
                # A failed build/preflight is not retried in a loop: remember it.
                self._remember_failure(run, rev, exc.reason, str(exc))
            self._settle(run, rev, S.FAILED, exc.reason, str(exc), health=S.UNKNOWN)
            log.error("stack %s: %s: nothing else changed", run.name, exc)

    def _drift_found(self, run: StackRun, opts, dry_run: bool) -> None:
        """Log and count the drift a plan found (issue 8.4; metrics only on real passes)."""
        if not run.plan.drift:
            if not dry_run:
                self.metrics.drift(run.name, [], 0)
            return
        left = remaining_drift(run.plan)
        for d in run.plan.drift:
            action = ("replacing" if d.immutable else "reported only" if d in left else "healing")
            log.warning("stack=%s drift %s (%s)", run.name, describe([d]), action)
            if action == "healing":
                run.warnings.append(f"drift healed: {describe([d])}")
        if dry_run:
            return
        self.metrics.drift(run.name, [d.kind.value for d in run.plan.drift], len(left))

    def _kept_while_referenced(self, plan: StackPlan, live: Optional[LiveStack]) -> StackPlan:
        """For ``plan`` output: a config/secret removal that prune would skip (a service's Spec
        or PreviousSpec still references it) is shown as kept, as the real pass does."""
        removals = plan.of("remove", "config") + plan.of("remove", "secret")
        if not removals or live is None:
            return plan
        used = self.client.referenced_config_ids() | self.client.referenced_secret_ids()
        changes = []
        for ch in plan.changes:
            objs = live.configs if ch.kind == "config" else live.secrets
            if ch in removals and objs[ch.name].id in used:
                ch = Change(ch.kind, ch.name, "unchanged", "kept while a service references it")
            changes.append(ch)
        return StackPlan(plan.stack, changes)

    def _preflight(self, run: StackRun) -> None:
        """Checks that must pass before the first write: preflight findings plus external
        networks (existing, swarm-scoped), configs and secrets (existing)."""
        findings = preflight(run.manifest, run.desired)
        errors = [f for f in findings if f.severity == "error"]
        run.warnings.extend(str(f) for f in findings if f.severity != "error")
        for name, net in run.desired.networks.items():
            if net.external:
                found = self.client.network(name)
                if found is None:
                    errors.append(f"external network {name} does not exist")
                elif found.get("Scope") != "swarm":
                    errors.append(f"external network {name} is not swarm-scoped "
                                  f"(scope {found.get('Scope')})")
        for kind, objs, lookup in (("config", run.desired.configs, self.client.config),
                                   ("secret", run.desired.secrets, self.client.secret)):
            for name, obj in objs.items():
                if obj.external and lookup(name) is None:
                    errors.append(f"external {kind} {name} does not exist")
        if errors:
            from controller.errors import PreflightError
            raise PreflightError("; ".join(str(e) for e in errors))

    # -- watch, record, status -----------------------------------------------------------------
    def _watch_and_record(self, runs: Dict[str, StackRun], rev: Revision) -> None:
        watch = [(sid, created, prior) for r in runs.values() if r.applied
                 for sid, _, created, prior in r.applied.rollouts]
        results: List[RolloutResult] = []
        if watch:
            results = self.watcher.watch(watch, self._apply_started)
        by_service = {r.service: r for r in results}
        running: Optional[list] = None  # tasks Swarm wants running, listed once when needed
        listed = False
        for run in runs.values():
            if run.done:
                continue
            mine = [by_service[name] for _, name, _, _ in (run.applied.rollouts if run.applied else [])
                    if name in by_service]
            for res in mine:
                self.metrics.rollout_finished(run.name, res.service, res.outcome, res.duration_s)
            bad = [r for r in mine if r.outcome != S.COMPLETED]
            if bad:
                reason = "RolledBack" if all(r.outcome == S.ROLLED_BACK_RESULT for r in bad) else bad[0].reason
                message = "; ".join(f"{r.service}: {r.outcome} ({r.message or r.reason})" for r in bad)
                self._remember_failure(run, rev, reason, message)
                health = S.ROLLED_BACK if reason == "RolledBack" else S.DEGRADED
                self._settle(run, rev, S.FAILED, reason, f"failed at revision {rev.short}: {message}",
                             health=health, rollouts=mine)
                continue
            kept = []
            if run.plan.of("remove"):
                run.applied = run.applied or ApplyResult()
                kept = self.applier.prune(run.name, run.plan, run.live, result=run.applied)
            run.warnings.extend(kept)
            record = (run.live.record if run.live else None) or StackRecord()
            if (record.applied_source_hash != run.source_hash or record.failed_source_hash
                    or record.applied_revision == "" or record.instance != self.settings.instance
                    or (run.applied and run.applied.written)):
                self.client.write_record(run.name, StackRecord(
                    applied_revision=rev.sha, applied_source_hash=run.source_hash,
                    instance=self.settings.instance))
            health = S.DEGRADED if run.degraded else S.HEALTHY
            if not mine and run.live is not None and run.live.services:
                # nothing rolled out this pass: judge what runs now (tasks may have died)
                if not listed:
                    running, listed = self._running_tasks(), True
                judged = stack_health(run.live.services.values(),  # issue 8.1: + finite tasks
                                      running + self._finite_tasks(run.live)) if running is not None else None
                if judged is not None and judged.reason == "Degraded":
                    health = S.DEGRADED
                    run.warnings.append(f"degraded: {judged.message}")
            left = remaining_drift(run.plan)  # issue 8.4: report mode, unmanaged services
            if left:
                self._settle(run, rev, S.OUT_OF_SYNC, "DriftDetected", f"out of sync: {describe(left)}",
                             rollouts=mine, health=health)
                continue
            self._settle(run, rev, S.SYNCED, "Succeeded", "", rollouts=mine, health=health)

    def _running_tasks(self) -> Optional[list]:
        """Tasks Swarm wants running (one request); None when the engine cannot say."""
        try:
            return self.client.running_tasks()
        except KeelsonError as exc:
            log.warning("cannot list tasks to judge health: %s", exc)
            return None

    def _finite_tasks(self, live: LiveStack) -> list:
        """Every task of the stack's services meant to finish (issue 8.1), [] on error."""
        try:
            return [t for s in live.services.values() if is_finite(s.spec)
                    for t in self.client.tasks(s.id)]
        except KeelsonError as exc:
            log.warning("cannot list tasks to judge health: %s", exc)
            return []

    def _progressing(self, run: StackRun, rev: Revision) -> None:
        """Show the stack as Progressing (condition Reconciling) while its rollouts run."""
        prev = self.store.get(run.name)
        st = StackStatus(run.name, sync_status=S.PROGRESSING,
                         health_status=prev.health_status if prev else S.UNKNOWN,
                         last_attempted_revision=rev.sha,
                         last_applied_revision=prev.last_applied_revision if prev else "",
                         reason="Progressing", warnings=run.warnings)
        self.store.put(st)
        self.metrics.stack_status(run.name, rev.sha, S.PROGRESSING, st.health_status)

    def _remember_failure(self, run: StackRun, rev: Revision, reason: str, message: str) -> None:
        old = (run.live.record if run.live else None) or StackRecord()
        try:
            self.client.write_record(run.name, StackRecord(
                applied_revision=old.applied_revision, applied_source_hash=old.applied_source_hash,
                failed_revision=rev.sha, failed_source_hash=run.source_hash,
                failed_reason=reason, failed_message=message[:200],
                instance=self.settings.instance))
        except KeelsonError as exc:
            log.error("stack %s: cannot record the failure: %s", run.name, exc)

    def _settle(self, run: StackRun, rev: Revision, sync: str, reason: str, message: str, *,
                health: str, rollouts: Optional[List[RolloutResult]] = None,
                attempted: str = "") -> None:
        record = (run.live.record if run.live else None) or StackRecord()
        applied = rev.sha if sync == S.SYNCED else record.applied_revision
        prev = self.store.get(run.name)
        st = StackStatus(run.name, sync_status=sync, health_status=health,
                         last_attempted_revision=attempted or rev.sha,
                         last_applied_revision=applied, last_error=message, reason=reason,
                         warnings=run.warnings, rollouts=list(rollouts or []))
        if run.desired:
            st.services = {n: s.spec["TaskTemplate"]["ContainerSpec"].get("Image", "")
                           for n, s in run.desired.services.items()}
        elif run.live:  # not rendered this pass (stalled or failed): report what runs
            st.services = {n: s.spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", "")
                           for n, s in run.live.services.items()}
        for res in rollouts or []:
            if res.image:
                st.services[res.service] = res.image
        # one history entry per outcome: a Failed pass and the Stalled polls after it are one
        changed = prev is None or (prev.last_attempted_revision, prev.reason) != (
            st.last_attempted_revision, st.reason)
        entry = HistoryEntry(st.last_attempted_revision, reason, time.time(), message) if changed else None
        self.store.put(st, entry)
        run.status, run.done = st, True
        self.metrics.stack_status(run.name, applied or st.last_attempted_revision, sync, health)
        writes = run.applied.written if run.applied else {}
        # a new failure is a warning; the same failure seen again on later polls is info
        level = logging.WARNING if sync == S.FAILED or (sync == S.STALLED and changed) else logging.INFO
        log.log(level, "stack=%s revision=%s result=%s reason=%s writes=%s%s", run.name, rev.short,
                sync, reason, sum(writes.values()), f" error={message!r}" if message else "")

    # -- stacks that left the repo -------------------------------------------------------------
    def _prune_gone(self, stack_files: Dict[str, str], live_all: Dict[str, LiveStack],
                    rev: Revision, dry_run: bool, runs: Dict[str, StackRun]) -> List[str]:
        gone = [n for n, live in sorted(live_all.items())
                if live.owned_by(self.settings.instance) and n not in stack_files
                and (not self.settings.stacks or n in self.settings.stacks)]
        if not gone or not self.settings.prune:
            return []
        if not stack_files:
            log.error("the repo has no stacks at %s: refusing to prune every stack (%s)",
                      rev.short, ", ".join(gone))
            return []
        for name in gone:
            plan = StackPlan(name, prune_changes(None, live_all[name], self.settings.instance))
            runs[name] = StackRun(name, live=live_all[name], plan=plan, done=True)
            if dry_run:
                continue
            kept = self.applier.prune(name, plan, live_all[name])
            if live_all[name].record is not None:
                self.client.remove_record(name)
            log.info("stack=%s removed (not in the repo at %s)%s", name, rev.short,
                     f"; {'; '.join(kept)}" if kept else "")
            self.store.forget(name)
            self.metrics.forget_stack(name)
        return gone
