"""The swarm at one look (issue 13, the web page's swarm view): nodes, services and tasks.

Pure data, filled by ``controller.swarm.overview`` from one node list, one service list and one
task list, and shaped into ``/api/swarm`` JSON by ``controller.http.swarm_view``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from controller.model.status import Word

# Task states, as listed in https://docs.docker.com/engine/swarm/how-swarm-mode-works/swarm-task-states/
# After any of these a task never runs again:
TERMINAL_STATES = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})
FAILED_STATES = frozenset({"failed", "rejected", "orphaned"})
# On the way to running:
STARTING_STATES = frozenset({"new", "allocated", "pending", "assigned", "accepted", "ready",
                             "preparing", "starting"})


class TaskLook(Word):
    """How the page colours a task box (its class name and ``data-look``).

    RUNNING: state ``running`` and Swarm wants it running. STARTING: on its way (``new`` ..
    ``starting``). FAILED: ``failed``, ``rejected`` or ``orphaned``. SHUTDOWN: stopped or being
    stopped (``shutdown``, ``complete``, ``remove``, or any task whose desired state is no
    longer ``running``).
    Source: task states in https://docs.docker.com/engine/swarm/how-swarm-mode-works/swarm-task-states/
    """

    RUNNING = "running"
    STARTING = "starting"
    FAILED = "failed"
    SHUTDOWN = "shutdown"


@dataclass(frozen=True)
class NodeInfo:
    """One swarm node (``docker node ls`` row, plus its labels).

    Attributes:
        id: node ID. hostname: ``Description.Hostname``. role: ``manager`` / ``worker``.
        state: ``Status.State`` (``ready``, ``down``, ``unknown``, ``disconnected``).
        availability: ``Spec.Availability`` (``active``, ``pause``, ``drain``).
        engine_version: ``Description.Engine.EngineVersion``. leader: the Raft leader.
        address: ``Status.Addr``. labels: ``Spec.Labels`` as sorted (key, value) pairs.
    """

    id: str
    hostname: str
    role: str
    state: str
    availability: str
    engine_version: str = ""
    leader: bool = False
    address: str = ""
    labels: Tuple[Tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ServiceInfo:
    """One service as the page needs it.

    Attributes:
        id, name: the service. stack: ``com.docker.stack.namespace`` ("" outside stacks).
        mode: ``replicated`` / ``global`` (and their ``-job`` forms). replicas: desired replicas
            (None for global services). image: the current spec's image.
        revision: ``io.keelson.revision`` of the current spec. previous_revision: of
            ``PreviousSpec`` ("" when none). update_state: ``UpdateStatus.State`` ("" when none),
            e.g. ``updating``, ``rollback_started``, ``completed``.
        spec_key / previous_key: comparable digests of the current / previous task template
            (``controller.swarm.overview.template_key``) that tell new tasks from old ones.
    """

    id: str
    name: str
    stack: str = ""
    mode: str = "replicated"
    replicas: Optional[int] = None
    image: str = ""
    revision: str = ""
    previous_revision: str = ""
    update_state: str = ""
    spec_key: str = ""
    previous_key: str = ""


@dataclass(frozen=True)
class TaskInfo:
    """One task as the page shows it.

    Attributes:
        id: task ID. service_id: its service. node_id: the node it is assigned to ("" while
        unassigned). slot: replica slot (None for global). state / desired_state: Swarm's.
        message / error: ``Status.Message`` / ``Status.Err``. image: the task's image.
        spec_key: ``template_key`` of the task's own spec (compare with its service's).
        updated_at: unix seconds of ``UpdatedAt``.
    """

    id: str
    service_id: str
    node_id: str
    slot: Optional[int]
    state: str
    desired_state: str
    message: str = ""
    error: str = ""
    image: str = ""
    spec_key: str = ""
    updated_at: float = 0.0


@dataclass(frozen=True)
class SwarmOverview:
    """Everything the swarm view shows, read at one moment.

    Attributes:
        nodes, services, tasks: as listed (tasks already reduced to the ones worth showing).
        read_at: unix seconds of the read.
    """

    nodes: Tuple[NodeInfo, ...] = ()
    services: Tuple[ServiceInfo, ...] = ()
    tasks: Tuple[TaskInfo, ...] = ()
    read_at: float = 0.0
