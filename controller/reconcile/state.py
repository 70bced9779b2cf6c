"""StatusStore: the in-memory view of the last passes, served at /api/status.

Nothing here is the source of truth across restarts: what Keelson must remember is written to
labels on Swarm objects (see ``model.labels``). This store only holds what the HTTP API and the
CLI report.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Dict, List, Optional

from controller.model import Condition, HistoryEntry, Revision, StackStatus
from controller.model.status import SyncStatus
from controller.telemetry.scrub import scrub

HISTORY_LIMIT = 5  # entries kept per stack (newest first), as Flux keeps a bounded history


class StatusStore:
    """Thread-safe status of the source and of every stack.

    Attributes are read through ``snapshot()``; the reconciler writes through the methods.
    Every free text written here (errors, warnings, history and rollout messages) is passed
    through ``telemetry.scrub.scrub`` first (issue 7): nothing that looks like a credential is
    stored, so nothing reaches ``/api/status`` or ``keelson sync --json``.
    """

    def __init__(self, observer=None):
        """Args: observer: told of every change (``notify.Notifier``: ``stack_changed(prev,
        new)``, ``source_fetched(revision)``, ``source_failed(message)``), or None. It must
        not raise nor block (the notifier queues and returns)."""
        self._observer = observer
        self._lock = threading.Lock()
        self._stacks: Dict[str, StackStatus] = {}
        self._source: Dict[str, object] = {"revision": "", "ref": "", "error": "", "fetched_at": None}
        self._pass: Dict[str, object] = {"count": 0, "last_result": "", "last_finished_at": None,
                                         "last_success_at": None, "running": False}
        self._lease: Dict[str, object] = {"standby": False, "holder": ""}
        self._nodes: Optional[dict] = None  # issue 11: the last node step (None: no nodes file)

    def describe_source(self, web_url: str) -> None:
        """Record the repo's web address (``http.links.repo_web_url``: no credentials), which
        the web page links commits to; "" when the repo has none."""
        with self._lock:
            self._source["web_url"] = web_url

    def source_fetched(self, revision: Revision) -> None:
        """Record a successful fetch of ``revision``."""
        with self._lock:
            self._source.update(revision=revision.sha, ref=revision.ref, error="",
                                message=scrub(revision.message), fetched_at=time.time())
        if self._observer is not None:
            self._observer.source_fetched(revision)

    def source_failed(self, message: str, fetch: bool = False) -> None:
        """Record a failed fetch, listing or prune; the last good revision stays.

        Args:
            message: what failed. fetch: True when the fetch itself failed (the observer
                counts how long the source has been failing).
        """
        with self._lock:
            self._source["error"] = scrub(message)
        if fetch and self._observer is not None:
            self._observer.source_failed(scrub(message))

    def lease_waiting(self, other: str, holder: str = "") -> None:
        """Record the writer lease as this Keelson sees it: ``other`` is the Keelson it waits
        for ("" when this one holds the lease, then ``holder`` is its own identity)."""
        with self._lock:
            self._lease = {"standby": bool(other), "holder": scrub(other or holder)}

    def pass_started(self) -> None:
        """Mark a reconcile pass as running."""
        with self._lock:
            self._pass["running"] = True

    def pass_finished(self, result: str) -> None:
        """Mark the pass done with ``result`` (success, partial, failed, noop)."""
        with self._lock:
            now = time.time()
            self._pass.update(running=False, last_result=result, last_finished_at=now,
                              count=int(self._pass["count"]) + 1)
            if result in ("success", "noop", "partial"):  # the pass ran to its end
                self._pass["last_success_at"] = now

    def nodes_updated(self, section: Optional[dict]) -> None:
        """Store the last node step (``reconcile.nodes.node_section``; None: the repo has no
        nodes file any more); its free texts are scrubbed."""
        if section is None:
            with self._lock:
                self._nodes = None
            return
        section = dict(section, error=scrub(section.get("error", "")), updated_at=time.time(),
                       refusals=[dict(r, message=scrub(r["message"]))
                                 for r in section.get("refusals", [])])
        with self._lock:
            self._nodes = section

    def get(self, stack: str) -> Optional[StackStatus]:
        """A copy of ``stack``'s status, or None."""
        with self._lock:
            st = self._stacks.get(stack)
            return dataclasses.replace(st) if st else None

    def put(self, status: StackStatus, history: Optional[HistoryEntry] = None) -> None:
        """Store ``status`` (conditions derived from it) and prepend ``history`` if given.

        Args:
            status: the stack's new status; its free texts are scrubbed in place.
            history: an entry to prepend (scrubbed too), or None.
        Returns:
            None.
        """
        _scrub_status(status)
        if history is not None:
            history = dataclasses.replace(history, message=scrub(history.message))
        status.conditions = conditions_for(status)
        status.updated_at = time.time()
        with self._lock:
            old = self._stacks.get(status.name)
            if old is not None:  # a condition that did not change keeps its transition time
                before = {c.type: c for c in old.conditions}
                for c in status.conditions:
                    prev = before.get(c.type)
                    if prev is not None and (prev.status, prev.reason) == (c.status, c.reason):
                        c.last_transition = prev.last_transition
            hist: List[HistoryEntry] = list(old.history) if old else []
            if history is not None:
                hist.insert(0, history)
            status.history = hist[:HISTORY_LIMIT]
            self._stacks[status.name] = status
        if self._observer is not None:  # outside the lock: the observer reads nothing here
            self._observer.stack_changed(old, status)

    def add_history(self, stack: str, entry: HistoryEntry) -> None:
        """Prepend ``entry`` (message scrubbed) to ``stack``'s history without changing its
        status (e.g. an image update, issue 9); a stack not seen yet gets an empty status."""
        entry = dataclasses.replace(entry, message=scrub(entry.message))
        with self._lock:
            st = self._stacks.get(stack)
            if st is None:
                st = self._stacks[stack] = StackStatus(stack)
            st.history = [entry, *st.history][:HISTORY_LIMIT]

    def forget(self, stack: str) -> None:
        """Drop a stack that left the repo and the swarm."""
        with self._lock:
            self._stacks.pop(stack, None)

    def stacks(self) -> List[str]:
        """Names of the stacks with a status."""
        with self._lock:
            return sorted(self._stacks)

    def snapshot(self) -> dict:
        """JSON-ready dict: ``{"source": {...}, "pass": {...}, "lease": {"standby", "holder"},
        "stacks": {name: {...}}, "nodes": {...} or None}`` (``nodes``: declared vs live per node
        and the last node plan and result; None while the repo has no nodes file)."""
        with self._lock:
            return {
                "source": dict(self._source),
                "pass": dict(self._pass),
                "lease": dict(self._lease),
                "stacks": {n: dataclasses.asdict(s) for n, s in sorted(self._stacks.items())},
                "nodes": dict(self._nodes) if self._nodes is not None else None,
            }


def _scrub_status(st: StackStatus) -> None:
    """Scrub the free texts of ``st`` in place (last_error, warnings, rollout messages)."""
    st.last_error = scrub(st.last_error)
    st.warnings = [scrub(w) for w in st.warnings]
    st.rollouts = [dataclasses.replace(r, message=scrub(r.message)) for r in st.rollouts]


def conditions_for(st: StackStatus) -> List[Condition]:
    """Flux-style conditions for a status: Ready always; Reconciling / Stalled only while true."""
    now = time.time()
    ready = st.sync_status == SyncStatus.SYNCED
    conds = [Condition("Ready", "True" if ready else "False", st.reason or
                       ("Succeeded" if ready else st.sync_status), st.last_error, now)]
    if st.sync_status == SyncStatus.PROGRESSING:
        conds.append(Condition("Reconciling", "True", "Progressing", "", now))
    if st.sync_status in (SyncStatus.STALLED, SyncStatus.FAILED):
        conds.append(Condition("Stalled", "True", st.reason or "Failed", st.last_error, now))
    return conds
