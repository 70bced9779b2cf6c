"""Desired state: the Swarm objects a stack asks for, in the Engine API's shapes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional


@dataclass
class DesiredService:
    """A service as the Engine API's ``ServiceSpec`` (durations ns, CPUs NanoCPUs, bytes).

    Attributes:
        name: full service name ``<stack>_<service>``.
        compose_name: the service's key in the stack file.
        spec: ServiceSpec JSON (Name, Labels, TaskTemplate, Mode, UpdateConfig, RollbackConfig,
            EndpointSpec). Config/secret references carry ``ConfigName``/``SecretName``; their
            IDs are filled at apply time. Networks are referenced by name in ``Target``.
        spec_hash: sha256 of the canonical spec without ``io.keelson.*`` labels (computed once,
            by the conversion; also in the spec's ``io.keelson.spec-hash`` label).
    """

    name: str
    compose_name: str
    spec: dict
    spec_hash: str = ""


@dataclass
class DesiredNetwork:
    """A network the stack creates (``external`` ones are only checked to exist).

    Attributes:
        name: full network name (``<stack>_<key>`` or its ``name:``).
        spec: NetworkCreate JSON: Name, Driver, Options, IPAM, Attachable, Internal, Labels.
        external: True when the stack only uses an existing network.
    """

    name: str
    spec: dict
    external: bool = False


@dataclass
class DesiredConfig:
    """A config or secret object. Swarm forbids changing ``data``, so the name is versioned.

    Attributes:
        name: full versioned name ``<stack>_<key>-<hash10>`` (or external name).
        logical_name: full unversioned name ``<stack>_<key>`` (or its ``name:``).
        data: the content, bytes.
        labels: labels incl. owner labels and ``io.keelson.config-name``.
        template_driver: ``golang`` or None.
        external: True when the stack only uses an existing object.
    """

    name: str
    logical_name: str
    data: bytes = b""
    labels: Dict[str, str] = field(default_factory=dict)
    template_driver: Optional[str] = None
    external: bool = False


@dataclass
class DesiredStack:
    """Everything one stack asks for.

    Attributes:
        name: the stack name.
        services: full name -> DesiredService.
        networks: full name -> DesiredNetwork (external ones included, flagged).
        configs: versioned name -> DesiredConfig.
        secrets: versioned name -> DesiredConfig.
        volumes: full name -> volume options (created by the engine on each node at task start).
        warnings: warnings from conversion.
    """

    name: str
    services: Dict[str, DesiredService] = field(default_factory=dict)
    networks: Dict[str, DesiredNetwork] = field(default_factory=dict)
    configs: Dict[str, DesiredConfig] = field(default_factory=dict)
    secrets: Dict[str, DesiredConfig] = field(default_factory=dict)
    volumes: Dict[str, dict] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)
