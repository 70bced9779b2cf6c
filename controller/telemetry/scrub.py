"""Credential scrubbing: the one function every text passes before it leaves Keelson.

Error texts and build logs can carry secrets that Keelson never meant to show: git prints the
remote URL (``https://user:token@host/...``), a build step echoes an environment variable, a
Dockerfile parse error quotes the first word of whatever file it was given. ``scrub()`` replaces
anything that looks like a credential with ``***`` before the text reaches ``/api/status`` (the
StatusStore), a log line (the logfmt formatter), a state-record label (``record_labels``) or the
CLI's output. It is pure and idempotent (``scrub(scrub(t)) == scrub(t)``).

What counts as a credential (each rule keeps just enough around it to read the error):

- URL userinfo: ``scheme://user:password@host`` and ``scheme://token@host`` -> ``scheme://***@host``;
  a URL cut off inside ``user:pass`` at the end of a truncated text loses the rest.
- Tokens of known shapes: GitHub (``ghp_``, ``gho_``, ``ghu_``, ``ghs_``, ``ghr_``,
  ``github_pat_``), GitLab (``glpat-``, ``gldt-``, ``glrt-``...), Slack (``xox?-``), AWS access
  key ids (``AKIA``/``ASIA`` + 16), each replaced whole.
- HTTP credentials: ``Authorization: <scheme> <value>``, ``Bearer <value>``, ``Basic <value>``,
  and the Engine's registry login headers ``X-Registry-Auth`` / ``X-Registry-Config``.
- ``key=value`` / ``key: value`` pairs whose key ends in password, passwd, pwd, secret, token,
  api_key/apikey, access_key, secret_key, private_key, credential(s) or auth (any case, any
  prefix such as ``DB_PASSWORD``), or identitytoken / registrytoken (a Docker config.json's
  fields, issue 9): the value is replaced. A config.json's ``"auth": "<base64>"`` is a pair too.
- PEM private keys (``-----BEGIN ... PRIVATE KEY-----`` up to its END line, or to the end of the
  text when truncated), replaced by ``<private key ***>``.
- Optionally, exact values the caller knows to be secret (``known``), e.g. the git token.

Sources of the token shapes: GitHub's "About authentication to GitHub" (token prefixes),
GitLab's "Token overview" (prefixes), AWS IAM "Unique identifiers" (AKIA/ASIA key ids).
"""
from __future__ import annotations

import re
from typing import Iterable, TextIO

MASK = "***"

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
                  re.DOTALL)
# Every pattern runs in linear time on hostile input (build output is the repo's to choose): each
# can start only at a literal or a word start, and no quantified part can match the same text
# two ways. tests/unit/test_scrub.py times them on 1 MB of the worst inputs found.
_SCHEME = r"\b([a-z][a-z0-9+.-]{0,31}://)"  # RFC 3986 scheme, length-capped
# scheme://userinfo@ : userinfo has no '/', '@' or whitespace (RFC 3986 section 3.2.1).
_USERINFO = re.compile(r"(?i)" + _SCHEME + r"(?!\*\*\*@)[^/@\s'\"<>]+@")
# a URL cut off (a message truncated to fit a label) inside ``user:password``: no '@' yet, a colon
# followed by something other than a port number, up to the end of the text
_USERINFO_CUT = re.compile(r"(?i)" + _SCHEME + r"(?!\*\*\*)[^/@\s'\"<>:]*:(?!\d*\Z)[^/@\s'\"<>]*\Z")
_TOKENS = re.compile(
    r"\b(?:"
    r"gh[pousr]_[A-Za-z0-9]{16,}"                       # GitHub classic, OAuth, app tokens
    r"|github_pat_[A-Za-z0-9_]{20,}"                     # GitHub fine-grained
    r"|gl(?:pat|dt|rt|ptt|ft|imt|agent|oas|cbt|soat|ffct)-[A-Za-z0-9_-]{16,}"  # GitLab
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"                     # Slack
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}"                        # AWS access key id
    r")")
# Authorization, and the Engine's registry login headers (X-Registry-Auth, X-Registry-Config:
# base64 JSON of a registry login, issue 9)
_AUTH_HEADER = re.compile(r"(?i)\b((?:authorization|x-registry-auth|x-registry-config)\s*[:=]\s*)"
                          r"(?:[A-Za-z-]+\s+)?[^\s'\",;]+")
# a value must hold a digit or one of + / = _ ~ - so that prose ("basic configuration") stays
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic)(\s+)(?!\*\*\*)(?=[A-Za-z]*[0-9+/=_~-])"
                          r"[A-Za-z0-9._~+/=-]{6,}")
_KEY_WORDS = (r"password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key"
              r"|private[_-]?key|credentials?|auth|identitytoken|registrytoken")
# key = a word whose last part (after _ . or -) is a key word; the parts split one way only
_PAIR = re.compile(
    r"(?i)(?<![A-Za-z0-9_.-])((?:[A-Za-z0-9]*[_.-])*(?:" + _KEY_WORDS + r")[\"']?[ \t]*[=:][ \t]*)"
    r"(?!\*\*\*)(\"[^\"\n]*\"|'[^'\n]*'|[^\s\"',;&}]+)")


def scrub(text: str, known: Iterable[str] = ()) -> str:
    """Replace anything in ``text`` that looks like a credential with ``***``.

    Args:
        text: any text (an error message, a build log, a log line); non-str values are
            converted with ``str()``.
        known: exact secret values to remove as well (values shorter than 4 characters are
            ignored: masking every "a" would make the text unreadable and protect nothing).
    Returns:
        str: the text with every match replaced; unchanged when nothing matched. Idempotent.
    """
    if not isinstance(text, str):
        text = str(text)
    for value in known:
        if value and len(value) >= 4:
            text = text.replace(value, MASK)
    if not text:
        return text
    text = _PEM.sub(f"<private key {MASK}>", text)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = _USERINFO_CUT.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _TOKENS.sub(MASK, text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _PAIR.sub(lambda m: f"{m.group(1)}{MASK}", text)


class ScrubbingWriter:
    """A text stream wrapper whose every ``write`` passes through ``scrub()``, for the CLI's
    printed reports (``plan``, ``sync``, ``validate``), which CI logs often publish.

    Args:
        out: the stream written to (e.g. ``sys.stdout``).
    """

    def __init__(self, out: TextIO):
        self._out = out

    def write(self, text: str) -> int:
        """Write ``text`` scrubbed.

        Args:
            text: what ``print`` or a caller writes (one call per ``print`` argument list).
        Returns:
            int: characters written (of the scrubbed text).
        """
        return self._out.write(scrub(text))

    def flush(self) -> None:
        """Flush the wrapped stream."""
        self._out.flush()
