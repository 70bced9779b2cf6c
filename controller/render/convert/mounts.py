"""A service's ``volumes`` (short ``src:dst:mode`` or long form) -> Engine ``Mounts``.

Pure. Source: docker/cli ``cli/compose/convert/volume.go`` and the short-syntax parser
``internal/volumespec`` (a source starting with ``.``, ``/`` or ``~`` is a bind, else a volume).
"""
from __future__ import annotations

import os
from typing import List, Mapping, Optional

from controller.model.labels import NAMESPACE
from controller.render.convert.context import ConvertContext
from controller.render.convert.objects import external_name
from controller.render.convert.service import str_dict
from controller.render.convert.units import parse_bytes

_PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")


def parse_short_volume(ctx: ConvertContext, key: str, spec: str) -> dict:
    """``[source:]target[:opts]`` -> the long form ``{type, source, target, read_only, ...}``.

    Options: ``ro``/``rw``, ``nocopy``, a bind propagation; unknown options are ignored (docker).
    Raises:
        ManifestError: empty, an empty section, or too many colons.
    """
    parts = spec.split(":")
    if not spec or any(p == "" for p in parts) or len(parts) > 3:
        ctx.fail(key, f"invalid volume spec {spec!r}: expected [source:]target[:options]")
    if len(parts) == 1:
        return {"type": "volume", "target": parts[0]}
    vol: dict = {"source": parts[0], "target": parts[1]}
    for opt in (parts[2].split(",") if len(parts) == 3 else []):
        if opt in ("ro", "rw"):
            vol["read_only"] = opt == "ro"
        elif opt == "nocopy":
            vol["volume"] = {"nocopy": True}
        elif opt in _PROPAGATIONS:
            vol["bind"] = {"propagation": opt}
    vol["type"] = "bind" if parts[0][0] in "./~" else "volume"
    return vol


def _bind_source(ctx: ConvertContext, key: str, source: str) -> str:
    """The absolute host path of a bind mount's source.

    docker's compose loader resolves a relative source against the stack file's folder on the
    machine running ``docker stack deploy``. For Keelson that folder is an exported tree inside
    its own container, which no node has and which changes with every commit, so a relative
    source (``./data``, ``data``, ``~/data``) is refused, unless the operator sets
    ``KEELSON_BIND_ROOT``: then it resolves to ``<bind_root>/<stack>/<source>``, a folder the
    operator provides on every node. It must stay inside ``bind_root``.

    Raises:
        ManifestError: a relative or ``~`` source without ``KEELSON_BIND_ROOT``, or one that
            leaves ``bind_root``; the message names the fixes.
    """
    if os.path.isabs(source):
        return source
    hint = ("a bind mount source must be an absolute path on the node; use a config (configs:) "
            "for files from the repo, a named volume for data, an absolute path, or set "
            "KEELSON_BIND_ROOT so relative sources resolve to KEELSON_BIND_ROOT/<stack>/<source>")
    if source.startswith("~"):
        ctx.fail(key, f"bind source {source!r} refers to a home folder, which differs per node: "
                      + hint.split("; ", 1)[1])
    if not ctx.bind_root:
        ctx.fail(key, f"relative bind source {source!r} would point into Keelson's checkout, "
                      f"which no node has: {hint}")
    base = os.path.normpath(ctx.bind_root)
    path = os.path.normpath(os.path.join(base, ctx.stack, source))
    if path != base and not path.startswith(base + os.sep):
        ctx.fail(key, f"bind source {source!r} leaves KEELSON_BIND_ROOT ({base})")
    return path


def service_mounts(ctx: ConvertContext, svc_name: str, raw, volumes: Mapping[str, dict]) -> Optional[List[dict]]:
    """A service's ``volumes`` -> ``[Mount]`` in the order written (docker keeps it).

    Named volumes become ``<stack>_<vol>`` (or ``name:``) with VolumeOptions carrying the
    namespace label, the volume's labels and its DriverConfig; external ones only the name.
    Raises:
        ManifestError: undefined named volume, options that do not fit the type, unknown type.
    Source: docker/cli convert ``convertVolumeToMount``.
    """
    out = []
    for i, item in enumerate(raw or []):
        key = f"services.{svc_name}.volumes.{i}"
        vol = parse_short_volume(ctx, key, item) if isinstance(item, str) else dict(item or {})
        vtype = str(vol.get("type") or "volume")
        source = str(vol.get("source") or "")
        m: dict = {"Type": vtype, "Target": str(vol.get("target") or "")}
        if not m["Target"]:
            ctx.fail(key, "a mount needs a target")
        for opt in ("bind", "volume", "tmpfs"):
            if vol.get(opt) and opt != vtype:
                ctx.fail(key, f"{opt} options are incompatible with type {vtype}")
        if vtype == "volume":
            if source:
                if source not in (volumes or {}):
                    ctx.fail(key, f"undefined volume {source!r}")
                cfg = volumes[source] or {}
                ext = external_name(source, cfg)
                m["Source"] = ext or (str(cfg["name"]) if cfg.get("name") else ctx.scope(source))
                opts: dict = {}
                if (vol.get("volume") or {}).get("nocopy"):
                    opts["NoCopy"] = True
                if (vol.get("volume") or {}).get("subpath"):
                    opts["Subpath"] = str(vol["volume"]["subpath"])
                if not ext:
                    opts["Labels"] = {**str_dict(ctx, f"volumes.{source}.labels", cfg.get("labels")),
                                      NAMESPACE: ctx.stack}
                    if cfg.get("driver") or cfg.get("driver_opts") is not None:
                        drv: dict = {"Name": str(cfg.get("driver") or "")}
                        if cfg.get("driver_opts"):
                            drv["Options"] = str_dict(ctx, f"volumes.{source}.driver_opts",
                                                      cfg["driver_opts"])
                        opts["DriverConfig"] = drv
                m["VolumeOptions"] = opts
            elif (vol.get("volume") or {}).get("nocopy"):
                m["VolumeOptions"] = {"NoCopy": True}
        elif vtype in ("bind", "npipe"):
            if not source:
                ctx.fail(key, f"invalid {vtype} source, source cannot be empty")
            m["Source"] = _bind_source(ctx, key, source) if vtype == "bind" else source
            if (vol.get("bind") or {}).get("propagation"):
                m["BindOptions"] = {"Propagation": str(vol["bind"]["propagation"])}
        elif vtype == "tmpfs":
            if source:
                ctx.fail(key, "invalid tmpfs source, source must be empty")
            t = vol.get("tmpfs") or {}
            topts: dict = {}
            if t.get("size") is not None:
                topts["SizeBytes"] = ctx.parse(f"{key}.tmpfs.size", parse_bytes, t["size"])
            if t.get("mode") is not None:
                mode = t["mode"]
                topts["Mode"] = int(mode, 8) if isinstance(mode, str) else int(mode)
            if topts:
                m["TmpfsOptions"] = topts
        else:
            ctx.fail(f"{key}.type", "volume type must be volume, bind, tmpfs or npipe")
        if vol.get("read_only"):
            m["ReadOnly"] = True
        if vol.get("consistency"):
            m["Consistency"] = str(vol["consistency"])
        out.append({k: m[k] for k in ("Type", "Source", "Target", "ReadOnly", "Consistency",
                                      "BindOptions", "VolumeOptions", "TmpfsOptions") if k in m})
    return out or None
