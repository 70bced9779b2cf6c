"""The writer lease's Swarm object: a label-only config, read and written compare-and-swap.

Create is atomic because Swarm refuses a second config of the same name (409); updates carry the
version index read, and swarmkit refuses a stale one ("update out of sequence"). Engine API:
``POST /configs/create``, ``POST /configs/{id}/update?version=N`` (only Labels may change).
"""
from __future__ import annotations

import base64
from typing import Any, Optional

from controller.errors import SpecConflictError, SwarmError
from controller.model import labels as L
from controller.model.lease import LeaseRecord
from controller.swarm.calls import engine_call, is_not_found

LEASE_DATA = b"keelson writer lease\n"


class LeaseStore:
    """Reads and writes one instance's lease config.

    Args:
        api: a low-level ``docker.APIClient`` (``SwarmClient.api``).
        name: the config's name (``model.lease.lease_name``). instance: the owner label.
    """

    def __init__(self, api: Any, name: str, instance: str):
        self.api = api
        self.name = name
        self.instance = instance

    def read(self) -> Optional[LeaseRecord]:
        """The lease as it is now, or None when there is none.

        Raises:
            SwarmError: the Engine cannot be asked.
        """
        with engine_call(f"list lease {self.name}"):
            found = self.api.configs(filters={"name": self.name})
        exact = [c for c in found if (c.get("Spec") or {}).get("Name") == self.name]
        if not exact:
            return None
        obj = exact[0]
        labels = (obj.get("Spec") or {}).get("Labels") or {}
        try:
            renewed = float(labels.get(L.LEASE_RENEWED_AT, "0"))
        except ValueError:
            renewed = 0.0
        return LeaseRecord(holder=labels.get(L.LEASE_HOLDER, ""),
                           version=int((obj.get("Version") or {}).get("Index", 0)),
                           renewed_at=renewed, object_id=obj["ID"])

    def _labels(self, holder: str, now: float) -> dict:
        return {L.MANAGED_BY: L.MANAGED_BY_VALUE, L.INSTANCE: self.instance, L.LEASE: "true",
                L.LEASE_HOLDER: holder, L.LEASE_RENEWED_AT: f"{now:.3f}"}

    def create(self, holder: str, now: float) -> bool:
        """Create the lease held by ``holder``.

        Returns:
            bool: False when another contender created it first (409 name conflict).
        Raises:
            SwarmError: any other failure.
        """
        body = {"Name": self.name, "Labels": self._labels(holder, now),
                "Data": base64.b64encode(LEASE_DATA).decode("ascii")}
        try:
            with engine_call(f"create lease {self.name}"):
                resp = self.api._post_json(self.api._url("/configs/create"), data=body)
                self.api._raise_for_status(resp)
        except SwarmError as err:
            if getattr(err.__cause__, "status_code", None) == 409:
                return False
            raise
        return True

    def write(self, record: LeaseRecord, holder: str, now: float) -> bool:
        """Set the holder to ``holder`` if the lease is still at ``record.version``.

        Returns:
            bool: False when someone wrote the lease since ``record`` was read (or removed it).
        Raises:
            SwarmError: any other failure.
        """
        spec = {"Name": self.name, "Labels": self._labels(holder, now),
                "Data": base64.b64encode(LEASE_DATA).decode("ascii")}
        try:
            with engine_call(f"update lease {self.name}"):
                resp = self.api._post_json(
                    self.api._url("/configs/{0}/update", record.object_id),
                    params={"version": record.version}, data=spec)
                self.api._raise_for_status(resp)
        except SpecConflictError:
            return False
        except SwarmError as err:
            if is_not_found(err.__cause__):
                return False
            raise
        return True

    def remove(self, record: LeaseRecord) -> None:
        """Remove the lease (a clean stop hands it over at once). A lease already gone is fine.

        Raises:
            SwarmError: the remove failed otherwise.
        """
        try:
            with engine_call(f"remove lease {self.name}"):
                self.api.remove_config(record.object_id)
        except SwarmError as err:
            if not is_not_found(err.__cause__):
                raise
