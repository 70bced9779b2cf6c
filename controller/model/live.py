"""Live state: what the swarm runs, read from objects carrying a stack's namespace label."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional


@dataclass
class LiveTask:
    """One task of a service (``docker service ps`` row).

    Attributes:
        id: task id. slot: replica slot (None for global). node_id: node it is assigned to.
        desired_state / state: e.g. ``running`` / ``starting``, ``pending``, ``failed``.
        message / error: the task status message and error text.
        image: the image of the task's container spec. created_at / updated_at: unix seconds.
        spec_version: the service Version index the task was created at (None if unknown).
        service_id: the service the task belongs to.
        exit_code: the container's exit code (``Status.ContainerStatus.ExitCode``), None while
            it has none.
    """

    id: str
    slot: Optional[int]
    node_id: str
    desired_state: str
    state: str
    message: str = ""
    error: str = ""
    image: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    spec_version: Optional[int] = None
    service_id: str = ""
    exit_code: Optional[int] = None


@dataclass
class LiveService:
    """A service as inspected.

    Attributes:
        id, name, version (Swarm Version.Index), labels (service labels), spec (ServiceSpec JSON),
        previous_spec (PreviousSpec or None), update_status (UpdateStatus or None).
    """

    id: str
    name: str
    version: int
    labels: Dict[str, str]
    spec: dict
    previous_spec: Optional[dict] = None
    update_status: Optional[dict] = None


@dataclass
class LiveObject:
    """A network, config or secret as listed.

    Attributes:
        id, name, labels, version (configs/secrets; 0 for networks).
        spec: for networks, the fields Keelson sets and Swarm cannot change in place:
            ``{"Driver", "Options", "IPAM", "Attachable", "Internal"}`` as listed ({} for
            configs and secrets).
    """

    id: str
    name: str
    labels: Dict[str, str] = field(default_factory=dict)
    version: int = 0
    spec: dict = field(default_factory=dict)


@dataclass
class StackRecord:
    """What Keelson remembers of a stack, read from its state record's labels.

    Attributes:
        applied_revision / applied_source_hash: last revision that converged.
        failed_revision / failed_source_hash: last revision that failed (not retried while the
            stack's content hash stays the same); failed_reason / failed_message: why.
        instance: the Keelson instance that owns the stack (``io.keelson.instance``).
        suspended: ``""`` (reconciled), ``suspend`` (no writes until resumed) or ``rollback``
            (held at a rolled-back revision until a commit changes the stack, issue 13.3).
        held_source: the stack folder's tree id at the branch head when the rollback hold began.
        previous_revision: the revision applied before ``applied_revision`` (rollback target).
        rollback_revision / rollback_source_hash: a stack rollback in progress (issue 10):
            the failing revision and its inputs hash; every service carrying that inputs hash
            in its ``io.keelson.source-hash`` label is to be returned. Written before the
            rollback's first write, cleared when it is done (a restart finishes it).
    """

    applied_revision: str = ""
    applied_source_hash: str = ""
    failed_revision: str = ""
    failed_source_hash: str = ""
    failed_reason: str = ""
    failed_message: str = ""
    instance: str = ""
    suspended: str = ""
    held_source: str = ""
    previous_revision: str = ""
    rollback_revision: str = ""
    rollback_source_hash: str = ""


@dataclass
class LiveStack:
    """Every object of one stack that the swarm holds (volumes: those this node holds)."""

    name: str
    services: Dict[str, LiveService] = field(default_factory=dict)
    networks: Dict[str, LiveObject] = field(default_factory=dict)
    configs: Dict[str, LiveObject] = field(default_factory=dict)
    secrets: Dict[str, LiveObject] = field(default_factory=dict)
    record: Optional[StackRecord] = None
    # volumes this node holds with the stack's namespace label (``spec``: Driver, Options);
    # volumes are node-local, so other nodes' copies are not seen (issue 8.3)
    volumes: Dict[str, LiveObject] = field(default_factory=dict)

    def owned_by(self, instance: str) -> bool:
        """True when Keelson ``instance`` owns this stack's record or any of its objects."""
        from controller.model.labels import owned_by
        if self.record is not None and self.record.instance == instance:
            return True
        objs: List = [*self.services.values(), *self.networks.values(), *self.configs.values(),
                      *self.secrets.values()]
        return any(owned_by(o.labels, instance) for o in objs)

    @property
    def managed(self) -> bool:
        """True when Keelson owns at least one object of this stack."""
        from controller.model.labels import MANAGED_BY
        objs: List = [*self.services.values(), *self.networks.values(), *self.configs.values(),
                      *self.secrets.values()]
        return self.record is not None or any(MANAGED_BY in o.labels for o in objs)
