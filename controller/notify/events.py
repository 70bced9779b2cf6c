"""PURE: which notifications a status change makes.

The status store reports every stack's previous and new status (``reconcile/state.py``); the
functions here turn that pair into ``NotificationEvent``s. No I/O, no clock: the caller passes
the time. Unit-tested without Docker or a receiver.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List, Optional, Tuple

from controller.model import Revision, StackStatus
from controller.model.status import EventKind, RolloutOutcome, SyncStatus

PRUNE_BLOCKED = "PruneBlocked"  # the reconciler's reason for a blocked prune
DRIFT_HEALED_PREFIX = "drift healed: "  # the stack line's warning for healed drift

# Events that say something is wrong: the same one for the same stack, revision and reason is
# sent once per repeat window (KEELSON_NOTIFY_REPEAT_WINDOW).
REPEATABLE = frozenset({EventKind.ROLLED_BACK, EventKind.FAILED, EventKind.STALLED,
                        EventKind.DRIFT_HEALED, EventKind.PRUNE_BLOCKED, EventKind.FETCH_FAILING})

TITLES = {
    EventKind.ROLLOUT_STARTED: "rollout started",
    EventKind.ROLLOUT_COMPLETED: "rollout completed",
    EventKind.ROLLED_BACK: "rolled back",
    EventKind.FAILED: "failed",
    EventKind.STALLED: "stalled",
    EventKind.DRIFT_HEALED: "drift healed",
    EventKind.PRUNE_BLOCKED: "prune blocked",
    EventKind.FETCH_FAILING: "fetch failing",
    EventKind.RECOVERED: "recovered",
}


@dataclass(frozen=True)
class NotificationEvent:
    """One thing worth telling people about.

    Attributes:
        kind: the EventKind. stack: the stack ("" for the source: fetch failing / recovered).
        revision: short id of the revision (12 hex digits for git). subject: the commit's first
            line ("" when the revision is not the one last fetched). services: ``service=image``
            for each service, the image (with its sha256 digest when pinned) that runs now.
        reason: condition reason (Succeeded, RolledBack, ImageBuildFailed...). message: why, in
            words (scrubbed by the status store before it gets here).
        at: unix seconds of the status change.
    """

    kind: EventKind
    stack: str
    revision: str = ""
    subject: str = ""
    services: Tuple[str, ...] = ()
    reason: str = ""
    message: str = ""
    at: float = 0.0

    @property
    def repeat_key(self) -> Tuple[str, str, str, str]:
        """What makes two events "the same failure": kind, stack, revision, reason."""
        return (self.kind.value, self.stack, self.revision, self.reason)

    @property
    def title(self) -> str:
        """One line: ``Keelson: <stack> <what happened>``."""
        who = self.stack or "source"
        return f"Keelson: {who} {TITLES[self.kind]}"

    def body(self) -> str:
        """The message text: one ``key: value`` line per fact, in a fixed order.

        Returns:
            str: lines event, stack, revision (short id and subject), services (one
            ``service=image`` per line, indented), reason and why.
        """
        rev = f"{self.revision} {self.subject}".strip() if self.revision else "-"
        lines = [f"event: {self.kind.value}", f"stack: {self.stack or '-'}", f"revision: {rev}"]
        if self.services:
            lines.append("services:")
            lines.extend(f"  {s}" for s in self.services)
        lines.append(f"reason: {self.reason or '-'}")
        if self.message:
            lines.append(f"why: {self.message}")
        return "\n".join(lines)


def stack_events(prev: Optional[StackStatus], new: StackStatus, source: Optional[Revision],
                 at: float) -> List[NotificationEvent]:
    """The events a stack's status change makes.

    Args:
        prev: the stack's status before (None: first seen by this Keelson process).
        new: its new status (as the status store keeps it, free texts scrubbed).
        source: the revision last fetched (its subject is used when the stack's attempted
            revision is that one), or None.
        at: unix seconds of the change.
    Returns:
        list of NotificationEvent, in the order they happened: rollout_started when the stack
        turns Progressing (or Progressing on another revision), listing the images that ran
        before it; on a settled status,
        drift_healed when the pass healed drift, then rollout_completed (Synced after
        rollouts), rolled_back (Failed, reason RolledBack or a rolled-back rollout), failed
        (Failed otherwise), stalled (turned Stalled), prune_blocked (turned PruneBlocked),
        recovered (Synced after Failed/Stalled/PruneBlocked). A status equal in sync, reason
        and revision to the previous one makes only failed (repeat suppression is the
        notifier's).
    """
    sync = new.sync_status
    if sync == SyncStatus.PROGRESSING and not new.services and prev is not None:
        # a rollout has just started: what runs now is what the stack ran before it
        new = dataclasses.replace(new, services=dict(prev.services))
    base = _base(new, source, at)
    if sync == SyncStatus.PROGRESSING:
        if prev is None or prev.sync_status != SyncStatus.PROGRESSING or (
                prev.last_attempted_revision != new.last_attempted_revision):
            return [_with(base, EventKind.ROLLOUT_STARTED, reason="Progressing", message="")]
        return []
    out: List[NotificationEvent] = []
    healed = [w[len(DRIFT_HEALED_PREFIX):] for w in new.warnings
              if w.startswith(DRIFT_HEALED_PREFIX)]
    if healed:
        out.append(_with(base, EventKind.DRIFT_HEALED, message="; ".join(healed)))
    was = prev.sync_status if prev is not None else None
    was_reason = prev.reason if prev is not None else ""
    if sync == SyncStatus.SYNCED:
        if new.rollouts:
            out.append(_with(base, EventKind.ROLLOUT_COMPLETED))
        if was in (SyncStatus.FAILED, SyncStatus.STALLED) or was_reason == PRUNE_BLOCKED:
            out.append(_with(base, EventKind.RECOVERED,
                             message=f"was {was_reason or was}: {prev.last_error}"[:500]))
    elif sync == SyncStatus.FAILED:
        rolled = new.reason == "RolledBack" or any(
            r.outcome == RolloutOutcome.ROLLED_BACK for r in new.rollouts)
        out.append(_with(base, EventKind.ROLLED_BACK if rolled else EventKind.FAILED))
    elif sync == SyncStatus.STALLED:
        if was != SyncStatus.STALLED:
            out.append(_with(base, EventKind.STALLED))
    elif new.reason == PRUNE_BLOCKED and was_reason != PRUNE_BLOCKED:
        out.append(_with(base, EventKind.PRUNE_BLOCKED))
    return out


def source_failing(message: str, since: float, at: float) -> NotificationEvent:
    """The fetch_failing event: the source has failed since ``since`` (unix s) up to ``at``."""
    minutes = max(0.0, at - since) / 60
    return NotificationEvent(EventKind.FETCH_FAILING, "", reason="FetchFailed",
                             message=f"failing for {minutes:.1f} min: {message}"[:500], at=at)


def source_recovered(revision: Revision, at: float) -> NotificationEvent:
    """The recovered event of a source that fetches again, at ``revision``."""
    return NotificationEvent(EventKind.RECOVERED, "", revision.short, revision.message,
                             reason="Succeeded", message="the source fetches again", at=at)


def _base(new: StackStatus, source: Optional[Revision], at: float) -> NotificationEvent:
    """An event carrying the facts of ``new`` (kind filled in by ``_with``)."""
    sha = new.last_attempted_revision
    subject = source.message if source is not None and sha and source.sha == sha else ""
    short = Revision(sha).short if sha else ""
    services = tuple(f"{name}={image}" for name, image in sorted(new.services.items()))
    return NotificationEvent(EventKind.FAILED, new.name, short, subject, services,
                             new.reason, new.last_error, at)


def _with(base: NotificationEvent, kind: EventKind, **changes) -> NotificationEvent:
    """``base`` as an event of ``kind`` (and any other field changed)."""
    fields = dict(base.__dict__, kind=kind, **changes)
    return NotificationEvent(**fields)
