"""``GET /api/swarm``: the swarm view's JSON, read at most once per ``CACHE_S`` seconds.

A page left open polls every couple of seconds, and several may be open: every request within
``CACHE_S`` of the last read is answered from that read, and concurrent requests wait for one
read instead of each making their own (three Engine requests per read, see
``controller.swarm.overview``).
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Optional

from controller.model.overview import (FAILED_STATES, STARTING_STATES, ServiceInfo, SwarmOverview,
                                      TaskInfo, TaskLook)

CACHE_S = 1.5  # seconds one read of the swarm answers /api/swarm



def task_look(task: TaskInfo) -> TaskLook:
    """The colour of a task box.

    Args:
        task: one task.
    Returns:
        TaskLook: FAILED for failed/rejected/orphaned; SHUTDOWN for any other finished task or
        one Swarm wants stopped; RUNNING for a running task; STARTING otherwise.
    """
    if task.state in FAILED_STATES:
        return TaskLook.FAILED
    if task.desired_state not in ("running", "ready", "accepted") or task.state in (
            "shutdown", "complete", "remove"):
        return TaskLook.SHUTDOWN
    if task.state == "running":
        return TaskLook.RUNNING
    return TaskLook.STARTING if task.state in STARTING_STATES else TaskLook.SHUTDOWN


def task_generation(task: TaskInfo, service: ServiceInfo) -> str:
    """Whether a task was made from its service's current spec.

    Args:
        task: one task. service: its service.
    Returns:
        str: ``current`` (same task template as the service now), ``previous`` (the template of
        ``PreviousSpec``: not yet updated, or the target of a rollback), or ``other``.
    """
    if task.spec_key and task.spec_key == service.spec_key:
        return "current"
    if task.spec_key and task.spec_key == service.previous_key:
        return "previous"
    return "other"


def overview_json(view: SwarmOverview) -> dict:
    """Shape an overview for ``/api/swarm``.

    Args:
        view: one read of the swarm.
    Returns:
        dict: ``{"read_at", "nodes": [...], "services": [...], "tasks": [...]}``; each task has
        ``service`` (name), ``stack``, ``look`` (running/starting/failed/shutdown),
        ``generation`` (current/previous/other) and ``revision`` (the git revision of the spec it
        was made from, "" when unknown); each service has ``running`` (tasks running now that
        Swarm wants running).
    """
    services: Dict[str, ServiceInfo] = {s.id: s for s in view.services}
    running: Dict[str, int] = {}
    tasks = []
    for t in view.tasks:
        svc = services[t.service_id]
        look = task_look(t)
        generation = task_generation(t, svc)
        if look is TaskLook.RUNNING:
            running[svc.id] = running.get(svc.id, 0) + 1
        revision = {"current": svc.revision, "previous": svc.previous_revision}.get(generation, "")
        tasks.append({"id": t.id, "service_id": t.service_id, "service": svc.name,
                      "stack": svc.stack, "node_id": t.node_id, "slot": t.slot,
                      "state": t.state, "desired_state": t.desired_state, "look": look.value,
                      "generation": generation, "revision": revision, "image": t.image,
                      "message": t.message, "error": t.error, "updated_at": t.updated_at})
    return {
        "read_at": view.read_at,
        "nodes": [{"id": n.id, "hostname": n.hostname, "role": n.role, "state": n.state,
                   "availability": n.availability, "engine_version": n.engine_version,
                   "leader": n.leader, "address": n.address, "labels": dict(n.labels)}
                  for n in view.nodes],
        "services": [{"id": s.id, "name": s.name, "stack": s.stack, "mode": s.mode,
                      "replicas": s.replicas, "running": running.get(s.id, 0), "image": s.image,
                      "revision": s.revision, "previous_revision": s.previous_revision,
                      "update_state": s.update_state} for s in view.services],
        "tasks": tasks,
    }


class SwarmView:
    """``/api/swarm`` with a short cache.

    Args:
        read: returns one SwarmOverview (``controller.swarm.overview.read_overview`` bound to
            a client); may raise SwarmError.
        cache_s: seconds a read answers further requests.
        clock: monotonic seconds (tests).
    """

    def __init__(self, read: Callable[[], SwarmOverview], cache_s: float = CACHE_S,
                 clock: Callable[[], float] = time.monotonic):
        self._read = read
        self._cache_s = cache_s
        self._clock = clock
        self._lock = threading.Lock()
        self._doc: Optional[dict] = None
        self._at = 0.0
        self.reads = 0  # Engine reads made so far (each is three requests)

    def __call__(self) -> dict:
        """The ``/api/swarm`` document, read again when the last read is older than cache_s.

        Returns:
            dict: see ``overview_json``.
        Raises:
            SwarmError: the read failed (the next request tries again).
        """
        with self._lock:
            now = self._clock()
            if self._doc is None or now - self._at >= self._cache_s:
                self._doc = overview_json(self._read())
                self._at = self._clock()
                self.reads += 1
            return self._doc
