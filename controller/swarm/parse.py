"""Pure translation of Docker Engine API JSON into Keelson's model objects.

No I/O and no ``docker`` import: every function takes the JSON the Engine returned (API 1.41,
as documented at https://docs.docker.com/engine/api/v1.41/) and returns model data, so the rules
are unit-tested against JSON captured from a real engine (tests/unit/fixtures/swarm/).
"""
from __future__ import annotations

import collections
import re
from typing import Dict, Iterable, List, Optional

from controller.model import labels as L
from controller.model.timestamps import parse_time
from controller.model.live import LiveObject, LiveService, LiveStack, LiveTask, StackRecord
from controller.model.node import LiveNode
from controller.telemetry.scrub import scrub

# record field -> label key on the state record config
BUILD_TEXT_KEPT = 256 << 10  # characters of build output kept (the tail is what explains)
RECORD_LABELS = {
    "applied_revision": L.APPLIED_REVISION,
    "applied_source_hash": L.APPLIED_SOURCE_HASH,
    "failed_revision": L.FAILED_REVISION,
    "failed_source_hash": L.FAILED_SOURCE_HASH,
    "failed_reason": L.FAILED_REASON,
    "failed_message": L.FAILED_MESSAGE,
    "instance": L.INSTANCE,
    "suspended": L.SUSPENDED,
    "held_source": L.HELD_SOURCE,
    "previous_revision": L.PREVIOUS_REVISION,
    "rollback_revision": L.ROLLBACK_REVISION,
    "rollback_source_hash": L.ROLLBACK_SOURCE_HASH,
}



def parse_service(js: dict) -> LiveService:
    """Translate one ``GET /services/{id}`` (or list) entry.

    Args:
        js: Service JSON (ID, Version.Index, Spec, PreviousSpec?, UpdateStatus?).
    Returns:
        LiveService: labels are the service labels (``Spec.Labels``), spec the raw ServiceSpec.
    """
    spec = js.get("Spec") or {}
    return LiveService(
        id=js["ID"],
        name=spec.get("Name", ""),
        version=int((js.get("Version") or {}).get("Index", 0)),
        labels=dict(spec.get("Labels") or {}),
        spec=spec,
        previous_spec=js.get("PreviousSpec"),
        update_status=js.get("UpdateStatus"),
    )


def parse_task(js: dict) -> LiveTask:
    """Translate one ``GET /tasks`` entry.

    Args:
        js: Task JSON (ID, Slot, NodeID, DesiredState, Status{State, Message, Err, Timestamp},
            Spec.ContainerSpec.Image, CreatedAt, UpdatedAt, and SpecVersion when the engine
            includes it).
    Returns:
        LiveTask: times in unix seconds; ``spec_version`` None when absent.
    """
    status = js.get("Status") or {}
    cspec = (js.get("Spec") or {}).get("ContainerSpec") or {}
    spec_version = (js.get("SpecVersion") or {}).get("Index")
    return LiveTask(
        id=js["ID"],
        slot=js.get("Slot"),
        node_id=js.get("NodeID", ""),
        desired_state=js.get("DesiredState", ""),
        state=status.get("State", ""),
        message=status.get("Message", ""),
        error=status.get("Err", ""),
        image=cspec.get("Image", ""),
        created_at=parse_time(js.get("CreatedAt")),
        updated_at=parse_time(js.get("UpdatedAt")),
        spec_version=int(spec_version) if spec_version is not None else None,
        service_id=js.get("ServiceID", ""),
        exit_code=_exit_code(status),
    )


def _exit_code(status: dict) -> Optional[int]:
    """``Status.ContainerStatus.ExitCode`` of a task that has finished, else None."""
    code = (status.get("ContainerStatus") or {}).get("ExitCode")
    if code is None or status.get("State") not in ("complete", "failed", "shutdown", "rejected"):
        return None
    return int(code)


def parse_object(js: dict) -> LiveObject:
    """Translate a network, config or secret entry.

    Args:
        js: Network JSON (Id, Name, Labels) or Config/Secret JSON (ID, Version.Index,
            Spec{Name, Labels}).
    Returns:
        LiveObject: version is 0 for networks (they have none); networks carry ``spec`` with
        ``NETWORK_FIELDS`` as listed.
    """
    if "Spec" in js:
        spec = js.get("Spec") or {}
        return LiveObject(id=js["ID"], name=spec.get("Name", ""),
                          labels=dict(spec.get("Labels") or {}),
                          version=int((js.get("Version") or {}).get("Index", 0)))
    return LiveObject(id=js.get("Id") or js.get("ID", ""), name=js.get("Name", ""),
                      labels=dict(js.get("Labels") or {}),
                      spec={k: js.get(k) for k in NETWORK_FIELDS})


# Network fields Keelson sets; Swarm cannot change any of them in place (issue 8.3).
NETWORK_FIELDS = ("Driver", "Options", "IPAM", "Attachable", "Internal")


def parse_network(js: dict) -> dict:
    """Reduce a ``GET /networks/{id}`` answer to the fields Keelson compares.

    Args:
        js: Network JSON.
    Returns:
        dict: ``{"Id", "Name", "Scope", "Driver", "Labels"}`` (Labels never None).
    """
    return {"Id": js.get("Id", ""), "Name": js.get("Name", ""), "Scope": js.get("Scope", ""),
            "Driver": js.get("Driver", ""), "Labels": dict(js.get("Labels") or {})}


def parse_node(js: dict) -> dict:
    """Reduce a ``GET /nodes`` entry.

    Args:
        js: Node JSON.
    Returns:
        dict: ``{"ID", "Hostname", "Role", "State", "Availability"}``.
    """
    spec = js.get("Spec") or {}
    return {"ID": js.get("ID", ""),
            "Hostname": (js.get("Description") or {}).get("Hostname", ""),
            "Role": spec.get("Role", ""),
            "State": (js.get("Status") or {}).get("State", ""),
            "Availability": spec.get("Availability", "")}


def parse_live_node(js: dict) -> LiveNode:
    """Translate one ``GET /nodes`` entry for the node planner.

    Args:
        js: Node JSON (ID, Version.Index, Spec, Description, Status, ManagerStatus?).
    Returns:
        LiveNode: ``role`` is ``Spec.Role`` (the role asked for), ``spec`` the raw NodeSpec.
    """
    spec = js.get("Spec") or {}
    desc = js.get("Description") or {}
    platform = desc.get("Platform") or {}
    return LiveNode(
        id=js.get("ID", ""), hostname=desc.get("Hostname", ""),
        version=int((js.get("Version") or {}).get("Index", 0)),
        role=spec.get("Role", ""), availability=spec.get("Availability", ""),
        state=(js.get("Status") or {}).get("State", ""),
        labels=dict(spec.get("Labels") or {}),
        engine_labels=dict((desc.get("Engine") or {}).get("Labels") or {}),
        os=platform.get("OS", ""), arch=platform.get("Architecture", ""), spec=dict(spec),
        leader=bool((js.get("ManagerStatus") or {}).get("Leader")))


def parse_record(obj_labels: Dict[str, str]) -> StackRecord:
    """Read a stack's state record from its config's labels (absent labels -> "")."""
    return StackRecord(**{f: obj_labels.get(key, "") for f, key in RECORD_LABELS.items()})


def record_labels(stack: str, record: StackRecord) -> Dict[str, str]:
    """Labels of ``stack``'s state record config.

    Args:
        stack: stack name.
        record: what to remember; empty fields are omitted (Swarm labels cannot be None).
    Returns:
        dict: owner labels + ``io.keelson.state=1`` + one label per non-empty record field,
        each value passed through ``scrub()`` (issue 7: labels are readable by anyone with
        ``docker config inspect``).
    """
    out = dict(L.owner_labels(stack))
    out[L.STATE] = "1"
    for f, key in RECORD_LABELS.items():
        value = getattr(record, f)
        if value:
            out[key] = scrub(value)
    return out


def is_record(js: dict) -> bool:
    """True when a config entry is a Keelson state record (``io.keelson.state`` label + name)."""
    obj = parse_object(js)
    stack = obj.labels.get(L.NAMESPACE, "")
    return L.STATE in obj.labels and obj.name == L.state_record_name(stack)


def referenced_ids(services: Iterable[dict], kind: str) -> set:
    """IDs of configs or secrets referenced by services' Spec or PreviousSpec.

    PreviousSpec counts so that ``docker service rollback`` still finds the object it needs.

    Args:
        services: Service JSON entries (``GET /services``).
        kind: ``"Configs"`` or ``"Secrets"`` (the ContainerSpec key).
    Returns:
        set[str]: ConfigID / SecretID values.
    """
    id_key = "ConfigID" if kind == "Configs" else "SecretID"
    out = set()
    for svc in services:
        for spec in (svc.get("Spec"), svc.get("PreviousSpec")):
            cspec = ((spec or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
            for ref in cspec.get(kind) or []:
                if ref.get(id_key):
                    out.add(ref[id_key])
    return out


def group_stacks(services: List[dict], networks: List[dict], configs: List[dict],
                 secrets: List[dict], stacks: Optional[Iterable[str]] = None,
                 volumes: Optional[List[dict]] = None) -> Dict[str, LiveStack]:
    """Group listed objects by their ``com.docker.stack.namespace`` label.

    Args:
        services / networks / configs / secrets: Engine list answers (objects without the
            namespace label are ignored).
        stacks: keep only these stack names; None keeps all.
        volumes: ``GET /volumes`` entries (Name, Driver, Options, Labels) of this node.
    Returns:
        dict[str, LiveStack]: stack name -> its objects keyed by name. A config that is the
        stack's state record becomes ``LiveStack.record`` and is not listed among configs.
    """
    wanted = set(stacks) if stacks is not None else None
    out: Dict[str, LiveStack] = {}

    def _stack_of(lbls: Dict[str, str]) -> Optional[LiveStack]:
        name = lbls.get(L.NAMESPACE)
        if not name or (wanted is not None and name not in wanted):
            return None
        return out.setdefault(name, LiveStack(name=name))

    for js in services:
        svc = parse_service(js)
        st = _stack_of(svc.labels)
        if st is not None:
            st.services[svc.name] = svc
    for js in networks:
        obj = parse_object(js)
        st = _stack_of(obj.labels)
        if st is not None:
            st.networks[obj.name] = obj
    for js in configs:
        obj = parse_object(js)
        st = _stack_of(obj.labels)
        if st is None:
            continue
        if is_record(js):
            st.record = parse_record(obj.labels)
        else:
            st.configs[obj.name] = obj
    for js in secrets:
        obj = parse_object(js)
        st = _stack_of(obj.labels)
        if st is not None:
            st.secrets[obj.name] = obj
    for js in volumes or []:
        st = _stack_of(dict(js.get("Labels") or {}))
        if st is not None:
            st.volumes[js.get("Name", "")] = LiveObject(
                id=js.get("Name", ""), name=js.get("Name", ""), labels=dict(js.get("Labels") or {}),
                spec={"Driver": js.get("Driver", ""), "Options": dict(js.get("Options") or {})})
    return out


# ---- build and push streams ---------------------------------------------------------------
# `docker build` and `docker push` report failure in-band: the HTTP status is 200 and an
# `error`/`errorDetail` chunk arrives in the JSON stream (docker/docker pkg/jsonmessage).
_PUSH_DIGEST_RE = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def stream_error(chunk: dict) -> Optional[str]:
    """The error message an Engine stream chunk carries, or None.

    Args:
        chunk: one decoded JSON message (``{"error": ..., "errorDetail": {"message": ...}}``).
    Returns:
        str or None.
    """
    if chunk.get("error") or chunk.get("errorDetail"):
        detail = chunk.get("errorDetail") or {}
        return str(chunk.get("error") or detail.get("message") or "unknown error").strip()
    return None


def scan_build_stream(chunks: Iterable[dict], on_text=None) -> tuple:
    """Read a whole build stream.

    Args:
        chunks: decoded messages of ``POST /build`` (``stream``, ``aux.ID``, ``error``).
        on_text: called with each ``stream`` text as it arrives (build progress), or None;
            it must not raise.
    Returns:
        tuple ``(image_id, lines, error)``: image id ``sha256:...`` from the ``aux`` message
        ("" if none), the output split into lines (blank ones dropped), the error message or
        None.
    """
    image_id, text, error = "", collections.deque(), None
    kept = 0
    for chunk in chunks:
        err = stream_error(chunk)
        if err is not None:
            error = err
            text.append("ERROR: " + err + "\n")
            kept += len(text[-1])
            continue
        if isinstance(chunk.get("aux"), dict) and chunk["aux"].get("ID"):
            image_id = chunk["aux"]["ID"]
        if chunk.get("stream"):
            text.append(str(chunk["stream"]))
            if on_text is not None:
                on_text(text[-1])
            kept += len(text[-1])
        while kept > BUILD_TEXT_KEPT and len(text) > 1:  # a chatty build must not fill memory
            kept -= len(text.popleft())
    lines = [ln.rstrip() for ln in "".join(text).splitlines() if ln.strip()]
    return image_id, lines, error


def scan_push_stream(chunks: Iterable[dict], on_status=None) -> tuple:
    """Read a whole push stream.

    Args:
        chunks: decoded messages of ``POST /images/{name}/push``.
        on_status: called with ``(status, layer id)`` of each status message (``Pushed``,
            ``Layer already exists``...), or None; it must not raise.
    Returns:
        tuple ``(digest, error)``: the manifest digest (``aux.Digest``, else parsed from the
        ``<tag>: digest: sha256:... size: N`` status line; "" if neither), the error or None.
    """
    digest, error = "", None
    for chunk in chunks:
        err = stream_error(chunk)
        if err is not None:
            error = err
            continue
        if on_status is not None and chunk.get("status"):
            on_status(str(chunk["status"]), str(chunk.get("id") or ""))
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            digest = aux["Digest"]
        elif not digest:
            m = _PUSH_DIGEST_RE.search(str(chunk.get("status") or ""))
            if m:
                digest = m.group(1)
    return digest, error
