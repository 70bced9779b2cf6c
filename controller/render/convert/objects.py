"""Stack-level objects (networks, configs, secrets, volumes) and the service references to them.

Pure: a config/secret ``file:`` was read by the loader, through the sandbox (issue 7). Names
follow docker's ``Namespace.Scope`` (``<stack>_<key>``) unless the object sets ``name:``.
Source: docker/cli ``cli/compose/convert/compose.go`` and ``service.go``.
"""
from __future__ import annotations

import hashlib
import os
from typing import Dict, List, Mapping, Optional, Tuple

from controller.errors import ManifestError
from controller.model.desired import DesiredConfig, DesiredNetwork
from controller.model.labels import CONFIG_NAME, NAMESPACE, owner_labels
from controller.render.convert.context import ConvertContext
from controller.render.convert.service import as_str, str_dict
from controller.render.compose.sandbox import DEFAULT_LIMITS, RepoSandbox

DEFAULT_NETWORK = "default"
DEFAULT_NETWORK_DRIVER = "overlay"  # docker stack deploy's default driver for stack networks
# Networks that are not user-defined take no aliases (docker: NetworkMode.IsUserDefined).
_BUILTIN_NETWORKS = ("bridge", "host", "none", "default")
CONTENT_HASH_LEN = 10  # hex digits of sha256(data) appended to config/secret names


def external_name(key: str, obj: dict) -> Optional[str]:
    """The existing object's name when ``obj`` is external (``external: true`` or the legacy
    ``external: {name: x}``), else None."""
    ext = obj.get("external")
    if isinstance(ext, dict):
        return str(ext.get("name") or obj.get("name") or key)
    if ext:
        return str(obj.get("name") or key)
    return None


def network_target(ctx: ConvertContext, key: str, networks: Mapping[str, dict]) -> str:
    """Full name of the stack network ``key`` (its ``name:``/external name, or ``<stack>_<key>``)."""
    cfg = networks.get(key) or {}
    return external_name(key, cfg) or (str(cfg["name"]) if cfg.get("name") else ctx.scope(key))


def service_networks(ctx: ConvertContext, svc_name: str, svc: dict,
                     networks: Mapping[str, dict]) -> Tuple[List[dict], List[str]]:
    """A service's ``networks`` -> ``[{Target, Aliases}]`` sorted by Target, plus the keys used.

    A service that lists none joins ``default``. Aliases are its ``aliases`` then the service's
    name (only on user-defined networks), as docker does.
    Returns:
        (attachments, network keys used).
    Raises:
        ManifestError: a network that the top-level ``networks`` does not define.
    Source: docker/cli convert ``convertServiceNetworks``.
    """
    key = f"services.{svc_name}.networks"
    raw = svc.get("networks")
    if not raw:
        raw = {DEFAULT_NETWORK: None}
    elif isinstance(raw, list):
        raw = {str(n): None for n in raw}
    out = []
    for net_key, opts in raw.items():
        if net_key not in networks and net_key != DEFAULT_NETWORK:
            ctx.fail(f"{key}.{net_key}", f"undefined network {net_key!r}")
        target = network_target(ctx, net_key, networks)
        att: dict = {"Target": target}
        aliases = [str(a) for a in (opts or {}).get("aliases") or []]
        if target not in _BUILTIN_NETWORKS and not target.startswith("container:"):
            aliases = aliases + [svc_name]  # docker appends the service name last
        if aliases:
            att["Aliases"] = aliases
        if (opts or {}).get("driver_opts"):
            att["DriverOpts"] = str_dict(ctx, f"{key}.{net_key}.driver_opts", opts["driver_opts"])
        out.append(att)
    return sorted(out, key=lambda a: a["Target"]), list(raw)


def network_objects(ctx: ConvertContext, used: List[str],
                    networks: Mapping[str, dict]) -> Dict[str, DesiredNetwork]:
    """The networks the services use -> DesiredNetwork (NetworkCreate JSON; external flagged).

    Only networks some service uses are created, and ``default`` is an overlay unless the stack
    configures it. Labels: the network's labels + owner labels.
    Source: docker/cli convert ``Networks`` and stack deploy's default driver ``overlay``.
    """
    out: Dict[str, DesiredNetwork] = {}
    for key in sorted(set(used)):
        cfg = networks.get(key) or {}
        name = network_target(ctx, key, networks)
        if external_name(key, cfg):
            out[name] = DesiredNetwork(name=name, spec={"Name": name}, external=True)
            continue
        spec: dict = {"Name": name, "Driver": str(cfg.get("driver") or DEFAULT_NETWORK_DRIVER),
                      "Labels": {**str_dict(ctx, f"networks.{key}.labels", cfg.get("labels")),
                                 **owner_labels(ctx.stack)}}
        if cfg.get("driver_opts"):
            spec["Options"] = str_dict(ctx, f"networks.{key}.driver_opts", cfg["driver_opts"])
        ipam = cfg.get("ipam") or {}
        if ipam.get("driver") or ipam.get("config"):
            spec["IPAM"] = {"Driver": str(ipam.get("driver") or "default"),
                            "Config": [{"Subnet": str(c["subnet"])}
                                       for c in ipam.get("config") or [] if c.get("subnet")]}
        for src, dst in (("internal", "Internal"), ("attachable", "Attachable")):
            if cfg.get(src):
                spec[dst] = True
        out[name] = DesiredNetwork(name=name, spec=spec)
    return out


def content_name(logical: str, data: bytes) -> str:
    """``<logical>-<first 10 hex of sha256(data)>``: Swarm cannot change a config's data, so a
    new content gets a new name and services roll to it (case c01)."""
    return f"{logical}-{hashlib.sha256(data).hexdigest()[:CONTENT_HASH_LEN]}"


def file_object(ctx: ConvertContext, kind: str, key: str, obj: dict,
                environ: Mapping[str, str]) -> DesiredConfig:
    """One top-level config or secret -> DesiredConfig with its data and versioned name.

    Args:
        kind: ``configs`` or ``secrets``.
        key: its key in the stack file.
        obj: ``{file|environment|content|external, name, labels, template_driver}``; ``file`` is
            an absolute path (the loader resolves it and keeps its content in
            ``manifest.file_data``).
        environ: variables for ``environment:`` sources (the stack's allowed variables).
    Returns:
        DesiredConfig (external ones carry only the name).
    Raises:
        ManifestError: unreadable file, unset variable, no source, or ``driver:`` (secret
            drivers are not supported by Keelson).
    Source: docker/cli convert ``Configs``/``Secrets``/``fileObjectConfig``.
    """
    path = f"{kind}.{key}"
    ext = external_name(key, obj)
    if ext:
        return DesiredConfig(name=ext, logical_name=ext, external=True)
    if obj.get("driver"):
        ctx.fail(f"{path}.driver", "secret drivers are not supported; use file, environment or content")
    if obj.get("file") is not None:
        data = ctx.manifest.file_data.get(str(obj["file"]))
        if data is None:  # a manifest not made by the loader: read it confined to its folder
            try:
                data = RepoSandbox(os.path.dirname(str(obj["file"]))).read(
                    str(obj["file"]), what=f"{kind[:-1]} file",
                    max_bytes=DEFAULT_LIMITS.object_file_bytes)
            except ManifestError as exc:
                raise ctx.error(f"{path}.file", exc.message) from exc
    elif obj.get("environment") is not None:
        var = str(obj["environment"])
        if var not in environ:
            ctx.fail(f"{path}.environment", f"variable {var} is not set")
        data = environ[var].encode()
    elif obj.get("content") is not None:
        data = as_str(obj["content"]).encode()
    else:
        ctx.fail(path, "needs one of file, environment, content or external")
    logical = str(obj["name"]) if obj.get("name") else ctx.scope(key)
    labels = {**str_dict(ctx, f"{path}.labels", obj.get("labels")), **owner_labels(ctx.stack),
              CONFIG_NAME: logical}
    # a SOPS-decrypted file is named by a keyed hash: its name tells nothing of the plaintext
    version = ctx.manifest.file_versions.get(str(obj.get("file")))
    name = (f"{logical}-{version[:CONTENT_HASH_LEN]}" if version
            else content_name(logical, data))
    return DesiredConfig(name=name, logical_name=logical, data=data,
                         labels=labels, template_driver=obj.get("template_driver") or None)


def service_file_refs(ctx: ConvertContext, kind: str, svc_name: str, refs,
                      objects: Mapping[str, DesiredConfig]) -> List[dict]:
    """A service's ``configs``/``secrets`` -> Engine references, sorted by name.

    Each is ``{"File": {"Name", "UID", "GID", "Mode"}, "ConfigName": <versioned>, "ConfigID": ""}``
    (``Secret*`` for secrets; IDs are filled at apply time). Like docker, ``File.Name`` is the
    ``target`` or else the source key, which the engine places under ``/`` (configs) or
    ``/run/secrets/`` (secrets). UID/GID default "0", Mode 0o444 (292).
    Raises:
        ManifestError: a reference to a key the top-level section does not define.
    Source: docker/cli convert ``convertFileObject``.
    """
    field = "Config" if kind == "configs" else "Secret"
    out = []
    for i, ref in enumerate(refs or []):
        ref = {"source": ref} if isinstance(ref, str) else dict(ref)
        source = str(ref.get("source", ""))
        if source not in objects:
            ctx.fail(f"services.{svc_name}.{kind}.{i}", f"undefined {kind[:-1]} {source!r}")
        mode = ref.get("mode", 0o444)
        if isinstance(mode, str):
            mode = ctx.parse(f"services.{svc_name}.{kind}.{i}.mode", lambda m: int(m, 8), mode)
        out.append({"File": {"Name": str(ref.get("target") or source),
                             "UID": str(ref.get("uid", "0")), "GID": str(ref.get("gid", "0")),
                             "Mode": int(mode)},
                    f"{field}Name": objects[source].name, f"{field}ID": ""})
    # stable sort by name only, as docker does (two mounts of one config keep written order)
    return sorted(out, key=lambda r: r[f"{field}Name"])


def volume_objects(ctx: ConvertContext, volumes: Mapping[str, dict]) -> Dict[str, dict]:
    """Top-level named volumes -> full name -> ``{Name, Driver, DriverOpts, Labels, External}``.

    Swarm has no volume objects: each node's engine creates the volume when a task starts, from
    the mount's VolumeOptions. This record lets later stages report and prune them.
    """
    out = {}
    for key, cfg in (volumes or {}).items():
        cfg = cfg or {}
        ext = external_name(key, cfg)
        name = ext or (str(cfg["name"]) if cfg.get("name") else ctx.scope(key))
        out[name] = {"Name": name, "External": bool(ext),
                     "Driver": str(cfg.get("driver") or "local"),
                     "DriverOpts": str_dict(ctx, f"volumes.{key}.driver_opts", cfg.get("driver_opts")),
                     "Labels": {**str_dict(ctx, f"volumes.{key}.labels", cfg.get("labels")),
                                NAMESPACE: ctx.stack}}
    return out
