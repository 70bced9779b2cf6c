"""Node reads and writes of SwarmClient (``docker node ls``, ``docker node update``), and the
listing of every service the node planner needs."""
from __future__ import annotations

from typing import List, Mapping

from controller.model.live import LiveService
from controller.model.node import LiveNode
from controller.swarm import parse
from controller.swarm.calls import engine_call


class NodesMixin:
    """Node methods of SwarmClient (which provides ``self.api``, docker's APIClient)."""

    def live_nodes(self) -> List[LiveNode]:
        """Every node of the swarm (``GET /nodes``).

        Raises:
            SwarmError: the request failed (e.g. this Engine is not a manager).
        """
        with engine_call("list nodes"):
            return [parse.parse_live_node(n) for n in self.api.nodes()]

    def self_node_id(self) -> str:
        """The swarm node ID of the Engine this client talks to (``Info.Swarm.NodeID``).

        Raises:
            SwarmError: the Engine could not be reached.
        """
        with engine_call("info"):
            return str((self.api.info().get("Swarm") or {}).get("NodeID") or "")

    def update_node(self, node_id: str, version: int, spec: Mapping) -> None:
        """Send a whole NodeSpec (``POST /nodes/{id}/update?version=N``).

        Args:
            node_id: the node. version: the ``Version.Index`` the spec was read at.
            spec: NodeSpec (Name, Labels, Role, Availability).
        Raises:
            SpecConflictError: the node changed since it was read ("update out of sequence").
            SwarmError: any other failure (unknown node, last manager, ...).
        """
        with engine_call(f"update node {node_id}"):
            self.api.update_node(node_id, version, dict(spec))

    def all_services(self) -> List[LiveService]:
        """Every service of the swarm, Keelson's or not (``GET /services``).

        Raises:
            SwarmError: the request failed.
        """
        with engine_call("list services"):
            return [parse.parse_service(js) for js in self.api.services()]
