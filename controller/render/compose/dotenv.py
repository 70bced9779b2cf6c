"""Parse ``.env`` and ``env_file`` files (``KEY=VALUE`` lines).

The format follows docker compose's dotenv reading (compose-go ``dotenv``), reduced to what stack
files use:

- blank lines and lines starting with ``#`` are skipped; an ``export `` prefix is allowed;
- ``KEY=value``: surrounding blanks trimmed, a `` #`` (blank then hash) starts a comment;
- ``KEY='value'``: literal, may span lines; ``KEY="value"``: ``\\n \\t \\r \\\\ \\" \\$``
  escapes, may span lines; text after the closing quote may only be a comment;
- ``KEY`` alone takes the value of ``lookup(KEY)`` when given and set, else the line is skipped.

Not done: ``${VAR}`` interpolation inside ``.env`` values (compose-go does it).
"""
from __future__ import annotations

import re
from typing import Callable, Dict, List, Optional

from controller.errors import ManifestError

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "$": "$"}


def parse_dotenv(text: str, *, lookup: Optional[Callable[[str], Optional[str]]] = None
                 ) -> Dict[str, str]:
    """Read ``KEY=VALUE`` pairs from the text of a ``.env`` or ``env_file`` file.

    Linear in the size of ``text`` (issue 7: the repo is semi-trusted, so an unterminated quote
    or a long run of blanks must not cost more than reading the file once).

    Args:
        text: the file's content.
        lookup: variable name -> value or None, for lines holding a bare ``KEY``.
    Returns:
        dict name -> value (str), in file order; a later line wins over an earlier one.
    Raises:
        ManifestError: a line that is not ``KEY=VALUE`` or an unterminated quote, with ``line``
            set (1-based; ``file`` and ``stack`` are left to the caller).
    """
    out: Dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        lineno, raw = i + 1, lines[i]
        i += 1
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export"):].lstrip()
        m = _KEY_RE.match(line)
        if not m:
            raise ManifestError(f"not a KEY=VALUE line: {_shorten(raw)!r}", line=lineno)
        key, rest = m.group(0), line[m.end():].lstrip()
        if not rest:
            value = lookup(key) if lookup else None
            if value is not None:
                out[key] = value
            continue
        if not rest.startswith("="):
            raise ManifestError(f"not a KEY=VALUE line: {_shorten(raw)!r}", line=lineno)
        rest = rest[1:].lstrip()
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            # A quoted value may run over several lines until its closing quote: each line is
            # scanned once.
            parts: List[str] = []
            segment = rest[1:]
            while True:
                end = _closing_quote(segment, quote)
                if end >= 0:
                    parts.append(segment[:end])
                    tail = segment[end + 1:].strip()
                    break
                parts.append(segment)
                if i >= len(lines):
                    raise ManifestError(f"unterminated {quote} quote in value of {key}",
                                        line=lineno)
                segment = lines[i]
                i += 1
            if tail and not tail.startswith("#"):
                raise ManifestError(f"unexpected text after the quoted value of {key}: "
                                    f"{_shorten(tail)!r}", line=lineno)
            value = "\n".join(parts)
            out[key] = _unescape(value) if quote == '"' else value
        else:
            out[key] = _before_comment(rest).strip()
    return out


def _closing_quote(segment: str, quote: str) -> int:
    """Index of the unescaped closing ``quote`` in one line of a quoted value, or -1.

    A backslash (``"`` only) escapes the next character; one at the end of the line escapes
    the line break, so the next line is scanned from its start either way.
    """
    j, n = 0, len(segment)
    while j < n:
        c = segment[j]
        if c == "\\" and quote == '"':
            j += 2
            continue
        if c == quote:
            return j
        j += 1
    return -1


def _before_comment(value: str) -> str:
    """``value`` up to a `` #`` (a blank then a hash) that starts a comment, in one scan."""
    j = value.find("#", 1)
    while j >= 0:
        if value[j - 1].isspace():
            return value[:j]
        j = value.find("#", j + 1)
    return value


def _shorten(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters for an error message."""
    return text if len(text) <= limit else text[:limit] + "..."


def _unescape(value: str) -> str:
    out, j = [], 0
    while j < len(value):
        c = value[j]
        if c == "\\" and j + 1 < len(value) and value[j + 1] in _ESCAPES:
            out.append(_ESCAPES[value[j + 1]])
            j += 2
            continue
        out.append(c)
        j += 1
    return "".join(out)
