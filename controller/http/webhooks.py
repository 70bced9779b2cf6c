"""Webhooks, ``POST /hooks/git``: signature checks (pure: headers and body in, verdict out), the
bounded memory of deliveries already accepted (replay refusal), and ``answer_webhook``, the
route's answer to a received body (the request handler reads the body and sends the answer).

A webhook only wakes the reconcile loop (the loop fetches the repo itself and trusts nothing in
the payload), so the secret guards against anyone making Keelson poll on demand. Without a
secret every POST is refused unless the operator allows unsigned webhooks
(KEELSON_WEBHOOK_ALLOW_UNSIGNED=true; issue 7). Accepted proofs:

- GitHub (and Gitea/Forgejo, which send it too): ``X-Hub-Signature-256: sha256=<hex>``, the
  HMAC-SHA256 of the raw body keyed with the secret.
- Gitea/Forgejo: ``X-Gitea-Signature: <hex>`` (also ``X-Forgejo-Signature``), the same HMAC
  without the ``sha256=`` prefix.
- GitLab: ``X-Gitlab-Token: <secret>``, the secret itself.

Every comparison is constant-time.

Replays: a delivery is remembered by its id (``X-GitHub-Delivery``, ``X-Gitlab-Event-UUID``,
``X-Gitea-Delivery``/``X-Forgejo-Delivery``) and, when a secret is set, by the SHA-256 of its
body: forges do not sign the id header, so a captured delivery replayed under a new id is still
caught by its (signed) body. ``DeliveryMemory`` keeps the most recent keys only (bounded).
"""
from __future__ import annotations

import collections
import hashlib
import hmac
import logging
import threading
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable, Dict, Mapping, Tuple

# The HTTP endpoint logs under one name, whichever of its modules writes the line.
log = logging.getLogger("controller.http.server")

MAX_WEBHOOK_BODY_BYTES = 4 * 1024 * 1024  # forges send well under 1 MiB; refuse floods

GITHUB_HEADER = "x-hub-signature-256"
GITEA_HEADERS = ("x-gitea-signature", "x-forgejo-signature")
GITLAB_HEADER = "x-gitlab-token"
# Delivery id headers, per forge docs: GitHub "Webhook events and payloads" (X-GitHub-Delivery),
# GitLab "Webhooks" (X-Gitlab-Event-UUID), Gitea/Forgejo "Webhooks" (X-Gitea-Delivery).
DELIVERY_HEADERS = ("x-github-delivery", "x-gitlab-event-uuid", "x-gitea-delivery",
                    "x-forgejo-delivery")
MAX_DELIVERY_ID_CHARS = 128  # ids are UUIDs (36); a longer header is cut, not stored whole


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


def verify_webhook(headers: Mapping[str, str], body: bytes, secret: str,
                   allow_unsigned: bool = False) -> bool:
    """Decide whether a webhook request may wake the loop.

    Args:
        headers: request headers (names in any case; a dict or ``email.message.Message``).
        body: the raw request body, bytes exactly as received.
        secret: the configured secret; when set, a valid proof is always required.
        allow_unsigned: with no secret, accept any POST (KEELSON_WEBHOOK_ALLOW_UNSIGNED);
            False (the default) refuses every POST while no secret is set.
    Returns:
        bool: with a secret, True when any one of the GitHub, Gitea/Forgejo or GitLab proofs
        above is present and valid; without one, ``allow_unsigned``.
    Raises:
        Nothing: malformed headers count as invalid.
    """
    if not secret:
        return allow_unsigned
    h = _lower(headers)
    if GITHUB_HEADER in h and github_signature_valid(body, secret, h[GITHUB_HEADER]):
        return True
    for name in GITEA_HEADERS:
        if name in h and gitea_signature_valid(body, secret, h[name]):
            return True
    return GITLAB_HEADER in h and gitlab_token_valid(secret, h[GITLAB_HEADER])


def replay_keys(headers: Mapping[str, str], body: bytes, signed: bool) -> Tuple[str, ...]:
    """The keys a delivery is remembered by, for replay refusal.

    Args:
        headers: request headers (any case).
        body: the raw request body.
        signed: True when the delivery was authenticated with a secret; only then is the body
            a key (an unsigned body proves nothing, and test POSTs often repeat ``{}``).
    Returns:
        tuple[str, ...]: ``id:<delivery id>`` when a delivery header is present (cut to 128
        characters), and ``body:<sha256 hex>`` when ``signed``; possibly empty.
    """
    h = _lower(headers)
    keys = []
    for name in DELIVERY_HEADERS:
        value = h.get(name, "").strip()
        if value:
            keys.append(f"id:{value[:MAX_DELIVERY_ID_CHARS]}")
            break
    if signed:
        keys.append("body:" + hashlib.sha256(body).hexdigest())
    return tuple(keys)


class DeliveryMemory:
    """The most recent accepted delivery keys (thread-safe, bounded, oldest forgotten first).

    Args:
        capacity: keys kept (default 1024: a busy repo's deliveries of many hours).
    """

    def __init__(self, capacity: int = 1024):
        self.capacity = max(1, capacity)
        self._keys: "collections.OrderedDict[str, None]" = collections.OrderedDict()
        self._lock = threading.Lock()

    def seen(self, keys: Tuple[str, ...]) -> bool:
        """Check ``keys`` and remember them, as one atomic step.

        Args:
            keys: from ``replay_keys``.
        Returns:
            bool: True when any key was remembered already (a replay; nothing is recorded),
            False when all are new (they are recorded, evicting the oldest beyond capacity).
        """
        with self._lock:
            if any(k in self._keys for k in keys):
                return True
            for k in keys:
                self._keys[k] = None
            while len(self._keys) > self.capacity:
                self._keys.popitem(last=False)
            return False


@dataclass(frozen=True)
class WebhookAnswer:
    """What ``POST /hooks/git`` answers to one received body.

    Attributes:
        status: 202 queued, 401 not proven (or no secret and unsigned not allowed), 409 replay.
        payload: the small JSON object sent back (``{"status"}`` or ``{"error"}``).
    """

    status: HTTPStatus
    payload: Dict[str, str]


def answer_webhook(headers: Mapping[str, str], body: bytes, *, secret: str, allow_unsigned: bool,
                   deliveries: DeliveryMemory, wake: Callable[[], None],
                   client: str) -> WebhookAnswer:
    """Authenticate one webhook, refuse a replay, wake the loop; log the outcome.

    Args:
        headers: request headers (any case; a dict or ``email.message.Message``).
        body: the whole raw body, exactly as received.
        secret: the configured webhook secret (empty: none).
        allow_unsigned: KEELSON_WEBHOOK_ALLOW_UNSIGNED (with no secret, accept any POST).
        deliveries: the accepted deliveries remembered so far; an accepted one is added.
        wake: wakes the reconcile loop; called once, only for an accepted delivery.
        client: the peer's address, for logs.
    Returns:
        WebhookAnswer: 401 when ``verify_webhook`` refuses, 409 for a delivery already
        accepted, else 202 after ``wake()``.
    """
    sender = webhook_sender(headers)
    if not verify_webhook(headers, body, secret, allow_unsigned):
        if secret:
            log.warning("webhook rejected: missing or invalid signature",
                        extra={"sender": sender, "client": client})
            error = "invalid or missing signature"
        else:
            log.warning("webhook rejected: no webhook secret configured",
                        extra={"sender": sender, "client": client})
            error = ("no webhook secret configured: set KEELSON_WEBHOOK_SECRET_FILE "
                     "(or KEELSON_WEBHOOK_ALLOW_UNSIGNED=true)")
        return WebhookAnswer(HTTPStatus.UNAUTHORIZED, {"error": error})
    if deliveries.seen(replay_keys(headers, body, signed=bool(secret))):
        log.warning("webhook rejected: delivery already accepted (replay)",
                    extra={"sender": sender, "client": client})
        return WebhookAnswer(HTTPStatus.CONFLICT, {"error": "delivery already accepted"})
    wake()
    log.info("webhook received; reconcile queued", extra={"sender": sender})
    return WebhookAnswer(HTTPStatus.ACCEPTED, {"status": "queued"})
