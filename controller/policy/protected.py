"""Keelson's own secrets, configs and networks: no stack of the repo may mount or join them.

"Own" is, at every policy level: what Keelson's own service uses when it runs as a swarm
service (``ControllerIdentity``), every name starting with ``keelson_`` (the names
``docker stack deploy -c stack.yml keelson`` gives Keelson's objects, and the secret names
its install guide uses), and the operator's ``KEELSON_PROTECTED_NAMES`` patterns.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import FrozenSet, Tuple

from controller.model.identity import ControllerIdentity

OWN_PREFIX = "keelson_"
KINDS = ("secret", "config", "network")


@dataclass(frozen=True)
class ProtectedNames:
    """Names no stack may use as a secret, config or network.

    Attributes:
        secrets / configs / networks: exact names Keelson's own service uses.
        patterns: fnmatch patterns (``KEELSON_PROTECTED_NAMES``) for any of the three kinds.
    """

    secrets: FrozenSet[str] = frozenset()
    configs: FrozenSet[str] = frozenset()
    networks: FrozenSet[str] = frozenset()
    patterns: Tuple[str, ...] = ()

    @staticmethod
    def of(identity: ControllerIdentity, patterns: Tuple[str, ...] = ()) -> "ProtectedNames":
        """The protected names for Keelson running as ``identity`` plus operator ``patterns``."""
        return ProtectedNames(identity.secrets, identity.configs, identity.networks,
                              tuple(patterns))

    def why(self, kind: str, name: str) -> str:
        """Why ``name`` is Keelson's own, or "" when a stack may use it.

        Args:
            kind: ``secret``, ``config`` or ``network``.
            name: the full Swarm object name.
        Returns:
            e.g. ``"is used by Keelson's own service"``; "" when not protected.
        """
        own = {"secret": self.secrets, "config": self.configs, "network": self.networks}[kind]
        if name in own:
            return "is used by Keelson's own service"
        if name.startswith(OWN_PREFIX):
            return f"starts with {OWN_PREFIX} (reserved for Keelson's own objects)"
        for pattern in self.patterns:
            if fnmatch.fnmatchcase(name, pattern):
                return f"matches KEELSON_PROTECTED_NAMES pattern {pattern!r}"
        return ""
