"""Who Keelson itself is on the swarm: the stack and service it runs as, and what they use."""
from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet


@dataclass(frozen=True)
class ControllerIdentity:
    """Keelson's own service, as detected at start (all empty when it is not a swarm service).

    Attributes:
        stack: the stack Keelson runs in (its service's ``com.docker.stack.namespace``), "" when
            unknown. Keelson never changes nor prunes this stack.
        service: Keelson's own service name ("" when unknown).
        secrets / configs / networks: names of the secrets, configs and networks that service
            uses; no stack of the repo may mount or join them.
    """

    stack: str = ""
    service: str = ""
    secrets: FrozenSet[str] = frozenset()
    configs: FrozenSet[str] = frozenset()
    networks: FrozenSet[str] = frozenset()
