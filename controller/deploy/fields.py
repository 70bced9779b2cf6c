"""PURE: field-level differences between a live and a desired stack (``keelson diff``).

The plan (``deploy.diff.plan_stack``) says which objects change; this module says which fields
of them: for each service to update, both specs go through the live-spec normaliser
(``render.normalize.comparable_service``, which drops what Swarm fills in by default, Keelson's
own labels and config/secret IDs) and a small tree diff names each differing leaf with its old
and new value. No I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Tuple

from controller.model import DesiredStack, LiveStack, StackPlan
from controller.model.plan import UNCHANGED, UPDATE
from controller.render.convert.normalize import comparable_service

_ABSENT = object()


@dataclass(frozen=True)
class FieldChange:
    """One field that differs.

    Attributes:
        path: dotted path with list indexes, e.g. ``TaskTemplate.ContainerSpec.Env[0]``; a map
            key holding dots is written in brackets (``Labels["com.example.tier"]``).
        old: the live value (None when the field is absent live).
        new: the desired value (None when git drops the field).
    """

    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ObjectDiff:
    """One object a pass would write, with the fields that change.

    Attributes:
        kind: service / network / config / secret / volume / stack. name: full object name.
        action: create / update / replace / remove. reason: the plan's reason.
        fields: the differing fields (services being updated only; empty otherwise).
    """

    kind: str
    name: str
    action: str
    reason: str = ""
    fields: Tuple[FieldChange, ...] = ()


def _child(prefix: str, key: Any) -> str:
    """The path of ``key`` under ``prefix`` (dots inside a key are bracketed)."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    text = str(key)
    if "." in text or not text:
        return f'{prefix}["{text}"]'
    return f"{prefix}.{text}" if prefix else text


def field_changes(old: Any, new: Any, prefix: str = "") -> List[FieldChange]:
    """The leaves where two JSON values differ (a small tree diff).

    Args:
        old: the live value. new: the desired value. prefix: the path of the values ("" at
            the top).
    Returns:
        list[FieldChange]: maps are compared key by key (sorted); lists of the same length
        item by item (``Env[2]``), lists of different lengths as a whole; a map present on one
        side only is named by its leaves. Empty when the values are equal.
    """
    if isinstance(old, dict) or isinstance(new, dict):
        if isinstance(old, dict) and new in (None, _ABSENT):
            new = {}
        if isinstance(new, dict) and old in (None, _ABSENT):
            old = {}
    if isinstance(old, dict) and isinstance(new, dict):
        out: List[FieldChange] = []
        for key in sorted(set(old) | set(new), key=str):
            out.extend(field_changes(old.get(key, _ABSENT), new.get(key, _ABSENT),
                                     _child(prefix, key)))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out.extend(field_changes(a, b, _child(prefix, i)))
        return out
    if old == new:
        return []
    return [FieldChange(prefix or ".", None if old is _ABSENT else old,
                        None if new is _ABSENT else new)]


def stack_field_diff(plan: StackPlan, desired: Optional[DesiredStack], live: Optional[LiveStack],
                     network_names: Optional[Mapping[str, str]] = None) -> List[ObjectDiff]:
    """What a pass would write for one stack, with the changing fields of each service update.

    Args:
        plan: the stack's plan (a dry-run pass). desired: the rendered stack (None: fields are
            not computed). live: the stack as listed (None: nothing runs yet).
        network_names: network ID -> name (the engine stores IDs in ``Networks[].Target``).
    Returns:
        list[ObjectDiff]: one per change that writes, in the plan's order.
    """
    out: List[ObjectDiff] = []
    for ch in plan.changes:
        if ch.action == UNCHANGED:
            continue
        fields: Tuple[FieldChange, ...] = ()
        if ch.kind == "service" and ch.action == UPDATE and desired is not None and live:
            want, have = desired.services.get(ch.name), live.services.get(ch.name)
            if want is not None and have is not None:
                fields = tuple(field_changes(comparable_service(have.spec, network_names),
                                             comparable_service(want.spec)))
        out.append(ObjectDiff(ch.kind, ch.name, ch.action, ch.reason, fields))
    return out
