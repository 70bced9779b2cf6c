"""The Docker Engine adapter: every Swarm read and write Keelson makes goes through SwarmClient.

Specs are sent exactly as given (ServiceSpec / NetworkCreate JSON) through docker-py's low-level
HTTP helpers: its high-level ``update`` rebuilds specs from keyword arguments and would drop
fields. Every docker or HTTP exception is wrapped in SwarmError (``raise ... from exc``);
"update out of sequence" becomes SpecConflictError (``calls.py``). Answers are controller.model
data or plain dicts, translated by the pure functions in controller.swarm.parse. The config,
secret and state-record methods live in ``blobs.py``, the node methods in ``nodes.py``.
"""
from __future__ import annotations

import logging
import time
from typing import Dict, Iterable, List, Optional

import docker
import docker.auth
import docker.errors
import requests.exceptions

from controller.errors import SpecConflictError, SwarmError
from controller.model import labels as L
from controller.model.live import LiveService, LiveStack, LiveTask
from controller.swarm import parse
from controller.swarm.blobs import BlobsMixin
from controller.swarm.nodes import NodesMixin
# re-exported: callers and tests import these from here
from controller.swarm.calls import engine_call, is_not_found, is_out_of_sequence  # noqa: F401

log = logging.getLogger(__name__)

UPDATE_ATTEMPTS = 3  # tries of a service update that meets "update out of sequence"
NETWORK_ALLOCATION_POLLS = 20
NETWORK_ALLOCATION_POLL_S = 0.25  # seconds between inspects of a not yet allocated network


def registry_header(auth_config: Optional[dict]) -> Dict[str, str]:
    """``{"X-Registry-Auth": <base64url JSON>}`` for an AuthConfig, or ``{}`` for None.

    Source: Engine API "Authentication" (base64url-encoded AuthConfig JSON), docker-py
    ``auth.encode_header``. The value carries the secret: never log it.
    """
    if not auth_config:
        return {}
    return {"X-Registry-Auth": docker.auth.encode_header(auth_config).decode("ascii")}


class SwarmClient(BlobsMixin, NodesMixin):
    """Reads and writes Swarm services, tasks, networks, configs, secrets and nodes.

    Args:
        docker_client: a ``docker.DockerClient``; None connects with ``docker.from_env``
            (DOCKER_HOST or the default socket) and a 120 s request timeout.
    Attributes:
        api: the low-level ``docker.APIClient`` (for other controller.swarm modules only).
    """

    def __init__(self, docker_client=None):
        self._owned = docker_client is None
        self._client = docker_client if docker_client is not None else docker.from_env(timeout=120)
        self.api = self._client.api

    def close(self) -> None:
        """Close the HTTP session (only when this object created the client)."""
        if self._owned:
            self._client.close()

    # ---- engine ----------------------------------------------------------------------------
    def ping(self) -> bool:
        """True when the Engine answers ``GET /_ping``; never raises."""
        try:
            return bool(self.api.ping())
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return False

    def is_manager(self) -> bool:
        """True when this Engine is a swarm manager (``Info.Swarm.ControlAvailable``).

        Raises:
            SwarmError: the Engine could not be reached.
        """
        with engine_call("info"):
            swarm = self.api.info().get("Swarm") or {}
        return bool(swarm.get("ControlAvailable")) and swarm.get("LocalNodeState") == "active"

    def nodes(self) -> List[dict]:
        """List the swarm's nodes.

        Returns:
            list[dict]: ``{"ID", "Hostname", "Role", "State", "Availability"}`` per node.
        Raises:
            SwarmError: the request failed (e.g. not a manager).
        """
        with engine_call("list nodes"):
            return [parse.parse_node(n) for n in self.api.nodes()]

    # ---- stacks ----------------------------------------------------------------------------
    def live_stacks(self, stacks: Optional[Iterable[str]] = None) -> Dict[str, LiveStack]:
        """Every object carrying ``com.docker.stack.namespace``, grouped by stack.

        Five list calls (services, networks, configs, secrets, this node's volumes) with a
        label filter, whatever the number of stacks. Objects not made by Keelson are included;
        ``LiveStack.managed`` tells them apart.

        Args:
            stacks: keep only these stack names; None returns all stacks.
        Returns:
            dict[str, LiveStack]: stack name -> objects; the state record is parsed into
            ``LiveStack.record`` and not listed among configs.
        Raises:
            SwarmError: a list request failed.
        """
        flt = {"label": [L.NAMESPACE]}
        with engine_call("list stack objects"):
            services = self.api.services(filters=flt)
            networks = self.api.networks(filters=flt)
            configs = self.api.configs(filters=flt)
            secrets = self.api.secrets(filters=flt)
            # issue 8.3: this node's volumes of every stack (volumes are node-local)
            volumes = (self.api.volumes(filters={"label": L.NAMESPACE}) or {}).get("Volumes") or []
        return parse.group_stacks(services, networks, configs, secrets, stacks, volumes)

    def network_names(self) -> Dict[str, str]:
        """Network ID -> name for every network this engine knows (one list call).

        The engine stores network IDs in ``TaskTemplate.Networks[].Target``; drift detection
        reads them back as names (issue 8.4).
        Raises:
            SwarmError: the request failed.
        """
        with engine_call("list networks"):
            return {n.get("Id", ""): n.get("Name", "") for n in self.api.networks()}

    # ---- services --------------------------------------------------------------------------
    def service(self, name_or_id: str) -> Optional[LiveService]:
        """Inspect a service by exact name or ID.

        Returns:
            LiveService, or None when the service does not exist.
        Raises:
            SwarmError: any other failure.
        """
        try:
            with engine_call(f"inspect service {name_or_id}"):
                js = self.api.inspect_service(name_or_id)
        except SwarmError as err:
            if is_not_found(err.__cause__):
                return None
            raise
        return parse.parse_service(js)

    def tasks(self, service_id: str) -> List[LiveTask]:
        """List every task the swarm keeps for a service (running and historic).

        Args:
            service_id: the service ID (an exact ID avoids the name filter's prefix match).
        Returns:
            list[LiveTask]: as listed by ``GET /tasks?filters={"service":[id]}``.
        Raises:
            SwarmError: the request failed.
        """
        with engine_call(f"list tasks of {service_id}"):
            found = self.api.tasks(filters={"service": service_id})
        return [parse.parse_task(t) for t in found if t.get("ServiceID") == service_id]

    def services_by_id(self, ids: Iterable[str]) -> Dict[str, LiveService]:
        """Inspect many services in one request (``GET /services?filters={"id": [...]}``).

        Args:
            ids: service IDs (the Engine's id filter matches prefixes; only exact IDs are kept).
        Returns:
            dict: service ID -> LiveService; services that no longer exist are absent.
        Raises:
            SwarmError: the request failed.
        """
        wanted = set(ids)
        if not wanted:
            return {}
        with engine_call("list services"):
            found = self.api.services(filters={"id": sorted(wanted)})
        out = {}
        for js in found:
            if js.get("ID") in wanted:
                svc = parse.parse_service(js)
                out[svc.id] = svc
        return out

    def tasks_by_service(self, ids: Iterable[str]) -> Dict[str, List[LiveTask]]:
        """Every task (running and historic) of many services, in one request.

        ``GET /tasks?filters={"service": [...]}``; when one of the services is gone the Engine
        answers 404 for the whole list, and each service is then listed on its own.

        Returns:
            dict: service ID -> list[LiveTask] (services without tasks are absent).
        Raises:
            SwarmError: the request failed.
        """
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        try:
            with engine_call("list tasks"):
                found = self.api.tasks(filters={"service": wanted})
        except SwarmError as err:
            if not is_not_found(err.__cause__):
                raise
            found = []
            for sid in wanted:
                try:
                    with engine_call(f"list tasks of {sid}"):
                        found.extend(self.api.tasks(filters={"service": sid}))
                except SwarmError as one:
                    if not is_not_found(one.__cause__):
                        raise
        out: Dict[str, List[LiveTask]] = {}
        keep = set(wanted)
        for t in found:
            if t.get("ServiceID") in keep:
                task = parse.parse_task(t)
                out.setdefault(t["ServiceID"], []).append(task)
        return out

    def running_tasks(self) -> List[LiveTask]:
        """Every task Swarm wants running, across all services, in one request.

        Returns:
            list[LiveTask] with ``service_id`` set (``GET /tasks?filters={"desired-state":
            ["running"]}``), so a pass can judge every stack's health at once.
        Raises:
            SwarmError: the request failed.
        """
        with engine_call("list running tasks"):
            found = self.api.tasks(filters={"desired-state": "running"})
        return [parse.parse_task(t) for t in found]

    def create_service(self, spec: dict, registry_auth: Optional[dict] = None) -> str:
        """Create a service from a ServiceSpec sent unchanged (``POST /services/create``).

        Args:
            spec: ServiceSpec JSON (durations ns, NanoCPUs, bytes).
            registry_auth: the AuthConfig of the image's registry
                (``RegistryAuth.for_image``), sent as ``X-Registry-Auth`` like
                ``docker stack deploy --with-registry-auth``: Swarm hands it to the nodes that
                run the tasks, so a worker that never logged in can pull. Never shown by
                ``inspect``. None sends no login.
        Returns:
            str: the new service's ID.
        Raises:
            SwarmError: the Engine refused the spec (e.g. name in use, bad field).
        """
        with engine_call(f"create service {spec.get('Name', '')}"):
            resp = self.api._post_json(self.api._url("/services/create"), data=spec,
                                       headers=registry_header(registry_auth))
            self.api._raise_for_status(resp)
            body = resp.json()
        for warning in body.get("Warnings") or []:
            log.warning("create service %s: %s", spec.get("Name", ""), warning)
        return body["ID"]

    def _post_update(self, service_id: str, version: int, spec: dict, rollback: bool,
                     registry_auth: Optional[dict] = None) -> None:
        params = {"version": version}
        if rollback:
            params["rollback"] = "previous"
        resp = self.api._post_json(self.api._url("/services/{0}/update", service_id),
                                   params=params, data=spec, headers=registry_header(registry_auth))
        self.api._raise_for_status(resp)
        for warning in (resp.json() or {}).get("Warnings") or []:
            log.warning("update service %s: %s", service_id, warning)

    def update_service(self, service_id: str, spec: dict,
                       registry_auth: Optional[dict] = None) -> None:
        """Replace a service's spec with ``spec`` (``POST /services/{id}/update``).

        The Version is read by a fresh inspect right before each attempt; a conflicting
        concurrent write ("update out of sequence") is retried up to 3 times in all.

        Args:
            service_id: service ID or name.
            spec: the complete new ServiceSpec JSON, sent unchanged.
            registry_auth: as in :meth:`create_service`; None keeps the login Swarm already
                holds for the service (moby ``cluster/services.go`` keeps ``PullOptions``).
        Raises:
            SpecConflictError: still out of sequence after 3 attempts.
            SwarmError: the service is gone or the Engine refused the spec.
        """
        self._update(service_id, spec, rollback=False, registry_auth=registry_auth)

    def rollback_service(self, service_id: str) -> None:
        """Roll a service back to its PreviousSpec, as ``docker service rollback`` does.

        Sends ``POST /services/{id}/update?version=V&rollback=previous`` with the current spec
        (docker/cli ``service rollback`` does the same; the Engine swaps in PreviousSpec).

        Raises:
            SpecConflictError: still out of sequence after 3 attempts.
            SwarmError: no previous spec, the service is gone, or another failure.
        """
        self._update(service_id, None, rollback=True)

    def _update(self, service_id: str, spec: Optional[dict], rollback: bool,
                registry_auth: Optional[dict] = None) -> None:
        for attempt in range(1, UPDATE_ATTEMPTS + 1):
            with engine_call(f"inspect service {service_id}"):
                current = self.api.inspect_service(service_id)
            version = current["Version"]["Index"]
            body = current["Spec"] if rollback else spec
            try:
                with engine_call(f"update service {service_id}"):
                    self._post_update(service_id, version, body, rollback, registry_auth)
                return
            except SpecConflictError:
                if attempt == UPDATE_ATTEMPTS:
                    raise
                log.info("update service %s: out of sequence, retry %d", service_id, attempt)

    def remove_service(self, service_id: str) -> None:
        """Remove a service; one that is already gone is not an error.

        Raises:
            SwarmError: any failure other than 404.
        """
        try:
            with engine_call(f"remove service {service_id}"):
                self.api.remove_service(service_id)
        except SwarmError as err:
            if not is_not_found(err.__cause__):
                raise

    # ---- networks --------------------------------------------------------------------------
    def network(self, name: str) -> Optional[dict]:
        """Inspect a network by exact name or ID.

        Returns:
            dict ``{"Id", "Name", "Scope", "Driver", "Labels"}``, or None when absent.
        Raises:
            SwarmError: any other failure.
        """
        for _ in range(NETWORK_ALLOCATION_POLLS):
            try:
                with engine_call(f"inspect network {name}"):
                    js = self.api.inspect_network(name)
            except SwarmError as err:
                if is_not_found(err.__cause__):
                    return None
                raise
            # dockerd 20.10 shows Driver "" for a swarm network the manager has not allocated
            # yet (the first ~0.3 s after create); wait for it rather than report a mismatch.
            if js.get("Driver") or js.get("Scope") != "swarm":
                break
            time.sleep(NETWORK_ALLOCATION_POLL_S)
        return parse.parse_network(js)

    def create_network(self, spec: dict) -> str:
        """Create a network from NetworkCreate JSON sent unchanged (``POST /networks/create``).

        Args:
            spec: Name, Driver, Options, IPAM, Attachable, Internal, Labels.
        Returns:
            str: the network ID.
        Raises:
            SwarmError: the Engine refused (e.g. overlapping subnet, name in use).
        """
        with engine_call(f"create network {spec.get('Name', '')}"):
            body = dict(spec, CheckDuplicate=True)
            resp = self.api._post_json(self.api._url("/networks/create"), data=body)
            self.api._raise_for_status(resp)
            return resp.json()["Id"]

    def remove_network(self, network_id: str) -> None:
        """Remove a network (404 is fine). Raises SwarmError, e.g. while tasks still use it."""
        try:
            with engine_call(f"remove network {network_id}"):
                self.api.remove_network(network_id)
        except SwarmError as err:
            if not is_not_found(err.__cause__):
                raise

