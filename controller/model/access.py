"""Verdicts of the HTTP side's access rules (issue 7): one spelling for each outcome."""
from __future__ import annotations

import enum


class ApiAccess(enum.Enum):
    """Verdict on one request to a token-protected API route (see ``controller.http.auth``)."""

    ALLOWED = "allowed"  # loopback bind, or the right bearer token
    NO_TOKEN_CONFIGURED = "no_token_configured"  # bound beyond loopback, KEELSON_API_TOKEN_FILE unset
    DENIED = "denied"  # missing or wrong bearer token
