"""What a registry's refusal means, read from the Engine's answer (issue 9).

The Engine relays registry failures as text: ``/distribution`` answers 401 "unauthorized:
authentication required" for wrong credentials, 500 "no basic auth credentials" when none were
sent, 404 "manifest unknown" for a missing repository or tag, and 500 with the dial error
("connection refused", "no such host", "i/o timeout") when the registry is down; a push or a
build's ``FROM`` pull reports the same texts in-band (observed on dockerd 20.10 against Debian's
docker-registry with htpasswd auth; tests/integration/test_registry_auth.py). Pure: no I/O.
"""
from __future__ import annotations

from typing import Optional

from controller.errors import RegistryFault

# checked in this order: "pull access denied ... repository does not exist or may require
# 'docker login'" (Docker Hub's answer for both) counts as unauthorised
_UNAUTHORIZED = ("unauthorized", "no basic auth credentials", "authentication required",
                 "access denied", "access to the resource is denied", "denied:",
                 "incorrect username or password", "forbidden", "401 unauthorized")
_UNTRUSTED = ("x509:", "certificate signed by unknown authority", "certificate is not valid",
              "server gave http response to https client", "tls: ")
_NOT_FOUND = ("manifest unknown", "name unknown", "not found", "repository does not exist",
              "no such image")
_UNREACHABLE = ("connection refused", "no such host", "i/o timeout", "timeout", "timed out",
                "network is unreachable", "no route to host", "connection reset", "eof",
                "dial tcp", "temporary failure in name resolution")

_HINTS = {
    RegistryFault.UNAUTHORIZED: "the registry refused: no or wrong credentials for it "
                                "(KEELSON_REGISTRY_AUTH_FILE, KEELSON_REGISTRY_USERNAME_FILE)",
    RegistryFault.NOT_FOUND: "not found: the registry has no such repository or tag",
    RegistryFault.UNREACHABLE: "the registry cannot be reached",
    RegistryFault.UNTRUSTED: "the registry's TLS certificate is not trusted by dockerd "
                             "(/etc/docker/certs.d/<host:port>/ca.crt)",
}


def registry_fault(message: str, status_code: Optional[int] = None) -> Optional[RegistryFault]:
    """Classify a failed registry request.

    Args:
        message: the Engine's error text (an APIError's explanation or an in-band ``error``).
        status_code: the HTTP status the Engine answered, when there was one.
    Returns:
        RegistryFault, or None when the text says nothing known (e.g. a 5xx from the registry).
    """
    text = (message or "").lower()
    if status_code in (401, 403) or any(w in text for w in _UNAUTHORIZED):
        return RegistryFault.UNAUTHORIZED
    if any(w in text for w in _UNTRUSTED):
        return RegistryFault.UNTRUSTED
    if status_code == 404 or any(w in text for w in _NOT_FOUND):
        return RegistryFault.NOT_FOUND
    if any(w in text for w in _UNREACHABLE):
        return RegistryFault.UNREACHABLE
    return None


_PULL_WORDS = ("manifest", "/v2/", "pull", "registry", "credentials", "unauthorized", "denied",
               "x509")


def build_fault(error: str) -> Optional[RegistryFault]:
    """:func:`registry_fault` for a build's in-band error, counted only when the text is about
    a registry (a ``FROM`` pull): "COPY failed: file not found" is the build's own fault."""
    text = (error or "").lower()
    if "returned a non-zero code" in text:  # a RUN step failed: its command text is quoted
        return None
    return registry_fault(error) if any(w in text for w in _PULL_WORDS) else None


def describe(what: str, reference: str, message: str, fault: Optional[RegistryFault]) -> str:
    """``<what> <image>: <plain words for the fault> (<engine text>)``, naming the image.

    Args:
        what: the operation (``resolve``, ``push``, ``build``). reference: the image.
        message: the Engine's text. fault: from :func:`registry_fault`.
    """
    if fault is None:
        return f"{what} {reference}: {message}"
    return f"{what} {reference}: {_HINTS[fault]} ({message})"
