"""One stack's straight line through a pass:

    load -> guard -> images -> inputs key -> stalled? -> convert -> preflight -> plan
         -> apply in waves -> watch -> decide -> record -> settle

Each step takes the previous step's immutable result. A stack's fault stays in that stack: a
KeelsonError becomes a Failed status with its reason, anything else (a bug, a RecursionError, an
engine that went away mid-call) becomes Failed/InternalError, and the pass goes on with the other
stacks. A fast path skips loading, image resolution and conversion when the revision is the one
already rendered and every digest it pinned is still fresh in the digest cache.

Siblings hold the steps' details: ``rendered.py`` (the fast path's cache), ``checks.py``
(preflight), ``rollout_line.py`` (waves, watch, stack rollback), ``outcome.py`` (the pure
decisions) and ``settle.py`` (record and report). ``StackResult`` is defined in ``settle.py``
and importable from here.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence

from controller.deploy.apply import Applier
from controller.deploy.diff import plan_stack, refuse_replacements
from controller.deploy.waves import Waves, plan_waves
from controller.deploy.drift import describe, remaining_drift, resolve_options  # issue 8
from controller.errors import ImmutableChangeError, KeelsonError
from controller.health.assess import is_finite, stack_health
from controller.images.digests import DigestCache
from controller.model import (Checkout, LiveStack, LiveTask, StackManifest, StackPlan,
                              StackRecord)
from controller.model.status import HealthStatus, RollbackScope, SyncStatus
from controller.policy.guard import Guard, placeholder_refs, wanted_objects
from controller.reconcile import outcome as decide
from controller.reconcile.checks import kept_while_referenced, live_preflight
from controller.reconcile.outcome import Outcome
from controller.images.stack import StackImages, pulled_with_inputs, stack_images, tag_moves
from controller.reconcile.analysis_step import AnalysisStep  # issue 10.2
from controller.policy.analysis import check_analysis_allowed  # issue 10.2
from controller.reconcile.rendered import Rendered, RenderedCache, reads_only_its_folder
from controller.reconcile.rollout_line import LineResult, PostCheck, RolloutLine
from controller.reconcile.settle import Settler, StackResult
from controller.reconcile.state import StatusStore
from controller.render.convert import to_desired
from controller.render.compose.encrypted import Decryptor
from controller.render.compose.loader import load_stack
from controller.render.compose.sandbox import RepoLimits

log = logging.getLogger("keelson.reconcile")


@dataclass(frozen=True)
class PassContext:
    """What every stack of one pass shares (read-only).

    Attributes:
        checkout: the fetched revision and its exported tree.
        running: tasks Swarm wants running, listed once for the pass (None: not listed).
        dry_run: plan only: build nothing, write nothing.
        network_names: network ID -> name of every network, listed once (drift detection
            reads the IDs the engine stores in service specs as names).
        ignore_suspend: run a suspended stack anyway (``keelson rollback`` applies an earlier
            revision to a stack it then holds).
    """

    checkout: Checkout
    running: Optional[List[LiveTask]] = None
    dry_run: bool = False
    network_names: Optional[Dict[str, str]] = None  # issue 8.4: network ID -> name
    ignore_suspend: bool = False  # issue 13.3


class StackLine:
    """Runs one stack's line. Every collaborator is built by ``app`` and passed in.

    Args:
        settings: Settings (registry, instance). source: the manifests source (``last_change``).
        client: SwarmClient (preflight look-ups, state records, config references).
        builder: ImageBuilder. digests: DigestCache. applier: Applier. watcher: RolloutWatcher.
        metrics: MetricsRecorder. store: StatusStore. environ: variables for interpolation.
        guard: ownership rules and admission policy (``policy.guard.Guard``).
        decryptor: decrypts SOPS-encrypted files in memory (``secrets.sops.SopsDecryptor``),
            or None when no age key is configured.
        analysis: the analysis step after rollouts (issue 10.2); default: one built from
            ``settings.analysis_allow``, ``metrics``, ``client`` and ``watcher``.
        post_check: optional ``post_check(stack, services) -> Optional[str]`` run after each
            wave completed; a reason fails the rollout (issue 10: the post-rollout analysis).
    """

    def __init__(self, settings, *, source, client, builder, digests: DigestCache,
                 applier: Applier, watcher, metrics, store: StatusStore, environ: Dict[str, str],
                 guard: Guard, decryptor: Optional[Decryptor] = None,
                 analysis: Optional[AnalysisStep] = None, post_check: Optional[PostCheck] = None):
        self.settings = settings
        self.decryptor = decryptor
        self.guard = guard
        self.limits = RepoLimits.from_settings(settings)
        self.source = source
        self.client = client
        self.builder = builder
        self.digests = digests
        self.applier = applier
        self.watcher = watcher
        self.metrics = metrics
        self.store = store
        self.environ = environ
        self.analysis = analysis or AnalysisStep(settings.analysis_allow, metrics)
        self.cache = RenderedCache(self.digests)  # the fast path's rendered stacks
        # issue 10: apply in waves, watch, and roll the stack back on failure
        self.rollouts = RolloutLine(client=client, applier=applier, watcher=watcher,
                                    metrics=metrics, instance=settings.instance)
        self.post_check = post_check
        self.report = Settler(instance=settings.instance, client=client, store=store,
                              metrics=metrics, guard=guard)

    # -- the line ------------------------------------------------------------------------------
    def run(self, name: str, stack_file: str, live: Optional[LiveStack],
            ctx: PassContext) -> StackResult:
        """Reconcile one stack. Never raises: every failure becomes the stack's status."""
        try:
            return self._run(name, stack_file, live, ctx)
        except Exception as exc:  # a bug or an engine gone mid-call: this stack only
            log.exception("stack %s: internal error", name)
            return self.settle(name, live, ctx, decide.crashed(exc))

    def _run(self, name: str, stack_file: str, live: Optional[LiveStack],
             ctx: PassContext, use_cache: bool = True) -> StackResult:
        rev = ctx.checkout.revision
        record = (live.record if live else None) or StackRecord()
        if record.instance not in self.guard.ownership.record_owners:
            record = StackRecord()  # another instance's memory is not ours to act on
        if record.rollback_source_hash and live is not None and not ctx.dry_run:
            return self._finish_rollback(name, live, ctx, record)  # issue 10: a restart
        if not (ctx.dry_run or ctx.ignore_suspend or decide.hold_released(
                record, ctx.checkout.stack_hashes.get(name, ""))):
            # issue 13.3: suspended: no writes, no prune, no drift heal; report what runs
            verdict = self._judge_running(decide.suspended(record, HealthStatus.HEALTHY if live
                                                           else HealthStatus.MISSING),
                                          live, ctx.running, [])
            return self.settle(name, live, ctx, verdict)
        rendered = self.cache.get(name, ctx.checkout.stack_hashes.get(name, ""), rev.sha,
                                  ctx.dry_run) if use_cache else None
        fast, inputs = rendered is not None, ""
        try:
            if rendered is None:
                loaded = self._load_guarded(name, stack_file, live, ctx.checkout)
                pulled, inputs = pulled_with_inputs(loaded, live, record, digests=self.digests,
                                                    options=self._options())
                if decide.is_stalled(record, inputs):
                    # these inputs already failed: wait until one of them changes
                    return self.settle(name, live, ctx, decide.stalled(record))
                rendered = self._convert(name, loaded, pulled, inputs, live, ctx)
            elif decide.is_stalled(record, rendered.inputs):
                return self.settle(name, live, ctx, decide.stalled(record))
            inputs = rendered.inputs
            if fast:  # the swarm may have changed since the stack was rendered
                self.guard.check_owner(rendered.manifest, live, wanted_objects(rendered.desired))
            # issue 8.3/8.4: every field compared (drift), immutable changes planned `replace`
            opts = resolve_options(rendered.manifest.options, self.settings.drift,
                                   self.settings.recreate)
            plan = plan_stack(rendered.desired, live, None, self.settings.instance,
                              network_names=ctx.network_names, drift_mode=opts.drift)
            if fast and not plan.empty:
                # something to write: render again from the files (the cached stack keeps
                # only what a no-op pass needs)
                return self._run(name, stack_file, live, ctx, use_cache=False)
            warnings = self._preflight(name, rendered, plan, opts.recreate, ctx.dry_run, fast)
            waves = plan_waves(plan, rendered.desired, rendered.manifest.depends)  # issue 10
            scope = decide.scope_of(rendered.manifest.options.rollback)
            if ctx.dry_run:
                return StackResult(name, plan=kept_while_referenced(self.client, plan, live),
                                   warnings=tuple(warnings),
                                   to_build=tuple(rendered.images.to_build),
                                   manifest=rendered.manifest, desired=rendered.desired,
                                   waves=waves, rollback_scope=str(scope),
                                   last_good=record.applied_revision if record else "")
            return self._apply(name, rendered, live, ctx, record, plan, warnings, waves, scope,
                               fast)
        except KeelsonError as exc:
            verdict = decide.refused(exc.reason, str(exc), retryable=exc.retryable,
                                     loaded=bool(inputs))
            if verdict.remember_failure and not ctx.dry_run:
                self.report.record(name, live, rev.sha, inputs, verdict, wrote=False)
            return self.settle(name, live, ctx, verdict, error=exc,
                               warnings=list(rendered.warnings) if rendered else [])

    def _apply(self, name: str, rendered: Rendered, live: Optional[LiveStack],
               ctx: PassContext, record: StackRecord, plan: StackPlan, warnings: List[str],
               waves: Waves, scope: RollbackScope, fast: bool) -> StackResult:
        """Apply in waves, watch, decide, record and settle (a real pass with a plan)."""
        rev, inputs = ctx.checkout.revision, rendered.inputs
        line = LineResult(scope=scope)
        if plan.of("create") or plan.of("update") or plan.of("replace"):
            line = self.rollouts.roll_out(
                name, rendered.desired, live, plan, rev, inputs, waves, scope, record,
                post_check=self._post_check(rendered.manifest),
                on_started=lambda: self.report.progressing(name, rev.sha, warnings, plan))
        applied, results = line.applied, list(line.results)
        moves = (tag_moves(rendered.manifest, live, rendered.images.refs)
                 if applied.rollouts else [])
        if line.rolled_back:  # issue 10: the whole stack went back
            verdict = decide.stack_rolled_back(results, line.returns,
                                               revision_short=rev.short)
        else:
            verdict = decide.after_rollouts(plan, results, revision_short=rev.short,
                                            degraded=rendered.images.degraded)
        verdict = self.report.tags_moved(name, rev, moves, verdict)
        if verdict.prune:
            warnings.extend(self.applier.prune(name, plan, live, result=applied))
        if verdict.sync == SyncStatus.SYNCED and not results:
            verdict = self._judge_running(verdict, live, ctx.running, warnings)
        self.report.record(name, live, rev.sha, inputs, verdict, wrote=bool(applied.written))
        verdict = decide.drift_left(verdict, describe(remaining_drift(plan)))  # issue 8.4
        return self.settle(name, live, ctx, verdict, plan=plan, warnings=warnings,
                           rollouts=results, written=applied.written,
                           desired=rendered.desired, fast=fast, image_updates=moves,
                           waves=waves, scope=str(scope), returns=line.returns)

    def _finish_rollback(self, name: str, live: LiveStack, ctx: PassContext,
                         record: StackRecord) -> StackResult:
        """Finish a stack rollback a restart interrupted (issue 10), then remember the failure
        (the stack is Failed at the rolled-back revision, Stalled on later passes)."""
        returns = tuple(self.rollouts.resume(name, live, record))
        verdict = replace(decide.stack_rolled_back(
            [], returns, revision_short=record.rollback_revision[:12], interrupted=True),
            attempted=record.rollback_revision)
        self.report.record(name, live, record.rollback_revision, record.rollback_source_hash,
                     verdict, wrote=True)
        return self.settle(name, live, ctx, verdict, returns=returns,
                           scope=str(decide.scope_of(None)))

    # -- steps ---------------------------------------------------------------------------------
    def _load_guarded(self, name: str, stack_file: str, live: Optional[LiveStack],
                      checkout: Checkout) -> StackManifest:
        """Load the stack, then check ownership and admission before any build, registry call
        or write. Raises: KeelsonError (the stack's files, ownership, policy)."""
        # every read is confined to the tree and capped by the operator's limits
        loaded = load_stack(name, stack_file, self.environ, root=checkout.root,
                            limits=self.limits, decryptor=self.decryptor)
        loaded.source_hash = checkout.stack_hashes.get(name, "")
        sketch = to_desired(loaded, placeholder_refs(loaded), None,
                            bind_root=self.settings.bind_root)
        self.guard.check_owner(loaded, live, wanted_objects(sketch))
        self.guard.check_admission(loaded, sketch)
        # issue 10.2: analysis URLs only where the operator allows (SSRF gate)
        check_analysis_allowed(name, loaded.options.analysis, self.settings.analysis_allow)
        return loaded

    def _convert(self, name: str, loaded: StackManifest, pulled: StackImages, inputs: str,
                 live: Optional[LiveStack], ctx: PassContext) -> Rendered:
        """Build what the stack builds, convert it to Swarm objects, and remember the result
        for the fast path (real passes only). Raises: KeelsonError (images, conversion)."""
        images = stack_images(loaded, ctx.checkout, live, source=self.source,
                              builder=self.builder, digests=self.digests,
                              registry=self.settings.registry, dry_run=ctx.dry_run,
                              pulled=pulled)
        # secrets' and configs' ``environment:`` read the manifest's allowed variables
        desired = to_desired(loaded, images.refs, None, bind_root=self.settings.bind_root)
        key = (ctx.checkout.stack_hashes.get(name, "")
               if reads_only_its_folder(loaded) else "") or f"rev:{ctx.checkout.revision.sha}"
        rendered = Rendered(key, inputs, loaded, images, desired,
                            (*loaded.warnings, *images.warnings, *desired.warnings))
        if not ctx.dry_run:
            self.cache.remember(name, rendered)
        return rendered

    def _preflight(self, name: str, rendered: Rendered, plan: StackPlan, recreate,
                   dry_run: bool, fast: bool) -> List[str]:
        """The pass's warnings: rendering, drift, and the live checks before any write.

        Raises: ImmutableChangeError on a real pass when the plan replaces what ``recreate``
        does not allow (a plan only warns)."""
        warnings = list(rendered.warnings)
        self._drift_found(name, plan, warnings, dry_run)
        try:
            refuse_replacements(plan, recreate)
        except ImmutableChangeError as exc:
            if not dry_run:
                raise
            warnings.append(f"a pass would refuse this stack: {exc}")
        if not (fast and plan.empty):
            warnings.extend(live_preflight(self.client, rendered.manifest, rendered.desired))
        return warnings

    def _options(self) -> Dict[str, str]:
        """Operator settings a stack's rendering depends on (part of its inputs key)."""
        return {"KEELSON_BIND_ROOT": self.settings.bind_root,
                "KEELSON_REGISTRY": self.settings.registry}

    def _post_check(self, manifest: StackManifest) -> Optional[PostCheck]:
        """The check run after each wave completed (issue 10): an injected one (tests), then
        the stack's and its services' ``analysis`` (issue 10.2); None when there is neither."""
        specs = manifest.options.analysis
        if self.post_check is None and not specs:
            return None

        def check(stack: str, services: Sequence[str]) -> Optional[str]:
            """The wave's failure reason (injected check first, then analysis), or None."""
            failure = self.post_check(stack, services) if self.post_check else None
            if failure is None and specs:
                failure = self.analysis.post_check(stack, list(services), specs)
            return failure
        return check

    def keep_only(self, names: Sequence[str]) -> None:
        """Forget rendered stacks not in ``names`` (memory stays bounded by the repo)."""
        self.cache.keep_only(names)

    def pinned_references(self) -> List[str]:
        """Every ``repo:tag`` the rendered stacks pin (what the digest cache must keep)."""
        return self.cache.pinned_references()

    def _drift_found(self, name: str, plan: StackPlan, warnings: List[str],
                     dry_run: bool) -> None:
        """Log and count the drift a plan found (issue 8.4; metrics only on real passes)."""
        left = remaining_drift(plan)
        heal = "would be healed" if dry_run else "healing"
        for d in plan.drift:
            action = ("replacing" if d.immutable else "reported only" if d in left else heal)
            if not dry_run:
                log.warning("stack=%s drift %s (%s)", name, describe([d]), action)
            if action == heal:
                warnings.append(f"drift {'would be healed' if dry_run else 'healed'}: "
                                f"{describe([d])}")
        if not dry_run:
            self.metrics.drift(name, [d.kind.value for d in plan.drift], len(left))

    def _finite_tasks(self, live: LiveStack) -> List[LiveTask]:
        """Every task of the stack's services meant to finish (issue 8.1), [] on error."""
        try:
            return [t for s in live.services.values() if is_finite(s.spec)
                    for t in self.client.tasks(s.id)]
        except KeelsonError as exc:
            log.warning("cannot list tasks to judge health: %s", exc)
            return []

    def _judge_running(self, verdict: Outcome, live: Optional[LiveStack],
                       running: Optional[List[LiveTask]], warnings: List[str]) -> Outcome:
        """Nothing rolled out this pass: judge what runs now (tasks may have died)."""
        if live is None or not live.services or running is None:
            return verdict
        # issue 8.1: services meant to finish are judged from all their tasks
        judged = stack_health(live.services.values(), running + self._finite_tasks(live))
        if judged.reason != "Degraded":
            return verdict
        warnings.append(f"degraded: {judged.message}")
        return replace(verdict, health=HealthStatus.DEGRADED)

    # -- record and report (reconcile/settle.py) ----------------------------------------------
    def settle(self, name: str, live: Optional[LiveStack], ctx: PassContext, verdict: Outcome,
               **produced) -> StackResult:
        """Report a stack's outcome: status store, metrics, one log line. Returns its result.

        Args:
            name: the stack. live: what runs. ctx: the pass. verdict: the outcome.
            produced: what the pass produced (``Settler.settle``'s keywords).
        """
        return self.report.settle(name, live, ctx.checkout.revision, ctx.dry_run, verdict,
                                  **produced)
