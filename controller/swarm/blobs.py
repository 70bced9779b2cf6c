"""Swarm configs and secrets ("blobs"), and the per-stack state record kept in a config.

SwarmClient gets these methods from :class:`BlobsMixin`; they use only ``self.api``. Bodies are
sent through docker-py's low-level HTTP helpers as in ``client.py``.
"""
from __future__ import annotations

import base64
from typing import Any, Collection, List, Optional

from controller.errors import OwnershipError, SwarmError
from controller.model import labels as L
from controller.model.live import LiveObject, StackRecord
from controller.swarm import parse
from controller.swarm.calls import engine_call, is_not_found

RECORD_DATA = b"keelson state record\n"


class BlobsMixin:
    """Config, secret and state-record methods of SwarmClient.

    Attributes:
        api: the low-level ``docker.APIClient``, set by SwarmClient.
    """

    api: Any

    # ---- configs and secrets ---------------------------------------------------------------
    def _create_blob(self, kind: str, name: str, data: bytes, labels: dict,
                     template_driver: Optional[str]) -> str:
        body = {"Name": name, "Labels": dict(labels or {}),
                "Data": base64.b64encode(data).decode("ascii")}
        if template_driver:
            body["Templating"] = {"Name": template_driver}
        with engine_call(f"create {kind[:-1]} {name}"):
            resp = self.api._post_json(self.api._url(f"/{kind}/create"), data=body)
            self.api._raise_for_status(resp)
            return resp.json()["ID"]

    def _find_blob(self, kind: str, name: str) -> Optional[dict]:
        lister = self.api.configs if kind == "configs" else self.api.secrets
        with engine_call(f"list {kind} named {name}"):
            found = lister(filters={"name": name})
        # the name filter matches prefixes too: keep the exact name only
        exact = [o for o in found if (o.get("Spec") or {}).get("Name") == name]
        return exact[0] if exact else None

    def _remove_blob(self, kind: str, obj_id: str) -> None:
        remover = self.api.remove_config if kind == "configs" else self.api.remove_secret
        try:
            with engine_call(f"remove {kind[:-1]} {obj_id}"):
                remover(obj_id)
        except SwarmError as err:
            if not is_not_found(err.__cause__):
                raise

    def create_config(self, name: str, data: bytes, labels: dict,
                      template_driver: Optional[str] = None) -> str:
        """Create a config (``POST /configs/create``).

        Args:
            name: full config name. data: content bytes (at most 500 KiB, Swarm's limit).
            labels: labels to set. template_driver: ``golang`` or None.
        Returns:
            str: the config ID.
        Raises:
            SwarmError: e.g. the name exists already.
        """
        return self._create_blob("configs", name, data, labels, template_driver)

    def config(self, name: str) -> Optional[LiveObject]:
        """The config with exactly this name, or None. Raises SwarmError."""
        js = self._find_blob("configs", name)
        return parse.parse_object(js) if js else None

    def remove_config(self, config_id: str) -> None:
        """Remove a config (404 is fine). Raises SwarmError while a service uses it."""
        self._remove_blob("configs", config_id)

    def create_secret(self, name: str, data: bytes, labels: dict,
                      template_driver: Optional[str] = None) -> str:
        """Create a secret (``POST /secrets/create``); same contract as create_config."""
        return self._create_blob("secrets", name, data, labels, template_driver)

    def secret(self, name: str) -> Optional[LiveObject]:
        """The secret with exactly this name, or None. Raises SwarmError."""
        js = self._find_blob("secrets", name)
        return parse.parse_object(js) if js else None

    def remove_secret(self, secret_id: str) -> None:
        """Remove a secret (404 is fine). Raises SwarmError while a service uses it."""
        self._remove_blob("secrets", secret_id)

    def _all_services(self) -> List[dict]:
        with engine_call("list services"):
            return self.api.services()

    def referenced_config_ids(self) -> set:
        """IDs of configs referenced by any service's Spec or PreviousSpec.

        Returns:
            set[str]: config IDs (PreviousSpec counts: a rollback must still find them).
        Raises:
            SwarmError: the list failed.
        """
        return parse.referenced_ids(self._all_services(), "Configs")

    def referenced_secret_ids(self) -> set:
        """IDs of secrets referenced by any service's Spec or PreviousSpec. Raises SwarmError."""
        return parse.referenced_ids(self._all_services(), "Secrets")

    # ---- the state record ------------------------------------------------------------------
    def write_record(self, stack: str, record: StackRecord,
                     replace: Collection[str] = ()) -> None:
        """Create or update ``stack``'s state record (config ``<stack>_keelson-state``).

        The data never changes (Swarm forbids it); only the labels are updated in place
        (``POST /configs/{id}/update`` accepts label changes, per the Engine API docs). A record
        another Keelson instance wrote is never overwritten (issue 7).

        Args:
            stack: stack name.
            record: fields to store; empty ones are omitted. ``record.instance`` is the writer.
            replace: other instance labels an existing record may carry and still be
                overwritten (instances taken over; "" for records written before instances).
        Raises:
            OwnershipError: the existing record belongs to another instance; nothing written.
            SwarmError: the write failed (SpecConflictError on a concurrent write).
        """
        name = L.state_record_name(stack)
        labels = parse.record_labels(stack, record)
        existing = self._find_blob("configs", name)
        if existing is not None:
            owner = ((existing.get("Spec") or {}).get("Labels") or {}).get(L.INSTANCE, "")
            if owner != record.instance and owner not in replace:
                raise OwnershipError(f"state record {name} belongs to Keelson instance "
                                     f"{owner or '(none)'}, not {record.instance}: left unchanged")
        if existing is None:
            self._create_blob("configs", name, RECORD_DATA, labels, None)
            return
        spec = dict(existing["Spec"], Labels=labels)
        with engine_call(f"update config {name}"):
            resp = self.api._post_json(self.api._url("/configs/{0}/update", existing["ID"]),
                                       params={"version": existing["Version"]["Index"]},
                                       data=spec)
            self.api._raise_for_status(resp)

    def set_labels(self, kind: str, name: str, labels: dict) -> None:
        """Replace the labels of a config or secret in place (issue 8.4: healing label drift).

        Args:
            kind: ``configs`` or ``secrets``. name: the object's exact name.
            labels: the complete new label map.
        Raises:
            SwarmError: the object is gone or the write failed (Engine API ``ConfigUpdate`` /
                ``SecretUpdate``: only Labels may change).
        """
        existing = self._find_blob(kind, name)
        if existing is None:
            raise SwarmError(f"{kind[:-1]} {name} not found")
        spec = dict(existing["Spec"], Labels=dict(labels))
        with engine_call(f"update {kind[:-1]} {name}"):
            resp = self.api._post_json(self.api._url(f"/{kind}/{{0}}/update", existing["ID"]),
                                       params={"version": existing["Version"]["Index"]},
                                       data=spec)
            self.api._raise_for_status(resp)

    def remove_record(self, stack: str, instance: str) -> bool:
        """Remove ``stack``'s state record when it exists and ``instance`` wrote it.

        Args:
            stack: stack name. instance: the remover's instance name; a record carrying
                another instance's label is left in place (issue 7).
        Returns:
            bool: True when a record was removed.
        Raises:
            SwarmError: the list or remove failed.
        """
        existing = self._find_blob("configs", L.state_record_name(stack))
        if existing is None:
            return False
        if ((existing.get("Spec") or {}).get("Labels") or {}).get(L.INSTANCE, "") != instance:
            return False
        self._remove_blob("configs", existing["ID"])
        return True
