"""Pure rollout health: one look at a service and its tasks -> where its rollout stands.

No I/O and no docker/git/watchdog/prometheus_client import: the watcher (health/rollout.py)
feeds in what SwarmClient read, and the rules are unit-tested on Engine JSON recorded from a
real swarm (tests/unit/fixtures/health/).

Sources for the rules:
- ``UpdateStatus.State`` is one of updating, paused, completed, rollback_started,
  rollback_paused, rollback_completed (Engine API v1.41, ``Service.UpdateStatus``). Swarm sets
  it only when an update replaces tasks; a created service, or an update that changes no task
  (labels only), has none.
- Task states (Engine API v1.41, ``TaskState``): new, allocated, pending, assigned, accepted,
  preparing, ready, starting, running, complete, shutdown, failed, rejected, remove, orphaned.
  A task whose container has a healthcheck reaches ``running`` only once healthy (docker docs,
  "Dockerfile reference: HEALTHCHECK" and swarm's health-aware task states).
- Services meant to finish (issue 8.1): ``Mode.ReplicatedJob`` / ``Mode.GlobalJob`` (Engine
  API v1.41 ``ServiceSpec.Mode``; their tasks end with DesiredState ``complete``) and services
  whose ``RestartPolicy.Condition`` is ``none`` or ``on-failure`` (a task that exits 0 is not
  restarted: state ``complete``, DesiredState ``shutdown``). Observed on Engine 20.10: a task
  exiting non-zero ends ``failed`` with ``Err`` "task: non-zero exit (N)" and
  ``ContainerStatus.ExitCode`` N; Swarm restarts a failed job task without limit.
- Observed on Engine 20.10: a task Swarm cannot place (start-first with a host-mode port on one
  node, field case c10) stays ``pending`` with ``Err`` "no suitable node (...)", forever.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Optional

from controller.model.live import LiveService, LiveTask
from controller.model.status import RolloutPhase
from controller.model.timestamps import parse_time


# Task states before the container starts: the scheduler has not placed it, or the node has
# not accepted it yet. A task stuck here past the pending timeout cannot run.
UNSTARTED_STATES = frozenset({"new", "allocated", "pending", "assigned", "accepted"})
# Terminal task states that count as a failure of the task.
FAILED_STATES = frozenset({"failed", "rejected"})
# Restart conditions under which a task that exits 0 is not restarted (docker docs:
# ``deploy.restart_policy.condition``).
FINITE_CONDITIONS = frozenset({"none", "on-failure"})
JOB_MODES = ("ReplicatedJob", "GlobalJob")
# Failed tasks (created since the rollout started) after which a rollout Swarm does not track
# (a new service, or an update without UpdateStatus) is failed: Swarm restarts them forever.
FAILING_TASKS_LIMIT = 3
# An UpdateStatus that started this many seconds before our rollout belongs to an older update
# (clock skew allowance between Keelson and the manager that wrote StartedAt).
STALE_UPDATE_SLACK_S = 2.0
# Seconds Swarm gets to show a rolling update as started after a task-template change. Swarm
# sets UpdateStatus within milliseconds; an update that dirties no task (e.g. a placement change
# the running tasks still satisfy) never sets one, and is then judged from its tasks.
UPDATE_START_GRACE_S = 10.0


@dataclass(frozen=True)
class Assessment:
    """Where one service's rollout stands.

    Attributes:
        phase: ``progressing``, ``completed``, ``rolled_back``, ``paused`` or ``failed``.
        reason: CamelCase reason: Starting, Updating, RollingBack, Succeeded, RolledBack,
            UpdatePaused, RollbackPaused, TaskPending, TasksFailing.
        message: human detail (UpdateStatus.Message and/or the task's status error).
    """

    phase: str
    reason: str
    message: str = ""

    @property
    def settled(self) -> bool:
        """True for every phase but ``progressing``."""
        return self.phase != RolloutPhase.PROGRESSING


def assess(service: LiveService, tasks: List[LiveTask], *, started_at: float, now: float,
           pending_timeout_s: float, created: bool,
           prior_update_started: str = "", pending_since: Optional[float] = None) -> Assessment:
    """Judge one service's rollout from its inspect and its task list.

    Args:
        service: the service as inspected now (spec, UpdateStatus).
        tasks: every task Swarm keeps for it (current and historic), any order.
        started_at: unix seconds when the rollout began (just before create/update).
        now: unix seconds of this look (the same clock as ``started_at``).
        pending_timeout_s: seconds a task of the running spec may stay unstarted (new, pending,
            assigned, accepted) before the rollout is failed.
        created: True when the rollout created the service (nothing to roll back to).
        prior_update_started: ``UpdateStatus.StartedAt`` as it was before our update ("" if
            none): a status still carrying it is the previous update's, not ours. Right after
            an update call Swarm still shows the old status for a moment.
        pending_since: unix seconds from which an unstarted task's wait counts (default
            ``started_at``); the watcher moves it to when the engine answered again after an
            outage, so a restarted dockerd's slow restart is not the content's failure.
    Returns:
        Assessment, in this order of precedence: UpdateStatus rollback_completed ->
        rolled_back; paused / rollback_paused -> paused; rollback_started -> progressing
        (RollingBack); a task unstarted past ``pending_timeout_s`` -> failed (TaskPending, with
        the task's error); UpdateStatus completed -> completed; replicas 0 -> completed;
        updating -> progressing (Updating). Without (a current) UpdateStatus, when the update
        changed the task template (so Swarm will roll tasks and set UpdateStatus) and less than
        UPDATE_START_GRACE_S passed -> progressing (Updating: waiting for Swarm to start).
        Otherwise: at least
        FAILING_TASKS_LIMIT failed tasks since ``started_at`` -> failed (TasksFailing);
        every desired replica running the current image and no current task in another state
        -> completed; otherwise progressing (Starting). Desired replicas are
        ``Mode.Replicated.Replicas``, or for global mode the tasks whose desired state is running.
        A service meant to finish (``is_finite``) is judged by ``_assess_finite`` once no
        rollback, pause or stuck task decided it.
    Raises:
        Nothing: missing fields read as empty.
    """
    status = _current_update_status(service, started_at, created, prior_update_started)
    state = status.get("State", "")
    us_message = status.get("Message", "")
    detail = _last_failure(tasks, started_at)

    if state == "rollback_completed":
        return Assessment(RolloutPhase.ROLLED_BACK, "RolledBack", _join(us_message, detail))
    if state == "paused":
        return Assessment(RolloutPhase.PAUSED, "UpdatePaused", _join(us_message, detail))
    if state == "rollback_paused":
        return Assessment(RolloutPhase.PAUSED, "RollbackPaused", _join(us_message, detail))
    if state == "rollback_started":
        return Assessment(RolloutPhase.PROGRESSING, "RollingBack", _join(us_message, detail))

    since = started_at if pending_since is None else max(started_at, pending_since)
    stuck = _stuck_task(tasks, since, now, pending_timeout_s)
    if stuck is None and is_finite(service.spec):
        return _assess_finite(service, tasks, started_at, now, created)
    if stuck is not None:
        waited = now - max(stuck.created_at, since)
        return Assessment(RolloutPhase.FAILED, "TaskPending",
                          f"task {stuck.id[:12]} {stuck.state} for {waited:.0f}s: "
                          f"{stuck.error or stuck.message}")
    if state == "completed":
        return Assessment(RolloutPhase.COMPLETED, "Succeeded", us_message)
    if _replicas(service) == 0:
        return Assessment(RolloutPhase.COMPLETED, "Succeeded", "0 replicas")
    if state == "updating":
        return Assessment(RolloutPhase.PROGRESSING, "Updating", us_message)
    if (not state and _expects_rolling_update(service, created)
            and now - started_at < UPDATE_START_GRACE_S):
        return Assessment(RolloutPhase.PROGRESSING, "Updating", "waiting for Swarm to start the rolling update")

    failures = [t for t in tasks if t.state in FAILED_STATES and t.created_at >= started_at]
    if len(failures) >= FAILING_TASKS_LIMIT:
        return Assessment(RolloutPhase.FAILED, "TasksFailing",
                          f"{len(failures)} tasks failed since the rollout began: {detail}")
    running, desired = _running_replicas(service, tasks)
    if running >= desired:
        return Assessment(RolloutPhase.COMPLETED, "Succeeded", f"{running}/{desired} replicas running")
    return Assessment(RolloutPhase.PROGRESSING, "Starting", f"{running}/{desired} replicas running")


def is_finite(spec: dict) -> bool:
    """True for a service whose tasks may finish by design: a job mode, or a restart policy
    condition ``none``/``on-failure``.

    Args:
        spec: a ServiceSpec (desired or live).
    """
    mode = spec.get("Mode") or {}
    if any(k in mode for k in JOB_MODES):
        return True
    cond = ((spec.get("TaskTemplate") or {}).get("RestartPolicy") or {}).get("Condition", "")
    return cond in FINITE_CONDITIONS


def _assess_finite(service: LiveService, tasks: List[LiveTask], started_at: float, now: float,
                   created: bool) -> Assessment:
    """Judge a service meant to finish from the tasks created since its rollout began.

    Returns:
        failed (reason TaskFailed, message ``task <id> exit code N: <error>``) when any such
        task failed or was rejected (Swarm may still restart it; the exit is reported now);
        completed (Succeeded, ``n/m tasks complete``) when every slot (node for global modes)
        has a task that completed, or, for replicated/global services, one that has run for
        the update monitor period (an ``on-failure`` service may run for good); progressing
        (Running) otherwise. A job whose completions are 0 is completed at once. An update
        of a replicated or global service that replaced no task (replicas, labels) is judged
        from the newest task of each slot once ``UPDATE_START_GRACE_S`` passed without a new
        one; global modes wait that long for their first tasks.
    """
    # no clock slack here: a task of the previous run, finished just before, must not count
    mine = [t for t in tasks if t.created_at >= started_at]
    mode = service.spec.get("Mode") or {}
    job = any(k in mode for k in JOB_MODES)
    if (not mine and not job and not created
            and (not _expects_rolling_update(service, created)
                 or now - started_at >= UPDATE_START_GRACE_S)):
        latest: dict = {}  # the newest task of each slot (node for global)
        for t in sorted(tasks, key=lambda t: t.created_at):
            latest["Replicated" in mode and t.slot or t.node_id] = t
        mine = list(latest.values())
    failed = [t for t in mine if t.state in FAILED_STATES]
    if failed:
        last = max(failed, key=lambda t: t.updated_at or t.created_at)
        code = f"exit code {last.exit_code}" if last.exit_code is not None else last.state
        return Assessment(RolloutPhase.FAILED, "TaskFailed", f"task {last.id[:12]} {code}: "
                                                f"{last.error or last.message}")
    # a running task counts once it ran for the update monitor period, as Swarm's updater
    # judges it (UpdateConfig.Monitor, nanoseconds; docker's default 5 s)
    monitor_s = ((service.spec.get("UpdateConfig") or {}).get("Monitor") or 5e9) / 1e9

    def ok(t: LiveTask) -> bool:
        """A task done by design: complete, or running past the monitor period."""
        return t.state == "complete" or (
            not job and t.state == "running" and now - (t.updated_at or now) >= monitor_s)
    if "ReplicatedJob" in mode:
        rj = mode.get("ReplicatedJob") or {}
        # swarmkit: TotalCompletions defaults to MaxConcurrent, which defaults to 1
        total, conc = rj.get("TotalCompletions"), rj.get("MaxConcurrent")
        want = int(total if total is not None else conc if conc is not None else 1)
        done = sum(1 for t in mine if t.state == "complete")
    elif "Replicated" in mode:
        want = int((mode.get("Replicated") or {}).get("Replicas") or 0)
        done = len({t.slot for t in mine if ok(t)})
    else:  # global and global-job: one task per node that got one
        if not mine and now - started_at < UPDATE_START_GRACE_S:
            return Assessment(RolloutPhase.PROGRESSING, "Running", "waiting for Swarm to start tasks")
        want = len({t.node_id for t in mine})
        done = len({t.node_id for t in mine if ok(t)})
    if done >= want:
        return Assessment(RolloutPhase.COMPLETED, "Succeeded", f"{done}/{want} tasks complete or running")
    return Assessment(RolloutPhase.PROGRESSING, "Running", f"{done}/{want} tasks complete or running")


def _current_update_status(service: LiveService, started_at: float, created: bool,
                           prior_started: str = "") -> dict:
    """UpdateStatus, or {} when absent or left over from an earlier update (the one seen
    before ours, or one that began before ``started_at``)."""
    status = service.update_status or {}
    if not status or created:
        return {}
    if prior_started and status.get("StartedAt") == prior_started:
        return {}
    began = parse_time(status.get("StartedAt"))
    if began and began < started_at - STALE_UPDATE_SLACK_S:
        return {}
    return status


def _expects_rolling_update(service: LiveService, created: bool) -> bool:
    """True when our update changed the task template, so Swarm replaces tasks and reports it
    in UpdateStatus (Swarm rolls tasks only for TaskTemplate changes; replicas, labels or
    update settings alone change no task: swarmkit orchestrator, ``IsTaskDirty``)."""
    if created or service.previous_spec is None:
        return False
    return (service.spec.get("TaskTemplate") or {}) != (service.previous_spec.get("TaskTemplate") or {})


def _replicas(service: LiveService) -> Optional[int]:
    """Mode.Replicated.Replicas, or None for global (and other) modes."""
    replicated = (service.spec.get("Mode") or {}).get("Replicated")
    if replicated is None:
        return None
    return int(replicated.get("Replicas") or 0)


def _spec_image(service: LiveService) -> str:
    """TaskTemplate.ContainerSpec.Image of the current spec ("" if absent)."""
    template = service.spec.get("TaskTemplate") or {}
    return (template.get("ContainerSpec") or {}).get("Image", "")


def _running_replicas(service: LiveService, tasks: Iterable[LiveTask]) -> tuple:
    """(replicas running the current image, replicas desired).

    A slot (node for global mode) counts only when every task Swarm wants running there is
    ``running`` with the spec's image: a start-first replacement still starting holds it back.
    """
    image = _spec_image(service)
    live = [t for t in tasks if t.desired_state == "running"]
    replicas = _replicas(service)
    desired = replicas if replicas is not None else len(live)
    by_key: dict = {}
    for t in live:
        key = t.slot if replicas is not None else t.node_id
        ok = t.state == "running" and (not image or not t.image or t.image == image)
        by_key[key] = by_key.get(key, True) and ok
    return sum(by_key.values()), desired


def _stuck_task(tasks: Iterable[LiveTask], started_at: float, now: float,
                pending_timeout_s: float) -> Optional[LiveTask]:
    """The longest-waiting wanted task still unstarted after ``pending_timeout_s``, or None."""
    stuck = [t for t in tasks
             if t.desired_state in ("running", "ready", "complete") and t.state in UNSTARTED_STATES
             and now - max(t.created_at, started_at) > pending_timeout_s]
    return min(stuck, key=lambda t: t.created_at) if stuck else None


def _last_failure(tasks: Iterable[LiveTask], started_at: float) -> str:
    """Error (or message) of the newest task that failed since ``started_at``, or ""."""
    failed = [t for t in tasks if t.state in FAILED_STATES and t.created_at >= started_at]
    if not failed:
        return ""
    last = max(failed, key=lambda t: t.updated_at or t.created_at)
    return last.error or last.message


def _join(*parts: str) -> str:
    """Non-empty parts joined with ": "."""
    return ": ".join(p for p in parts if p)


def stack_health(services: Iterable[LiveService], running: Iterable[LiveTask]) -> Assessment:
    """Health of a stack between rollouts, from one listing of the tasks Swarm wants running.

    Args:
        services: the stack's services as inspected.
        running: tasks whose desired state is running (any service; matched by
            ``service_id``), plus, for services meant to finish (``is_finite``), every task
            Swarm keeps for them (any desired state).
    Returns:
        Assessment with phase ``completed`` (reason Healthy) when every replicated service has
        as many ``running`` tasks as replicas and no wanted task of a global service is down;
        else phase ``failed`` (reason Degraded) naming each short service as ``name 1/3
        running``. A service meant to finish is short only when the newest task of a slot
        (node for global modes) failed: ``name 0/1 running (task <id> exit code N: <error>)``;
        a task that completed is never Degraded, and jobs are judged by their failures only.
    """
    by_service: dict = {}
    for t in running:
        by_service.setdefault(t.service_id, {})[t.id] = t
    short = []
    for svc in sorted(services, key=lambda s: s.name):
        mode = svc.spec.get("Mode") or {}
        all_tasks = list(by_service.get(svc.id, {}).values())
        if is_finite(svc.spec):
            latest = _newest_per_slot(mode, all_tasks)
            failed = sorted((t for t in latest if t.state in FAILED_STATES),
                            key=lambda t: t.updated_at or t.created_at, reverse=True)
            if failed:
                up = sum(1 for t in latest if t.state in ("running", "complete"))
                t = failed[0]
                code = f"exit code {t.exit_code}" if t.exit_code is not None else t.state
                short.append(f"{svc.name} {up}/{len(latest)} running (task {t.id[:12]} {code}: "
                             f"{t.error or t.message})")
            continue
        tasks = [t for t in all_tasks if t.desired_state == "running"]
        up = sum(1 for t in tasks if t.state == "running")
        if "Replicated" in mode:
            want = int((mode.get("Replicated") or {}).get("Replicas") or 0)
        elif "Global" in mode:
            want = len(tasks)
        else:
            continue
        if up < want:
            short.append(f"{svc.name} {up}/{want} running")
    if short:
        return Assessment(RolloutPhase.FAILED, "Degraded", "; ".join(short))
    return Assessment(RolloutPhase.COMPLETED, "Healthy", "")


def _newest_per_slot(mode: dict, tasks: List[LiveTask]) -> List[LiveTask]:
    """The newest task of each slot (node for global modes)."""
    latest: dict = {}
    for t in sorted(tasks, key=lambda t: t.created_at):
        latest[t.slot if ("Replicated" in mode or "ReplicatedJob" in mode) and t.slot
               else t.node_id] = t
    return list(latest.values())
