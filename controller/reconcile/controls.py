"""Per-stack controls (issue 13.3): sync now, suspend, resume, rollback, diff.

What a control must remember is written to the stack's state record (``<stack>_keelson-state``,
labels ``io.keelson.suspended`` / ``io.keelson.held-source``), so a suspended stack stays
suspended when Keelson restarts or moves to another manager. Each control that reads or writes
the record, or renders the stack, holds the pass lock: it never races a pass over the record
(a pass would otherwise write back the record it read before the control). After a write, a
pass for that stack alone is queued so its status shows the new state.

After Flux and Argo CD: ``suspend`` stops writes, prunes and drift heals for the stack until
``resume``; ``rollback`` re-applies an earlier revision's content (from git, through the same
sandboxed export as a fetch) and holds the stack there until a commit changes it, or ``resume``
(``argocd app rollback`` leaves auto-sync off the same way).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
from typing import Callable, List, Optional

from controller.deploy.fields import stack_field_diff
from controller.errors import ControlError, StackNotFoundError
from controller.model import LiveStack, StackRecord
from controller.model.status import SuspendMode, SyncStatus
from controller.reconcile.reconciler import Reconciler
from controller.reconcile.stack import PassContext
from controller.reconcile.state import StatusStore
from controller.render.compose.files import find_stacks

log = logging.getLogger("keelson.controls")


class StackControls:
    """The actions ``/api/stacks/NAME/...`` and the remote CLI commands call.

    Args:
        reconciler: the Reconciler (its stack line and guard are used for rollback).
        client: SwarmClient (state records, the stack's live objects). source: the manifests
            source (``fetch``, ``checkout_at``). store: the StatusStore (which stacks exist).
        instance: this Keelson's instance name (written on records).
        lock: the pass lock (held by every pass, so controls and passes never overlap).
        request_pass: queues a pass for the given stack names (the loop's trigger); may be
            None when no loop runs (the pass is then not queued).
        fence: raises LeaseLostError while another Keelson task of the instance holds the
            writer lease (issue 11): a standby Keelson refuses controls instead of writing.
    """

    def __init__(self, reconciler: Reconciler, *, client, source, store: StatusStore,
                 instance: str, lock: threading.Lock,
                 request_pass: Optional[Callable[[List[str]], None]] = None,
                 fence: Optional[Callable[[], None]] = None):
        self.reconciler = reconciler
        self.fence = fence or (lambda: None)
        self.client = client
        self.source = source
        self.store = store
        self.instance = instance
        self.lock = lock
        self.request_pass = request_pass

    # -- the actions ---------------------------------------------------------------------------
    def sync_now(self, name: str) -> dict:
        """Queue a pass for ``name`` alone, ahead of the next poll.

        Returns:
            dict: ``{"stack", "action": "sync", "queued": true}``.
        Raises:
            StackNotFoundError: Keelson does not reconcile ``name``.
        """
        self.known(name)
        self._queue(name)
        return {"stack": name, "action": "sync", "queued": True}

    def suspend(self, name: str) -> dict:
        """Suspend ``name``: no writes, no prune, no drift heal until ``resume``.

        Returns:
            dict: ``{"stack", "action": "suspend", "suspended": "suspend", "changed"}``.
        Raises:
            StackNotFoundError: unknown stack. OwnershipError: another instance's record.
            SwarmError: the record could not be read or written.
        """
        self.known(name)
        with self.lock:
            record = self._record(self._live(name))
            changed = record.suspended != SuspendMode.SUSPEND
            if changed:
                self._write(name, dataclasses.replace(record, suspended=SuspendMode.SUSPEND.value,
                                                      held_source=""))
        log.info("stack=%s suspended%s", name, "" if changed else " (already)")
        self._queue(name)
        return {"stack": name, "action": "suspend", "suspended": SuspendMode.SUSPEND.value,
                "changed": changed}

    def resume(self, name: str) -> dict:
        """Resume ``name`` (after ``suspend`` or a rollback hold) and queue a pass for it.

        Returns:
            dict: ``{"stack", "action": "resume", "suspended": "", "changed"}``.
        Raises:
            StackNotFoundError, OwnershipError, SwarmError: as ``suspend``.
        """
        self.known(name)
        with self.lock:
            record = self._record(self._live(name))
            changed = bool(record.suspended)
            if changed:
                self._write(name, dataclasses.replace(record, suspended="", held_source=""))
        log.info("stack=%s resumed%s", name, "" if changed else " (was not suspended)")
        self._queue(name)
        return {"stack": name, "action": "resume", "suspended": "", "changed": changed}

    def rollback(self, name: str, to: str = "") -> dict:
        """Apply an earlier revision's content of ``name``, then hold the stack there.

        Args:
            name: the stack. to: a commit id of the followed branch; "" for the last good
                revision: the applied one when the latest attempt failed, else the one
                applied before it.
        Returns:
            dict: ``{"stack", "action": "rollback", "revision", "suspended": "rollback"}``.
        Raises:
            StackNotFoundError: unknown stack.
            ControlError: a plain-folder source, no earlier revision known, a revision not on
                the branch or without this stack, or the rollout of that revision failed
                (Swarm's own rollback then restored what ran; nothing new is held, and a
                stack that was suspended stays suspended).
            KeelsonError: the fetch, export, or the swarm failed.
        """
        self.known(name)
        with self.lock:
            live = self._live(name)
            record = self._record(live)
            target = to or (record.applied_revision if record.failed_revision
                            else record.previous_revision)
            if not target:
                raise ControlError(f"stack {name}: no earlier revision is recorded; name one "
                                   "with --to REVISION")
            head = self.source.fetch()
            checkout = self.source.checkout_at(target)
            files = (find_stacks(checkout.manifests) if os.path.isdir(checkout.manifests)
                     else {})
            if name not in files:
                raise ControlError(f"stack {name} does not exist at revision "
                                   f"{checkout.revision.short}")
            ctx = PassContext(checkout, self.client.running_tasks(), False,
                              self.client.network_names(), ignore_suspend=True)
            log.info("stack=%s rolling back to %s", name, checkout.revision.short)
            result = self.reconciler.line.run(name, files[name], live, ctx)
            status = result.status
            if status is None or status.sync_status != SyncStatus.SYNCED:
                if record.suspended:  # a failed rollback leaves a suspension as it was
                    self._write(name, dataclasses.replace(
                        self._record(self._live(name)), suspended=record.suspended,
                        held_source=record.held_source))
                why = status.last_error if status else "no status"
                raise ControlError(f"rollback of stack {name} to {checkout.revision.short} did "
                                   f"not converge: {why}")
            after = self._record(self._live(name))
            self._write(name, dataclasses.replace(after, suspended=SuspendMode.ROLLBACK.value,
                                                  held_source=head.stack_hashes.get(name, "")))
        log.info("stack=%s rolled back to %s; held until a commit changes it", name,
                 checkout.revision.short)
        self._queue(name)
        return {"stack": name, "action": "rollback", "revision": checkout.revision.sha,
                "suspended": SuspendMode.ROLLBACK.value}

    def diff(self, name: str) -> dict:
        """What a pass would change in ``name`` now, field by field (a dry-run pass).

        Returns:
            dict: ``{"stack", "revision", "suspended", "warnings", "changes": [{"kind",
            "name", "action", "reason", "fields": [{"path", "old", "new"}]}]}``; ``changes``
            is empty when the stack is in sync.
        Raises:
            StackNotFoundError: unknown stack. ControlError: the stack cannot be planned (the
                message says why). KeelsonError: the swarm could not be listed.
        """
        self.known(name)
        with self.lock:
            outcome = self.reconciler.reconcile(dry_run=True, stacks=[name])
            live = self._live(name)
            networks = self.client.network_names()
        run = outcome.runs.get(name)
        if run is None or run.plan is None:
            why = (run.error or (run.status.last_error if run.status else "")) if run else ""
            raise ControlError(f"stack {name} cannot be planned: "
                               f"{why or outcome.error or 'not in the repo'}")
        changes = stack_field_diff(run.plan, run.desired, live, networks)
        return {"stack": name,
                "revision": outcome.revision.sha if outcome.revision else "",
                "suspended": self._record(live).suspended,
                "warnings": list(run.warnings),
                "changes": [dataclasses.asdict(c) for c in changes]}

    # -- helpers -------------------------------------------------------------------------------
    def known(self, name: str) -> None:
        """Raise StackNotFoundError unless ``name`` has a status (a pass has seen it)."""
        allowed = self.reconciler.settings.stacks
        if name not in self.store.stacks() or (allowed and name not in allowed):
            raise StackNotFoundError(f"no stack {name!r} (stacks: "
                                     f"{', '.join(self.store.stacks()) or 'none yet'})")

    def _live(self, name: str) -> Optional[LiveStack]:
        return self.client.live_stacks([name]).get(name)

    def _record(self, live: Optional[LiveStack]) -> StackRecord:
        """The stack's record when this instance may act on it, else an empty one."""
        record = (live.record if live else None) or StackRecord()
        if record.instance and record.instance not in self.reconciler.guard.ownership.record_owners:
            return StackRecord()  # written will be refused by write_record (issue 7)
        return record

    def _write(self, name: str, record: StackRecord) -> None:
        self.fence()
        self.client.write_record(name, dataclasses.replace(record, instance=self.instance),
                                 replace=self.reconciler.guard.ownership.record_owners)

    def _queue(self, name: str) -> None:
        if self.request_pass is not None:
            self.request_pass([name])
