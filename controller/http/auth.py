"""Who may read ``/api/status`` (and any future API that can act): the bearer-token rule.

The rule is decided by the address the server is bound to, not by the client's address: behind
Docker's port publishing, a proxy or a sidecar, a request's source address says little, while a
loopback bind (``127.0.0.0/8``, ``::1``, ``localhost``) is reachable only from the same network
namespace. So:

- loopback bind: the API is open (the demo and a developer's shell); no token is asked;
- any other bind (``0.0.0.0``, ``::``, an interface address, a host name): the API needs
  ``Authorization: Bearer <token>`` with the token from KEELSON_API_TOKEN_FILE; with no token
  configured it answers 401 to everyone.

``/metrics``, ``/healthz`` and ``/readyz`` never need a token (Prometheus and the probes).

The per-stack controls (``/api/stacks/NAME/...``, issue 13.3) can act, so they are stricter
(``control_access``): once a token is configured they need it on a loopback bind too.
"""
from __future__ import annotations

import hmac
import ipaddress
from typing import Mapping

from controller.model.access import ApiAccess

__all__ = ["ApiAccess", "api_access", "bearer_token", "control_access", "is_loopback_host"]


def is_loopback_host(host: str) -> bool:
    """Whether a bind host is reachable only from this network namespace.

    Args:
        host: the host part of ``--listen`` (``127.0.0.1``, ``::1``, ``localhost``, ``0.0.0.0``,
            ``""``, a name or an address).
    Returns:
        bool: True for ``localhost`` and any address in 127.0.0.0/8 or ``::1`` (IPv4-mapped
        loopback included); False for the wildcard, any other address and any other name (a name
        may resolve anywhere, so it counts as beyond loopback).
    """
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost."):
        return True
    try:
        addr = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return bool(addr.is_loopback or (mapped is not None and mapped.is_loopback))


def bearer_token(headers: Mapping[str, str]) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (scheme in any case), or ``""``.

    Args:
        headers: request headers (a dict or ``email.message.Message``; names in any case).
    Returns:
        str: the token, stripped; empty when the header is missing or not a Bearer one.
    """
    value = ""
    for name, val in headers.items():
        if str(name).lower() == "authorization":
            value = str(val)
            break
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def api_access(headers: Mapping[str, str], token: str, loopback_bind: bool) -> ApiAccess:
    """Decide whether a request may use a protected API route.

    Args:
        headers: the request headers.
        token: the configured API token (KEELSON_API_TOKEN_FILE's content); empty when unset.
        loopback_bind: ``is_loopback_host`` of the server's bind host.
    Returns:
        ApiAccess: ALLOWED on a loopback bind or with the right token (compared in constant
        time, ``hmac.compare_digest``); NO_TOKEN_CONFIGURED beyond loopback without a token;
        DENIED otherwise.
    """
    if loopback_bind:
        return ApiAccess.ALLOWED
    if not token:
        return ApiAccess.NO_TOKEN_CONFIGURED
    given = bearer_token(headers)
    same = hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                               token.encode("utf-8", "surrogateescape"))
    return ApiAccess.ALLOWED if given and same else ApiAccess.DENIED


def control_access(headers: Mapping[str, str], token: str, loopback_bind: bool) -> ApiAccess:
    """Decide whether a request may use a control route (``/api/stacks/NAME/...``).

    Args:
        headers: the request headers.
        token: the configured API token; empty when unset.
        loopback_bind: ``is_loopback_host`` of the server's bind host.
    Returns:
        ApiAccess: with a token configured, ALLOWED only with that token (on any bind);
        without one, ALLOWED on a loopback bind and NO_TOKEN_CONFIGURED beyond it.
    """
    if token:
        return api_access(headers, token, loopback_bind=False)
    return api_access(headers, token, loopback_bind)
