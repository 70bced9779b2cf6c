"""A service's ``ports`` and ``endpoint_mode`` -> Engine ``EndpointSpec``.

Pure. Short syntax ``[ip:][published[-range]:]target[-range][/proto]`` follows docker's
``nat.ParsePortSpecs`` + ``ConvertPortToPortConfig`` (an IP is ignored: Swarm listens on all
addresses). Source: docker/cli ``cli/compose/loader`` toServicePortConfigs, convert
``convertEndpointSpec``.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

from controller.render.convert.context import ConvertContext

PROTOCOLS = ("tcp", "udp", "sctp")
PUBLISH_MODES = ("ingress", "host")


def _range(ctx: ConvertContext, key: str, text: str) -> Tuple[int, int]:
    """``8000`` or ``8000-8010`` -> (first, last), each 1..65535 (published may be 0)."""
    lo, sep, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        ctx.fail(key, f"invalid port {text!r}")
    if not (0 <= a <= b <= 65535):
        ctx.fail(key, f"invalid port range {text!r}")
    return a, b


def parse_short_port(ctx: ConvertContext, key: str, spec: str) -> List[dict]:
    """One short port spec -> ``[{Protocol, TargetPort, PublishedPort?, PublishMode: ingress}]``.

    Raises:
        ManifestError: bad numbers, protocol, or ranges of different lengths.
    """
    body, _, proto = str(spec).partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        ctx.fail(key, f"invalid protocol {proto!r} in {spec!r}")
    # an IPv6 host ip is bracketed; drop it (docker warns and ignores it too)
    if body.startswith("["):
        body = body[body.index("]") + 2:] if "]:" in body else body
    parts = body.split(":")
    if len(parts) == 3:
        parts = parts[1:]
    if len(parts) == 1:
        published, target = "", parts[0]
    elif len(parts) == 2:
        published, target = parts
    else:
        ctx.fail(key, f"invalid port spec {spec!r}")
    t0, t1 = _range(ctx, key, target)
    targets = list(range(t0, t1 + 1))
    if not published:
        return [{"Protocol": proto, "TargetPort": t, "PublishMode": "ingress"} for t in targets]
    p0, p1 = _range(ctx, key, published)
    pubs = list(range(p0, p1 + 1))
    if len(targets) == 1 and len(pubs) > 1:
        pairs = [(targets[0], p) for p in pubs]
    elif len(targets) == len(pubs):
        pairs = list(zip(targets, pubs))
    else:
        ctx.fail(key, f"port ranges of different sizes in {spec!r}")
    return [{"Protocol": proto, "TargetPort": t, "PublishedPort": p, "PublishMode": "ingress"}
            for t, p in pairs]


def endpoint_spec(ctx: ConvertContext, svc_name: str, svc: dict) -> Optional[dict]:
    """``ports`` + ``deploy.endpoint_mode`` -> ``EndpointSpec{Mode, Ports}`` or None.

    Protocol (``tcp``) and PublishMode (``ingress``) are always written: the engine stores them
    so, and a spec that says them compares equal to the stored one. Ports sorted.
    Raises:
        ManifestError: a bad short spec, missing target, unknown protocol or mode.
    """
    key = f"services.{svc_name}.ports"
    ports: List[dict] = []
    for i, item in enumerate(svc.get("ports") or []):
        ikey = f"{key}.{i}"
        if isinstance(item, (str, int)) and not isinstance(item, bool):
            ports.extend(parse_short_port(ctx, ikey, str(item)))
            continue
        if not isinstance(item, dict) or item.get("target") is None:
            ctx.fail(ikey, "a long-form port needs a target")
        proto = str(item.get("protocol") or "tcp").lower()
        pmode = str(item.get("mode") or "ingress")
        if proto not in PROTOCOLS:
            ctx.fail(f"{ikey}.protocol", f"invalid protocol {proto!r}")
        if pmode not in PUBLISH_MODES:
            ctx.fail(f"{ikey}.mode", f"invalid publish mode {pmode!r} (ingress or host)")
        target = ctx.parse(f"{ikey}.target", int, item["target"])
        pubs = [None]
        if item.get("published") not in (None, ""):
            p0, p1 = _range(ctx, f"{ikey}.published", str(item["published"]))
            pubs = list(range(p0, p1 + 1))
        for p in pubs:
            port = {"Protocol": proto, "TargetPort": target, "PublishMode": pmode}
            if p:
                port["PublishedPort"] = p
            ports.append(port)
    out: dict = {}
    em = (svc.get("deploy") or {}).get("endpoint_mode")
    if em:
        out["Mode"] = str(em).lower()
    if ports:
        out["Ports"] = sorted(ports, key=lambda p: (p.get("PublishedPort", 0), p["TargetPort"],
                                                    p["Protocol"], p["PublishMode"]))
    return out or None
