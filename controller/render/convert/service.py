"""One compose service's scalar settings -> pieces of an Engine ``ServiceSpec``.

Pure. Each function returns only the keys the stack sets (as ``docker stack deploy`` does with
Go's ``omitempty``), so a sparse stack gives a sparse, stable spec. Rules follow docker/cli
``cli/compose/convert/service.go`` unless a docstring names a Keelson difference.
"""
from __future__ import annotations

import shlex
from typing import Dict, List, Optional

from controller.render.convert.context import ConvertContext
from controller.render.convert.units import parse_bytes, parse_duration_ns, parse_nano_cpus

# Swarm's defaults where Keelson sets an UpdateConfig the stack did not ask for (swarmkit
# api/defaults: parallelism 1, monitor 5s; same as `docker service create`'s flag defaults).
DEFAULT_PARALLELISM = 1
DEFAULT_MONITOR_NS = 5_000_000_000
KEELSON_FAILURE_ACTION = "rollback"

_MODES = ("replicated", "global", "replicated-job", "global-job")


def as_str(value) -> str:
    """Render a YAML scalar as docker would read it (``true``/``false`` for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def string_list(ctx: ConvertContext, key: str, value) -> List[str]:
    """A string or list of strings -> list of strings (a string is one item).

    Raises:
        ManifestError: neither a string nor a list.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [as_str(v) for v in value]
    ctx.fail(key, f"expected a string or a list, got {type(value).__name__}")


def command(ctx: ConvertContext, key: str, value) -> Optional[List[str]]:
    """``command``/``entrypoint``: a list as is, a string split like a shell (docker: shellwords).

    Returns:
        list of arguments, or None when unset. Order is meaningful and kept.
    Raises:
        ManifestError: unbalanced quotes, or not a string/list.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ctx.error(key, f"cannot split command: {exc}") from exc
    if isinstance(value, list):
        return [as_str(v) for v in value]
    ctx.fail(key, f"expected a string or a list, got {type(value).__name__}")


def environment(ctx: ConvertContext, key: str, value) -> Optional[List[str]]:
    """``environment`` (a dict from the loader, or a list) -> sorted ``K=V`` (``K`` when null).

    Source: docker/cli convert ``convertEnvironment`` (sorted, a null value gives a bare name).
    """
    if not value:
        return None
    if isinstance(value, list):
        items = []
        for v in value:
            name, sep, val = as_str(v).partition("=")
            items.append((name, val if sep else None))
    elif isinstance(value, dict):
        items = list(value.items())
    else:
        ctx.fail(key, f"expected a mapping or a list, got {type(value).__name__}")
    return sorted(str(k) if v is None else f"{k}={as_str(v)}" for k, v in items)


def str_dict(ctx: ConvertContext, key: str, value, sep: str = "=") -> Dict[str, str]:
    """A mapping or a ``K=V`` list (labels, sysctls, driver options) -> dict of strings."""
    if not value:
        return {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else as_str(v) for k, v in value.items()}
    if isinstance(value, list):
        out = {}
        for item in value:
            k, _, v = as_str(item).partition(sep)
            out[k] = v
        return out
    ctx.fail(key, f"expected a mapping or a list, got {type(value).__name__}")


def extra_hosts(ctx: ConvertContext, key: str, value) -> Optional[List[str]]:
    """``extra_hosts`` (``host:ip``/``host=ip`` list or mapping) -> ``"ip host"``, order kept.

    Source: docker/cli convert ``convertExtraHosts`` (SwarmKit's /etc/hosts notation).
    """
    if not value:
        return None
    pairs = []
    if isinstance(value, dict):
        pairs = [(str(h), as_str(ip)) for h, ip in value.items()]
    else:
        for item in string_list(ctx, key, value):
            sep = "=" if "=" in item else ":"
            host, found, ip = item.partition(sep)
            if not found:
                ctx.fail(key, f"extra host {item!r} is not host:ip")
            pairs.append((host, ip))
    return [f"{ip} {host}" for host, ip in pairs]


def capabilities(add, drop):
    """Normalise ``cap_add``/``cap_drop`` like docker (upper case, ``CAP_`` prefix, ALL wins).

    Returns:
        (CapabilityAdd, CapabilityDrop): sorted lists (either may be empty).
    Source: docker/cli ``opts.EffectiveCapAddCapDrop`` / ``CapabilitiesMap``.
    """
    def _norm(caps):
        out = set()
        for c in caps or []:
            c = str(c).upper()
            out.add(c if c in ("ALL", "RESET") or c.startswith("CAP_") else "CAP_" + c)
        return {"ALL"} if "ALL" in out else out
    a, d = _norm(add), _norm(drop)
    return sorted(c for c in a if c != "RESET"), sorted(c for c in d - a if c != "RESET")


def ulimits(ctx: ConvertContext, key: str, value) -> Optional[List[dict]]:
    """``ulimits`` -> ``[{Name, Soft, Hard}]`` sorted by name (an int sets both)."""
    if not value:
        return None
    out = []
    for name, u in value.items():
        if isinstance(u, dict):
            soft, hard = u.get("soft"), u.get("hard")
        else:
            soft = hard = u
        try:
            out.append({"Name": str(name), "Soft": int(soft), "Hard": int(hard)})
        except (TypeError, ValueError):
            ctx.fail(f"{key}.{name}", "ulimit needs an integer or soft and hard integers")
    return sorted(out, key=lambda u: u["Name"])


def healthcheck(ctx: ConvertContext, key: str, hc) -> Optional[dict]:
    """``healthcheck`` -> Engine ``HealthConfig`` (durations ns).

    Forms (case c07): ``disable: true`` -> ``{"Test": ["NONE"]}``; a string test ->
    ``["CMD-SHELL", s]``; a list test as written; a block without ``test`` keeps the image's own
    check (no ``Test``) but sets the timings. Zero/unset timings are left out, as docker does.
    Raises:
        ManifestError: ``disable`` together with a test, or a bad duration.
    Source: docker/cli convert ``convertHealthcheck``.
    """
    if hc is None:
        return None
    if not isinstance(hc, dict):
        ctx.fail(key, "healthcheck must be a mapping")
    test = hc.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    elif test is not None:
        test = [as_str(t) for t in test]
    if hc.get("disable"):
        if test and test != ["NONE"]:
            ctx.fail(key, "test and disable can't be set at the same time")
        return {"Test": ["NONE"]}
    out: dict = {}
    if test:
        out["Test"] = test
    for src, dst in (("interval", "Interval"), ("timeout", "Timeout"),
                     ("start_period", "StartPeriod"), ("start_interval", "StartInterval")):
        if hc.get(src) is not None:
            ns = ctx.parse(f"{key}.{src}", parse_duration_ns, hc[src])
            if ns:
                out[dst] = ns
    if hc.get("retries") is not None:
        retries = ctx.parse(f"{key}.retries", int, hc["retries"])
        if retries:
            out["Retries"] = retries
    if "StartInterval" in out:
        ctx.warn(f"{key}.start_interval", "needs Engine API 1.44; older engines ignore it")
    return out


def restart_policy(ctx: ConvertContext, key: str, svc: dict) -> Optional[dict]:
    """``deploy.restart_policy`` (else the legacy ``restart``) -> ``RestartPolicy``.

    ``restart: always|unless-stopped`` -> condition any; ``on-failure[:N]`` -> on-failure with
    MaxAttempts N; ``no`` -> none set.
    Args:
        key: the service's key path (``services.web``).
    Source: docker/cli convert ``convertRestartPolicy``.
    """
    rp = (svc.get("deploy") or {}).get("restart_policy")
    rkey = f"{key}.deploy.restart_policy"
    if rp is not None:
        out: dict = {}
        if rp.get("condition"):
            out["Condition"] = str(rp["condition"])
        for src, dst in (("delay", "Delay"), ("window", "Window")):
            if rp.get(src) is not None:
                out[dst] = ctx.parse(f"{rkey}.{src}", parse_duration_ns, rp[src])
        if rp.get("max_attempts") is not None:
            out["MaxAttempts"] = ctx.parse(f"{rkey}.max_attempts", int, rp["max_attempts"])
        return out
    restart = svc.get("restart")
    if not restart or restart == "no":
        return None
    name, _, count = str(restart).partition(":")
    attempts = ctx.parse(f"{key}.restart", int, count) if count else 0
    if name in ("always", "unless-stopped"):
        cond = "any"
    elif name == "on-failure":
        cond = "on-failure"
    else:
        ctx.fail(f"{key}.restart",
                 f"unknown restart policy {restart!r} (no, always, on-failure, unless-stopped)")
    out = {"Condition": cond}
    if attempts > 0:
        out["MaxAttempts"] = attempts
    return out


def resources(ctx: ConvertContext, key: str, res: Optional[dict]) -> Optional[dict]:
    """``deploy.resources`` -> ``{Limits{NanoCPUs, MemoryBytes, Pids}, Reservations{...}}``.

    ``cpus`` may be a string or (Keelson only) a number: exact NanoCPUs (case c05).
    Source: docker/cli convert ``convertResources``.
    """
    if not res:
        return None
    out: dict = {}
    for src, dst in (("limits", "Limits"), ("reservations", "Reservations")):
        part = res.get(src)
        if part is None:
            continue
        spec: dict = {}
        if part.get("cpus") is not None:
            spec["NanoCPUs"] = ctx.parse(f"{key}.{src}.cpus", parse_nano_cpus, part["cpus"])
        if part.get("memory") is not None:
            spec["MemoryBytes"] = ctx.parse(f"{key}.{src}.memory", parse_bytes, part["memory"])
        if src == "limits" and part.get("pids") is not None:
            spec["Pids"] = ctx.parse(f"{key}.{src}.pids", int, part["pids"])
        generic = []
        for i, g in enumerate(part.get("generic_resources") or []):
            d = (g or {}).get("discrete_resource_spec")
            if not d:
                ctx.fail(f"{key}.{src}.generic_resources.{i}", "needs discrete_resource_spec")
            generic.append({"DiscreteResourceSpec": {"Kind": str(d["kind"]),
                                                     "Value": int(d["value"])}})
        if generic:
            spec["GenericResources"] = generic
        out[dst] = {k: v for k, v in spec.items() if v}
    return out


def mode(ctx: ConvertContext, key: str, deploy: dict) -> dict:
    """``deploy.mode``/``replicas`` -> ``Mode`` (``{"Replicated": {}}`` when replicas unset).

    Raises:
        ManifestError: unknown mode, or replicas with a global mode.
    Source: docker/cli convert ``convertDeployMode``.
    """
    m = deploy.get("mode") or "replicated"
    replicas = deploy.get("replicas")
    if replicas is not None:
        replicas = ctx.parse(f"{key}.replicas", int, replicas)
        if replicas < 0:
            ctx.fail(f"{key}.replicas", "replicas must be >= 0")
    if m not in _MODES:
        ctx.fail(f"{key}.mode", f"unknown mode {m!r} (one of {', '.join(_MODES)})")
    if m.startswith("global"):
        if replicas is not None:
            ctx.fail(f"{key}.replicas", "replicas can only be used with replicated mode")
        return {"GlobalJob": {}} if m == "global-job" else {"Global": {}}
    if m == "replicated-job":
        job = {} if replicas is None else {"MaxConcurrent": replicas, "TotalCompletions": replicas}
        return {"ReplicatedJob": job}
    return {"Replicated": {} if replicas is None else {"Replicas": replicas}}


def update_config(ctx: ConvertContext, key: str, uc: Optional[dict], *,
                  keelson_default: bool) -> Optional[dict]:
    """``update_config``/``rollback_config`` -> ``UpdateConfig`` (durations ns).

    Parallelism defaults to 1 as in docker. Keelson difference (``keelson_default`` for
    update_config only): FailureAction defaults to ``rollback`` (Swarm's default is ``pause``),
    and with no update_config at all Keelson sends ``{Parallelism: 1, FailureAction: rollback,
    Monitor: 5s}`` (an UpdateConfig without Parallelism/Monitor would mean "all at once, no
    monitoring"); docker sends none.
    Source: docker/cli convert ``convertUpdateConfig``.
    """
    if uc is None:
        if not keelson_default:
            return None
        return {"Parallelism": DEFAULT_PARALLELISM, "FailureAction": KEELSON_FAILURE_ACTION,
                "Monitor": DEFAULT_MONITOR_NS}
    out: dict = {"Parallelism": DEFAULT_PARALLELISM}
    if uc.get("parallelism") is not None:
        out["Parallelism"] = ctx.parse(f"{key}.parallelism", int, uc["parallelism"])
    for src, dst in (("delay", "Delay"), ("monitor", "Monitor")):
        if uc.get(src) is not None:
            ns = ctx.parse(f"{key}.{src}", parse_duration_ns, uc[src])
            if ns:
                out[dst] = ns
    if uc.get("failure_action"):
        out["FailureAction"] = str(uc["failure_action"])
    elif keelson_default:
        out["FailureAction"] = KEELSON_FAILURE_ACTION
    if uc.get("max_failure_ratio"):
        out["MaxFailureRatio"] = ctx.parse(f"{key}.max_failure_ratio", float,
                                           uc["max_failure_ratio"])
    if uc.get("order"):
        out["Order"] = str(uc["order"])
    return out


def placement(ctx: ConvertContext, key: str, pl: Optional[dict]) -> Optional[dict]:
    """``deploy.placement`` -> ``Placement{Constraints, Preferences, MaxReplicas}``."""
    if not pl:
        return None
    out: dict = {}
    if pl.get("constraints"):
        out["Constraints"] = string_list(ctx, f"{key}.constraints", pl["constraints"])
    prefs = [{"Spread": {"SpreadDescriptor": str(p["spread"])}}
             for p in pl.get("preferences") or [] if isinstance(p, dict) and p.get("spread")]
    if prefs:
        out["Preferences"] = prefs  # order is meaningful: a tree of spreads
    if pl.get("max_replicas_per_node") is not None:
        n = ctx.parse(f"{key}.max_replicas_per_node", int, pl["max_replicas_per_node"])
        if n:
            out["MaxReplicas"] = n
    return out or None
