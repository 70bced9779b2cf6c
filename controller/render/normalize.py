"""Canonical form of Engine specs, so equal intent gives equal bytes (and equal hashes).

Pure. Lists whose order the engine ignores are sorted; lists whose order is meaning (Command,
Args, Healthcheck Test, placement Preferences, DNS servers, Hosts) are kept as written.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

# Keys whose list value is a set for the engine: sort them.
SORTED_LISTS = frozenset({
    "Env", "Mounts", "Configs", "Secrets", "Constraints", "Aliases", "Ports", "Networks",
    "CapabilityAdd", "CapabilityDrop", "Ulimits", "Groups", "GenericResources",
})
# Label maps: keys starting with this prefix are Keelson's bookkeeping and never part of a hash.
KEELSON_LABEL_PREFIX = "io.keelson."
_LABEL_KEYS = frozenset({"Labels"})


def _sort_key(item: Any) -> str:
    """Order list items by their canonical JSON (works for strings and dicts alike)."""
    return json.dumps(item, sort_keys=True, separators=(",", ":"))


def canonical(spec: Any, _key: str = "") -> Any:
    """Return a copy of ``spec`` with dicts' keys sorted and set-like lists sorted.

    Args:
        spec: any JSON value (a ServiceSpec, NetworkCreate, ... dict).
    Returns:
        the same shape: dicts rebuilt in key order; lists under the keys in ``SORTED_LISTS``
        sorted by their items' canonical JSON; Command/Args/Test and other lists untouched.
    """
    if isinstance(spec, dict):
        return {k: canonical(spec[k], k) for k in sorted(spec)}
    if isinstance(spec, list):
        items = [canonical(v) for v in spec]
        return sorted(items, key=_sort_key) if _key in SORTED_LISTS else items
    return spec


def _strip_keelson_labels(spec: Any) -> Any:
    """Drop every ``io.keelson.*`` key from every ``Labels`` map, at any depth."""
    if isinstance(spec, dict):
        return {k: ({lk: lv for lk, lv in v.items() if not str(lk).startswith(KEELSON_LABEL_PREFIX)}
                    if k in _LABEL_KEYS and isinstance(v, dict) else _strip_keelson_labels(v))
                for k, v in spec.items()}
    if isinstance(spec, list):
        return [_strip_keelson_labels(v) for v in spec]
    return spec


def spec_hash(spec: dict) -> str:
    """sha256 hex of the canonical JSON of ``spec``, ignoring labels starting ``io.keelson.``.

    Args:
        spec: an Engine spec dict (JSON values only).
    Returns:
        str: 64 lowercase hex digits. Stable across dict order and set-like list order, and
        unchanged by Keelson's own labels (revision, spec-hash), so re-applying the same stack at
        a new revision hashes the same (case c03).
    """
    text = json.dumps(canonical(_strip_keelson_labels(spec)), sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
