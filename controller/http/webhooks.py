"""Webhook authentication for ``POST /hooks/git`` (pure: headers and body in, verdict out).

A webhook only wakes the reconcile loop (the loop fetches the repo itself and trusts nothing in
the payload), so the secret guards against anyone making Keelson poll on demand. Accepted proofs:

- GitHub (and Gitea/Forgejo, which send it too): ``X-Hub-Signature-256: sha256=<hex>``, the
  HMAC-SHA256 of the raw body keyed with the secret.
- Gitea/Forgejo: ``X-Gitea-Signature: <hex>`` (also ``X-Forgejo-Signature``), the same HMAC
  without the ``sha256=`` prefix.
- GitLab: ``X-Gitlab-Token: <secret>``, the secret itself.

Every comparison is constant-time.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Any, Mapping

GITHUB_HEADER = "x-hub-signature-256"
GITEA_HEADERS = ("x-gitea-signature", "x-forgejo-signature")
GITLAB_HEADER = "x-gitlab-token"


def _lower(headers: Any) -> dict:
    """Header name (lower case) -> value; accepts a dict or an ``email.message.Message``."""
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _same(a: str, b: str) -> bool:
    """Constant-time equality of two header strings (bytes: non-ASCII input must not raise)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"),
                               b.encode("utf-8", "surrogateescape"))


def body_hmac_sha256(body: bytes, secret: str) -> str:
    """HMAC-SHA256 of ``body`` keyed with ``secret``.

    Args:
        body: the raw request body, exactly as received.
        secret: the shared webhook secret.
    Returns:
        str: 64 lower-case hex digits.
    """
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def github_signature_valid(body: bytes, secret: str, header: str) -> bool:
    """Check a GitHub-style ``X-Hub-Signature-256`` value (``sha256=<hex>``).

    Args:
        body: raw request body. secret: shared secret. header: the header's value.
    Returns:
        bool: True when the header carries the body's HMAC (hex compared case-insensitively).
    """
    prefix, _, digest = header.strip().partition("=")
    if prefix.lower() != "sha256" or not digest:
        return False
    return _same(digest.lower(), body_hmac_sha256(body, secret))


def gitea_signature_valid(body: bytes, secret: str, header: str) -> bool:
    """Check a Gitea/Forgejo ``X-Gitea-Signature`` value (bare hex HMAC-SHA256 of the body).

    Args:
        body: raw request body. secret: shared secret. header: the header's value.
    Returns:
        bool: True when the header is the body's HMAC.
    """
    digest = header.strip().lower()
    return bool(digest) and _same(digest, body_hmac_sha256(body, secret))


def gitlab_token_valid(secret: str, header: str) -> bool:
    """Check a GitLab ``X-Gitlab-Token`` value (the secret itself, sent as is).

    Args:
        secret: shared secret. header: the header's value.
    Returns:
        bool: True when the token equals the secret.
    """
    return bool(header) and _same(header, secret)


def webhook_sender(headers: Mapping[str, str]) -> str:
    """Name the forge that sent a webhook, for logs.

    Args:
        headers: request headers (any case).
    Returns:
        str: ``gitea``, ``gitlab``, ``github`` or ``unknown``.
    """
    h = _lower(headers)
    if any(k in h for k in GITEA_HEADERS) or "x-gitea-event" in h or "x-forgejo-event" in h:
        return "gitea"
    if GITLAB_HEADER in h or "x-gitlab-event" in h:
        return "gitlab"
    if GITHUB_HEADER in h or "x-github-event" in h:
        return "github"
    return "unknown"


def verify_webhook(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    """Decide whether a webhook request may wake the loop.

    Args:
        headers: request headers (names in any case; a dict or ``email.message.Message``).
        body: the raw request body, bytes exactly as received.
        secret: the configured secret; empty means no authentication is required.
    Returns:
        bool: True when ``secret`` is empty, or any one of the GitHub, Gitea/Forgejo or GitLab
        proofs above is present and valid; False otherwise (missing or wrong proof).
    Raises:
        Nothing: malformed headers count as invalid.
    """
    if not secret:
        return True
    h = _lower(headers)
    if GITHUB_HEADER in h and github_signature_valid(body, secret, h[GITHUB_HEADER]):
        return True
    for name in GITEA_HEADERS:
        if name in h and gitea_signature_valid(body, secret, h[name]):
            return True
    return GITLAB_HEADER in h and gitlab_token_valid(secret, h[GITLAB_HEADER])
