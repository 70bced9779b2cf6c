"""The swarm at one look for the web page: one node list, one service list, one task list.

``read_overview`` makes exactly three Engine requests, whatever the size of the swarm (the
caller, ``controller.http.swarm_view``, caches the answer for a second or two). The other
functions are pure translations of Engine API JSON (API 1.41) into ``model.overview``.
"""
from __future__ import annotations

import hashlib
import json
import time
from typing import Dict, Iterable, List, Optional, Tuple

from controller.model import labels as L
from controller.model.overview import (FAILED_STATES, TERMINAL_STATES, NodeInfo, ServiceInfo,
                                      SwarmOverview, TaskInfo)
from controller.model.timestamps import parse_time
from controller.swarm.calls import engine_call

# Task-template keys the Engine adds to a service spec but not to the tasks made from it.
_SERVICE_ONLY_KEYS = ("Runtime",)


def read_overview(api) -> SwarmOverview:
    """Read nodes, services and tasks in three requests.

    Args:
        api: a ``docker.APIClient`` (``SwarmClient.api``) talking to a manager.
    Returns:
        SwarmOverview: every node and service; tasks reduced by ``tasks_worth_showing``.
    Raises:
        SwarmError: a request failed (e.g. the Engine is not a manager).
    """
    with engine_call("list nodes"):
        nodes = api.nodes()
    with engine_call("list services"):
        services = api.services()
    with engine_call("list tasks"):
        tasks = api.tasks()
    return build_overview(nodes, services, tasks, read_at=time.time())


def build_overview(nodes: Iterable[dict], services: Iterable[dict], tasks: Iterable[dict],
                   read_at: float = 0.0) -> SwarmOverview:
    """Translate the three lists into a SwarmOverview (pure).

    Args:
        nodes / services / tasks: ``GET /nodes``, ``GET /services``, ``GET /tasks`` JSON.
        read_at: unix seconds of the read.
    Returns:
        SwarmOverview: nodes sorted managers first then by hostname, services by name, tasks
        of known services only, by service, slot and node.
    """
    node_list = sorted((parse_node_info(n) for n in nodes),
                       key=lambda n: (n.role != "manager", n.hostname, n.id))
    service_list = sorted((parse_service_info(s) for s in services), key=lambda s: s.name)
    known = {s.id for s in service_list}
    parsed = [parse_task_info(t) for t in tasks]
    shown = tasks_worth_showing([t for t in parsed if t.service_id in known])
    shown.sort(key=lambda t: (t.service_id, t.slot if t.slot is not None else 0, t.node_id, t.id))
    return SwarmOverview(tuple(node_list), tuple(service_list), tuple(shown), read_at)


def parse_node_info(js: dict) -> NodeInfo:
    """Translate one ``GET /nodes`` entry.

    Args:
        js: Node JSON (Spec.Role/Availability/Labels, Description.Hostname/Engine, Status,
            ManagerStatus.Leader).
    Returns:
        NodeInfo.
    """
    spec = js.get("Spec") or {}
    desc = js.get("Description") or {}
    status = js.get("Status") or {}
    labels = spec.get("Labels") or {}
    return NodeInfo(id=js.get("ID", ""), hostname=desc.get("Hostname", ""),
                    role=spec.get("Role", ""), state=status.get("State", ""),
                    availability=spec.get("Availability", ""),
                    engine_version=(desc.get("Engine") or {}).get("EngineVersion", ""),
                    leader=bool((js.get("ManagerStatus") or {}).get("Leader")),
                    address=status.get("Addr", ""),
                    labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())))


def template_key(task_spec: Optional[dict]) -> str:
    """A digest of a task template that is equal for a service's spec and the tasks made from it.

    Swarm copies ``Spec.TaskTemplate`` into each task's ``Spec`` when it creates the task, so a
    task whose spec differs from the service's current template is an old one (a rolling update
    has not reached it yet). The Engine fills ``Runtime`` on the service only: it is left out.
    Source: swarmkit orchestrator ``IsTaskDirty`` compares ``task.Spec`` with ``service.Spec.Task``.

    Args:
        task_spec: ``Spec.TaskTemplate`` of a service or ``Spec`` of a task (None: no spec).
    Returns:
        str: 16 hex digits; "" for no spec.
    """
    if not task_spec:
        return ""
    kept = {k: v for k, v in task_spec.items() if k not in _SERVICE_ONLY_KEYS}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def parse_service_info(js: dict) -> ServiceInfo:
    """Translate one ``GET /services`` entry.

    Args:
        js: Service JSON (Spec with Labels, Mode, TaskTemplate; PreviousSpec; UpdateStatus).
    Returns:
        ServiceInfo: ``replicas`` None for global services.
    """
    spec = js.get("Spec") or {}
    labels = spec.get("Labels") or {}
    previous = js.get("PreviousSpec") or {}
    mode_js = spec.get("Mode") or {}
    mode, replicas = "replicated", None
    if "Replicated" in mode_js:
        replicas = int((mode_js.get("Replicated") or {}).get("Replicas", 1) or 0)
    elif "ReplicatedJob" in mode_js:
        mode = "replicated-job"
        replicas = int((mode_js.get("ReplicatedJob") or {}).get("TotalCompletions", 1) or 0)
    elif "GlobalJob" in mode_js:
        mode = "global-job"
    elif "Global" in mode_js:
        mode = "global"
    template = spec.get("TaskTemplate") or {}
    return ServiceInfo(
        id=js.get("ID", ""), name=spec.get("Name", ""), stack=labels.get(L.NAMESPACE, ""),
        mode=mode, replicas=replicas,
        image=(template.get("ContainerSpec") or {}).get("Image", ""),
        revision=labels.get(L.REVISION, ""),
        previous_revision=(previous.get("Labels") or {}).get(L.REVISION, "") if previous else "",
        update_state=(js.get("UpdateStatus") or {}).get("State", ""),
        spec_key=template_key(template),
        previous_key=template_key(previous.get("TaskTemplate")) if previous else "")


def parse_task_info(js: dict) -> TaskInfo:
    """Translate one ``GET /tasks`` entry.

    Args:
        js: Task JSON.
    Returns:
        TaskInfo.
    """
    status = js.get("Status") or {}
    spec = js.get("Spec") or {}
    slot = js.get("Slot")
    return TaskInfo(id=js.get("ID", ""), service_id=js.get("ServiceID", ""),
                    node_id=js.get("NodeID", "") or "", slot=int(slot) if slot else None,
                    state=status.get("State", ""), desired_state=js.get("DesiredState", ""),
                    message=status.get("Message", ""), error=status.get("Err", ""),
                    image=(spec.get("ContainerSpec") or {}).get("Image", ""),
                    spec_key=template_key(spec), updated_at=parse_time(js.get("UpdatedAt")))


def tasks_worth_showing(tasks: List[TaskInfo]) -> List[TaskInfo]:
    """Drop the history ``docker service ps`` keeps, but keep what explains a failure.

    Kept: every task that is not finished (whatever its desired state: a task being shut down
    still runs), and, for each replica slot (global: each node) with no running task, its
    newest failed or rejected task.

    Args:
        tasks: every task of the swarm.
    Returns:
        list[TaskInfo]: the tasks to draw.
    """
    kept: List[TaskInfo] = []
    newest_failed: Dict[Tuple[str, object], TaskInfo] = {}
    running_slots = set()
    for t in tasks:
        where = (t.service_id, t.slot if t.slot is not None else t.node_id)
        if t.state not in TERMINAL_STATES:
            kept.append(t)
            if t.state == "running":
                running_slots.add(where)
        elif t.state in FAILED_STATES:
            best = newest_failed.get(where)
            if best is None or t.updated_at > best.updated_at:
                newest_failed[where] = t
    kept.extend(t for where, t in newest_failed.items() if where not in running_slots)
    return kept
