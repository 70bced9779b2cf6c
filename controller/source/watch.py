"""File events on a local manifests source, turned into one debounced "something changed" call.

For a git repo (bare or not) only ref updates count: a push or commit moves ``refs/heads/…``,
``packed-refs`` or ``HEAD`` (git writes ``<ref>.lock`` then renames it), while ``objects/`` churn
and lock files are noise. For a plain folder any file change counts. Reads do not: Keelson
hashing the folder must not wake itself up.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, List, Optional, Tuple

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from controller.errors import ConfigError, SourceError
from controller.source.git import git_dir_of

log = logging.getLogger(__name__)

# event types that mean content changed (watchdog also reports opened / closed_no_write)
CHANGE_EVENTS = frozenset({"created", "deleted", "modified", "moved", "closed"})
GIT_DEBOUNCE_S, FOLDER_DEBOUNCE_S = 0.05, 0.5  # seconds of quiet before a change is reported


def is_ref_path(rel: str) -> bool:
    """Tell whether a path inside a git directory is a ref git moves on commit/push.

    Args:
        rel: path relative to the git directory, ``/`` separators.
    Returns:
        bool: True for ``HEAD``, ``packed-refs`` and anything under ``refs/heads/`` that is not
        a ``*.lock`` file.
    """
    if rel.endswith(".lock"):
        return False
    return rel in ("HEAD", "packed-refs") or rel.startswith("refs/heads/")


class _Handler(FileSystemEventHandler):
    """Feeds relevant watchdog events to the watcher's debounce clock."""

    def __init__(self, watcher: "ChangeWatcher"):
        super().__init__()
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        """Poke the watcher's debounce clock when ``event`` touches a relevant path."""
        if event.event_type not in CHANGE_EVENTS:
            return
        paths = [event.src_path]
        if event.event_type == "moved":
            paths.append(event.dest_path)  # git's "ref.lock -> ref" counts by its destination
        if any(self._watcher._relevant(os.fsdecode(p), event) for p in paths if p):
            self._watcher._poke()


class ChangeWatcher:
    """Calls ``on_change`` once after a burst of changes to a local repo or folder.

    Args:
        path: a local bare repo, a work tree (with ``.git``) or a plain folder.
        on_change: called with no arguments from the watcher's own thread, once per burst;
            an exception it raises is logged and the watcher carries on.
        debounce_s: seconds without a relevant event before ``on_change`` is called; None
            means 0.05 s for a git repo (a ref moves in one atomic rename, so there is no burst
            to wait out) and 0.5 s for a plain folder (an editor saves in several writes).
    Raises:
        ConfigError: ``path`` is not an existing folder.
    """

    def __init__(self, path: str, on_change: Callable[[], None],
                 debounce_s: Optional[float] = None):
        self.path = os.path.abspath(path)
        if not os.path.isdir(self.path):
            raise ConfigError(f"cannot watch {self.path}: not a folder")
        self.on_change = on_change
        self.git_dir = git_dir_of(self.path)
        if debounce_s is None:
            debounce_s = GIT_DEBOUNCE_S if self.git_dir is not None else FOLDER_DEBOUNCE_S
        self.debounce_s = debounce_s
        self._cond = threading.Condition()
        self._pending = False
        self._last_event = 0.0  # time.monotonic() of the last relevant event
        self._stopping = False
        self._observer: Optional[Observer] = None
        self._thread: Optional[threading.Thread] = None

    def _watches(self) -> List[Tuple[str, bool]]:
        """(folder, recursive) pairs: for git the git dir top and refs/, never objects/."""
        if self.git_dir is None:
            return [(self.path, True)]
        out = [(self.git_dir, False)]
        refs = os.path.join(self.git_dir, "refs")
        if os.path.isdir(refs):
            out.append((refs, True))
        return out

    def start(self) -> None:
        """Start watching (an inotify/FSEvents observer thread plus the debounce thread).

        Raises:
            SourceError: the operating system refused the watch (e.g. inotify limits).
        """
        if self._observer is not None:
            return
        self._stopping = False
        observer = Observer()
        handler = _Handler(self)
        try:
            for folder, recursive in self._watches():
                observer.schedule(handler, folder, recursive=recursive)
            observer.start()
        except OSError as exc:
            raise SourceError(f"cannot watch {self.path}: {exc}") from exc
        self._observer = observer
        self._thread = threading.Thread(target=self._run, name="keelson-watch", daemon=True)
        self._thread.start()
        log.info("watching %s for changes (%s)", self.path,
                 "git refs" if self.git_dir else "any file")

    def stop(self) -> None:
        """Stop watching; a burst still waiting for quiet is dropped. Safe to call twice."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None

    def _relevant(self, path: str, event: FileSystemEvent) -> bool:
        """Whether one event path means the source changed."""
        if self.git_dir is None:
            # a folder's "modified" only echoes a change to a file in it
            return not (event.is_directory and event.event_type == "modified")
        if event.is_directory:
            return False
        rel = os.path.relpath(path, self.git_dir).replace(os.sep, "/")
        return is_ref_path(rel)

    def _poke(self) -> None:
        """Record a relevant event; the debounce thread calls on_change after quiet."""
        with self._cond:
            self._pending = True
            self._last_event = time.monotonic()
            self._cond.notify_all()

    def _run(self) -> None:
        """Debounce loop: wait for an event, then for ``debounce_s`` of quiet, then call."""
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                while not self._stopping:
                    remaining = self._last_event + self.debounce_s - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if self._stopping:
                    return
                self._pending = False
            try:
                self.on_change()
            except Exception:  # a bad callback must not end watching
                log.exception("change callback for %s failed", self.path)
