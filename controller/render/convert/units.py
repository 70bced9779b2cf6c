"""Compose value units -> the Engine API's integers (durations ns, sizes bytes, CPUs NanoCPUs).

Pure: no I/O, no third-party imports. Each parser follows the rule ``docker stack deploy`` uses
for the same key, so a stack file means the same thing to Keelson as to docker.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Union

# Go's time.ParseDuration units, in nanoseconds (both micro signs are accepted by Go).
_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")

# go-units RAMInBytes: binary multipliers, suffix k/m/g/t/p, optionally followed by "b" or "ib".
_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE = re.compile(r"^\s*(\d+\.?\d*|\.\d+)\s?([A-Za-z]*)\s*$")

_NANO = Decimal(1_000_000_000)


def parse_duration_ns(text: Union[str, int]) -> int:
    """Parse a Go duration (``1m30s``, ``500ms``, ``1h``, ``1.5s``) into nanoseconds.

    Args:
        text: the duration as written in the stack file. Bare numbers carry no unit and, as in
            Go's ``time.ParseDuration`` (which ``docker stack deploy`` uses), only ``0`` / ``"0"``
            is accepted without one.
    Returns:
        int: nanoseconds (may be negative when written with ``-``, as Go allows).
    Raises:
        ValueError: empty text, a number without a unit, an unknown unit, or trailing garbage.
    Source: Go ``time.ParseDuration``; docker/cli ``cli/compose/loader`` transformStringToDuration.
    """
    if isinstance(text, bool):
        raise ValueError(f"invalid duration {text!r}: expected a string such as '30s'")
    if isinstance(text, int):
        if text == 0:
            return 0
        raise ValueError(f"invalid duration {text!r}: missing unit (write e.g. '{text}s')")
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}: expected a string such as '30s'")
    s = text.strip()
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"invalid duration {text!r}: empty")
    total = Decimal(0)
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            if re.fullmatch(r"\d+\.?\d*", s[pos:]):
                raise ValueError(f"invalid duration {text!r}: missing unit (write e.g. '{s}s')")
            raise ValueError(f"invalid duration {text!r}: expected number+unit (ns, us, ms, s, m, h)")
        total += Decimal(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * int(total)  # Go truncates fractional nanoseconds


def parse_bytes(text: Union[str, int]) -> int:
    """Parse a memory size with docker's RAMInBytes rules (``64M``, ``1g``, ``256m``, ``1.5GiB``).

    Args:
        text: a size: an int (bytes) or a string of a number and an optional binary suffix
            ``b``, ``k``, ``m``, ``g``, ``t``, ``p`` (case-insensitive, optionally followed by
            ``b`` or ``ib``; all are powers of 1024).
    Returns:
        int: bytes (fractions truncated, as go-units does).
    Raises:
        ValueError: negative, empty, or an unknown suffix.
    Source: github.com/docker/go-units ``RAMInBytes`` (used by the compose loader for sizes).
    """
    if isinstance(text, bool):
        raise ValueError(f"invalid size {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"invalid size {text!r}: negative")
        return text
    if not isinstance(text, str):
        raise ValueError(f"invalid size {text!r}: expected a string such as '256M'")
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"invalid size {text!r}: expected a number and a unit such as 256M or 1g")
    num, sfx = Decimal(m.group(1)), m.group(2).lower()
    if sfx in ("", "b"):
        return int(num)
    mul = _BINARY.get(sfx[0])
    if mul is None or len(sfx) > 3 or sfx[1:] not in ("", "b", "ib"):
        raise ValueError(f"invalid size {text!r}: unknown suffix {m.group(2)!r} (use b, k, m, g, t, p)")
    return int(num * mul)


def parse_nano_cpus(value: Union[str, int, float, Decimal]) -> int:
    """Parse a CPU count (``"0.5"``, ``0.25``, ``2``) into NanoCPUs, exactly.

    Args:
        value: CPUs as a string decimal or a number. Floats are read through their shortest
            repr (``0.1`` -> ``"0.1"``), so no binary rounding leaks in.
    Returns:
        int: NanoCPUs (1 CPU = 1_000_000_000).
    Raises:
        ValueError: not a number, negative, or finer than one NanoCPU ("too precise", as docker).
    Source: docker/cli ``opts.ParseCPUs`` (big.Rat; an inexact result is an error). Keelson also
        accepts a YAML number, which ``docker stack deploy`` refuses (Compose Spec allows it).
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid cpus {value!r}")
    try:
        dec = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"invalid cpus {value!r}: not a decimal number") from None
    if not dec.is_finite() or dec < 0:
        raise ValueError(f"invalid cpus {value!r}: must be a non-negative number")
    nano = dec * _NANO
    if nano != nano.to_integral_value():
        raise ValueError(f"invalid cpus {value!r}: value is too precise (1e-9 CPU at most)")
    return int(nano)
