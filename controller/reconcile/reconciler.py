"""One reconcile pass: fetch once, observe once, fan the stacks out, prune, report.

    fetch -> nodes file: plan and apply node changes, with guards (reconcile/nodes.py)
      -> find stacks -> list the swarm (and the running tasks) -> seed the digest cache
      -> each stack's line in a bounded worker pool (reconcile/stack.py), changed stacks first
      -> prune stacks that left the repo, within the proportional guard

Safety rules (DESIGN.md): a failed fetch or listing changes nothing that runs; a stack that fails
to load is never pruned; a pass that would remove more than ``prune_max_stacks`` stacks or more
than ``prune_max_ratio`` of the stacks this Keelson owns removes nothing and fails (PruneBlocked)
unless the operator allows it; a stack's fault (even a crash) stays in that stack.
"""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from controller.config import Settings
from controller.deploy.apply import Applier
from controller.deploy.diff import prune_changes
from controller.errors import KeelsonError, ManifestError, SourceError
from controller.images.digests import DigestCache
from controller.model import Checkout, LiveStack, Revision, StackPlan, StackStatus
from controller.model import labels as L
from controller.model.manifest import ImageRef
from controller.model.status import HealthStatus
from controller.model.status import PassResult as Result
from controller.model.status import SyncStatus
from controller.policy.guard import Guard
from controller.reconcile.nodes import NodeLine, NodeOutcome
from controller.reconcile.outcome import Outcome
from controller.reconcile.stack import PassContext, StackLine, StackResult
from controller.reconcile.state import StatusStore
from controller.render.compose.files import find_stacks

log = logging.getLogger("keelson.reconcile")

PRUNE_BLOCKED = "PruneBlocked"


@dataclass
class PassResult:
    """The outcome of one pass.

    Attributes:
        result: ``success`` (something changed, all converged), ``noop`` (nothing to change),
            ``partial`` (some stacks failed, or the node step), ``failed`` (fetch, listing or
            prune guard).
        revision: the revision reconciled (None when the fetch failed).
        runs: stack name -> StackResult (plans, statuses). removed: stacks pruned from the swarm.
        error: the pass-level error message, if any.
        nodes: the node step (None: the revision has no nodes file).
    """

    result: str
    revision: Optional[Revision] = None
    runs: Dict[str, StackResult] = field(default_factory=dict)
    removed: List[str] = field(default_factory=list)
    error: str = ""
    nodes: Optional[NodeOutcome] = None

    @property
    def converged(self) -> bool:
        """True when every stack of the pass is Synced (or Suspended: held on purpose) and the
        node step (if any) did not fail (refused, invalid nodes file, failed update)."""
        return self.result in (Result.SUCCESS, Result.NOOP) and not (
            self.nodes and self.nodes.failed) and all(
            r.status is not None and r.status.sync_status in (SyncStatus.SYNCED,
                                                              SyncStatus.SUSPENDED)
            for r in self.runs.values())


class Reconciler:
    """Runs passes. Every collaborator is built by ``app`` and passed in.

    Args:
        settings: Settings. source: GitSource/FolderSource. client: SwarmClient.
        builder: ImageBuilder. digests: DigestCache. applier: Applier. watcher: RolloutWatcher.
        metrics: MetricsRecorder. store: StatusStore. environ: variables for interpolation.
        guard: ownership rules and admission policy; None builds one from ``settings``.
        decryptor: SOPS decryptor handed to every stack's loader (None: no age key).
    """

    def __init__(self, settings: Settings, *, source, client, builder, digests: DigestCache,
                 applier: Applier, watcher, metrics, store: StatusStore, environ: Dict[str, str],
                 guard: Optional[Guard] = None, decryptor=None):
        self.settings = settings
        self.source = source
        self.client = client
        self.digests = digests
        self.applier = applier
        self.metrics = metrics
        self.store = store
        self.guard = guard or Guard.from_settings(settings)
        self.line = StackLine(settings, source=source, client=client, builder=builder,
                              digests=digests, applier=applier, watcher=watcher,
                              metrics=metrics, store=store, environ=environ, guard=self.guard,
                              decryptor=decryptor)
        self.node_line = NodeLine(settings, client=client, metrics=metrics, store=store)

    def reconcile(self, dry_run: bool = False, allow_mass_prune: bool = False,
                  stacks: Optional[Sequence[str]] = None) -> PassResult:
        """Run one pass.

        Args:
            dry_run: plan only; write nothing, build nothing.
            allow_mass_prune: lift the prune guard for this pass (``--allow-mass-prune``).
            stacks: reconcile (and prune) only these stacks this pass (``keelson sync STACK
                --now``, issue 13.3); None: every stack KEELSON_STACKS allows.
        Returns:
            PassResult. Never raises: failures become statuses and conditions.
        """
        wanted = self._selection(stacks)
        if stacks is not None and not wanted:
            return PassResult(Result.NOOP)  # none of the asked stacks is this Keelson's
        started = time.monotonic()
        self.store.pass_started()
        try:
            outcome = self._reconcile(dry_run, allow_mass_prune or self.settings.allow_mass_prune,
                                      wanted)
        except Exception as exc:  # a bug: report it, keep the loop alive
            log.exception("reconcile pass crashed")
            outcome = PassResult(Result.FAILED, error=f"internal error: {exc}")
        if not dry_run:
            self.metrics.reconcile_finished(outcome.result, time.monotonic() - started)
        self.store.pass_finished(outcome.result)
        return outcome

    def _selection(self, stacks: Optional[Sequence[str]]) -> tuple:
        """The stacks a pass may touch: ``stacks`` within KEELSON_STACKS (() = every stack)."""
        if stacks is None:
            return tuple(self.settings.stacks)
        allowed = self.settings.stacks
        return tuple(n for n in stacks if not allowed or n in allowed)

    def _reconcile(self, dry_run: bool, allow_mass_prune: bool, wanted: tuple) -> PassResult:
        checkout = self._fetch()
        if isinstance(checkout, PassResult):
            return checkout
        # issue 11: nodes before stacks, so a constraint on a new label finds it this pass
        nodes = self.node_line.run(checkout, dry_run)
        outcome = self._stacks(checkout, dry_run, allow_mass_prune, wanted)
        outcome.nodes = nodes
        if nodes is not None and outcome.result in (Result.SUCCESS, Result.NOOP):
            if nodes.failed:
                outcome.result = Result.PARTIAL
            elif nodes.applied:
                outcome.result = Result.SUCCESS
        return outcome

    def _stacks(self, checkout: Checkout, dry_run: bool, allow_mass_prune: bool,
                wanted: tuple) -> PassResult:
        """Everything of a pass after the fetch and the node step: the stacks (``wanted``: the
        selected stack names, () for all)."""
        revision = checkout.revision
        rejected: Dict[str, str] = {}
        try:
            # a manifests folder the revision does not have holds no stacks (git drops an
            # emptied folder); the prune guard stands between that and removing everything
            stack_files = (find_stacks(checkout.manifests, rejected=rejected)
                           if os.path.isdir(checkout.manifests) else {})
        except ManifestError as exc:
            return self._fail_pass(revision, f"cannot list stacks: {exc}")
        try:
            live_all = self.client.live_stacks()
            running = None if dry_run else self.client.running_tasks()
            network_names = self.client.network_names()  # issue 8.4: service targets are IDs
        except KeelsonError as exc:
            return self._fail_pass(revision, f"cannot list the swarm: {exc}")
        self._seed_digests(live_all)
        for name in wanted:
            if name not in stack_files and name not in live_all and name not in rejected:
                log.warning("--stack %s: no such stack in the repo at %s nor in the swarm "
                            "(stacks: %s)", name, revision.short, ", ".join(stack_files) or "none")
        selected = {n: f for n, f in stack_files.items() if not wanted or n in wanted}
        ctx = PassContext(checkout, running, dry_run, network_names)
        runs = self._fan_out(selected, live_all, ctx)
        for name, message in rejected.items():
            if not wanted or name in wanted:
                runs[name] = self.line.settle(name, live_all.get(name), ctx, Outcome(
                    SyncStatus.FAILED, HealthStatus.UNKNOWN, ManifestError.reason, message))
        if not dry_run:
            self.line.keep_only(list(stack_files))
            self.digests.forget_unused(self.line.pinned_references())
        # a folder that is in the repo but cannot be deployed is still the repo's: never pruned
        in_repo = set(stack_files) | set(rejected)
        if not dry_run:  # a stack that left the repo before it ever ran leaves the status too
            for name in self.store.stacks():
                if name not in in_repo and name not in live_all and (not wanted or name in wanted):
                    self.store.forget(name)
                    self.metrics.forget_stack(name)
        removed, blocked = self._prune_gone(in_repo, live_all, revision, dry_run,
                                            allow_mass_prune, runs, ctx, wanted)
        if not dry_run:
            self.metrics.prune_blocked(bool(blocked))  # issue 13.4: KeelsonPruneBlocked
        if blocked:
            return PassResult(Result.FAILED, revision, runs, [], blocked)
        failed = [r for r in runs.values() if r.status and r.status.sync_status in
                  (SyncStatus.FAILED, SyncStatus.STALLED)]
        wrote = any(r.written for r in runs.values()) or bool(removed)
        result = Result.PARTIAL if failed else (Result.SUCCESS if wrote else Result.NOOP)
        return PassResult(result, revision, runs, removed)

    def _fan_out(self, selected: Dict[str, str], live_all: Dict[str, LiveStack],
                 ctx: PassContext) -> Dict[str, StackResult]:
        """Run every selected stack's line in a pool of ``settings.workers`` threads.

        Stacks whose folder changed since it was last applied go first, so a one-line commit
        does not wait behind the others.
        """
        def changed_first(name: str):
            """Sort key: (already applied?, name), so changed stacks come first."""
            record = live_all[name].record if name in live_all else None
            applied = record.applied_source_hash if record else ""
            return (applied == ctx.checkout.stack_hashes.get(name, ""), name)

        order = sorted(selected, key=changed_first)
        workers = max(1, min(self.settings.workers, len(order)))
        if workers == 1:
            return {n: self.line.run(n, selected[n], live_all.get(n), ctx) for n in order}
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stack") as pool:
            futures = {n: pool.submit(self.line.run, n, selected[n], live_all.get(n), ctx)
                       for n in order}
            return {n: futures[n].result() for n in sorted(futures)}

    def _seed_digests(self, live_all: Dict[str, LiveStack]) -> None:
        """Seed the digest cache from what live services pin (a restart asks nothing at once)."""
        pinned = []
        for live in live_all.values():
            for svc in live.services.values():
                if not L.owned_by(svc.labels, self.settings.instance):
                    continue
                template = svc.spec.get("TaskTemplate") or {}
                ref = ImageRef.parse((template.get("ContainerSpec") or {}).get("Image", ""))
                if not (ref.digest and ref.tag):
                    continue
                platforms = tuple((p.get("OS", ""), p.get("Architecture", ""))
                                  for p in (template.get("Placement") or {}).get("Platforms") or [])
                pinned.append((f"{ref.repository}:{ref.tag}", ref.digest, platforms))
        self.digests.seed(pinned)

    def _fetch(self):
        t0 = time.monotonic()
        try:
            checkout: Checkout = self.source.fetch()
        except SourceError as exc:
            self.metrics.git_fetch("error", time.monotonic() - t0)
            self.store.source_failed(str(exc), fetch=True)
            log.error("fetch failed, nothing changed: %s", exc)
            return PassResult(Result.FAILED, error=str(exc))
        self.metrics.git_fetch("success", time.monotonic() - t0)
        rev = checkout.revision
        self.store.source_fetched(rev)
        self.metrics.source_revision(rev.sha, rev.ref, rev.committed_at)
        return checkout

    def _fail_pass(self, revision: Revision, message: str) -> PassResult:
        log.error("%s (revision %s): nothing changed", message, revision.short)
        self.store.source_failed(message)
        return PassResult(Result.FAILED, revision, error=message)

    # -- stacks that left the repo -------------------------------------------------------------
    def _prune_gone(self, in_repo, live_all: Dict[str, LiveStack], rev: Revision, dry_run: bool,
                    allow: bool, runs: Dict[str, StackResult], ctx: PassContext, mine: tuple):
        """Remove the owned stacks that left the repo, unless the guard blocks the pass.

        Returns:
            (removed stack names, "" or the PruneBlocked message when nothing was removed).
        """
        allowed = self.settings.stacks
        owned = [n for n, live in sorted(live_all.items())
                 if self.guard.may_prune(n, live) and (not allowed or n in allowed)]
        # issue 13.3: only the pass's stacks go (``mine``: all, or those of `sync STACK --now`;
        # the guard still weighs them against every owned stack); a suspended stack is kept
        gone = [n for n in owned if n not in in_repo and (not mine or n in mine)
                and not (live_all[n].record and live_all[n].record.suspended)]
        if not gone or not self.settings.prune:
            return [], ""
        limit = self._prune_limit(len(gone), len(owned))
        if limit and not allow:
            message = (f"prune blocked: the repo at {rev.short} no longer has {len(gone)} of the "
                       f"{len(owned)} stacks this Keelson owns ({', '.join(gone)}); {limit}. "
                       "Nothing was removed. If this is intended, set KEELSON_ALLOW_MASS_PRUNE="
                       "true or run `keelson sync --allow-mass-prune` once")
            log.error("%s", message)
            for name in gone:
                plan = StackPlan(name, prune_changes(None, live_all[name], self.settings.instance))
                runs[name] = StackResult(name, plan=plan, status=StackStatus(
                    name, sync_status=SyncStatus.OUT_OF_SYNC, health_status=HealthStatus.UNKNOWN,
                    last_attempted_revision=rev.sha, reason=PRUNE_BLOCKED, last_error=message))
                if not dry_run:
                    self.store.put(runs[name].status)
                    self.metrics.stack_status(name, rev.sha, SyncStatus.OUT_OF_SYNC,
                                              HealthStatus.UNKNOWN)
            if not dry_run:
                self.store.source_failed(message)
            return [], message
        removed = []
        for name in gone:
            plan = StackPlan(name, prune_changes(None, live_all[name], self.settings.instance))
            runs[name] = StackResult(name, plan=plan)
            if dry_run:
                continue
            try:
                kept = self.applier.prune(name, plan, live_all[name])
                if live_all[name].record is not None:
                    self.client.remove_record(name, self.settings.instance)
            except KeelsonError as exc:  # the next pass tries again; the others go on
                log.error("stack=%s could not be removed: %s", name, exc)
                continue
            log.info("stack=%s removed (not in the repo at %s)%s", name, rev.short,
                     f"; {'; '.join(kept)}" if kept else "")
            self.store.forget(name)
            self.metrics.forget_stack(name)
            removed.append(name)
        return removed, ""

    def _prune_limit(self, gone: int, owned: int) -> str:
        """Which guard a prune of ``gone`` of ``owned`` stacks breaks ("" when none)."""
        if gone > self.settings.prune_max_stacks:
            return f"more than KEELSON_PRUNE_MAX_STACKS={self.settings.prune_max_stacks}"
        if owned and gone / owned > self.settings.prune_max_ratio:
            return (f"{gone / owned:.0%} is more than KEELSON_PRUNE_MAX_RATIO="
                    f"{self.settings.prune_max_ratio:g}")
        return ""
