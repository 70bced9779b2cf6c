"""Scalar field types: cast a value (often a string after interpolation) and validate it.

Casts follow docker/cli ``cli/compose/loader/interpolate.go`` (ints base 10, docker's
``toBoolean`` words); durations follow Go's ``time.ParseDuration`` syntax and byte sizes
docker/go-units ``RAMInBytes``. Values are checked, not converted to Engine units: durations,
sizes and CPUs keep their written form for the converter (``controller.render.convert.units``).
"""
from __future__ import annotations

import re
from typing import Any, Optional, Sequence

from controller.render.compose.schema import Type, _kind, scalar_text

# Go's time.ParseDuration syntax (a sign, then number+unit pairs; "0" alone allowed).
_DURATION_RE = re.compile(r"^[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+$")
# docker/go-units RAMInBytes: a number, an optional blank, then k/m/g/t/p with optional i and b.
_BYTES_RE = re.compile(r"^[0-9]+(?:\.[0-9]+)? ?(?:[kKmMgGtTpP][iI]?)?[bB]?$")
_CPUS_RE = re.compile(r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
_TRUE = {"y", "yes", "true", "on"}  # docker's toBoolean (yaml.org/type/bool.html)
_FALSE = {"n", "no", "false", "off"}


class Str(Type):
    """A string; a number is taken as written (``user: 1000``); ``choices`` limits the value."""

    describe = "a string"

    def __init__(self, choices: Sequence[str] = (), pattern: Optional[str] = None):
        self.choices = tuple(choices)
        self.pattern = re.compile(pattern) if pattern else None

    def check(self, value, path, ctx):
        """The value as a str (numbers as written); ``ctx.fail`` if not a scalar or not allowed."""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ctx.error(path, f"must be a string, got {_kind(value)}")
        ctx.note_number(value, path)
        text = scalar_text(value)
        if self.choices and text not in self.choices:
            raise ctx.error(path, f"must be one of {', '.join(self.choices)}, got {text!r}")
        if self.pattern and not self.pattern.match(text):
            raise ctx.error(path, f"invalid value {text!r}")
        return text


class Int(Type):
    """An integer (strings cast with base 10); ``minimum`` is inclusive."""

    describe = "an integer"

    def __init__(self, minimum: Optional[int] = None, octal: bool = False):
        self.minimum = minimum
        self.octal = octal

    def _parse(self, value: Any) -> Optional[int]:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return int(value) if value.is_integer() else None
        if isinstance(value, str):
            text = value.strip().replace("_", "") if value.strip() else ""
            try:
                if self.octal and re.match(r"^0[0-7]+$", text):
                    return int(text, 8)
                if self.octal and re.match(r"^0[oO][0-7]+$", text):
                    return int(text[2:], 8)
                return int(text, 10)
            except ValueError:
                try:
                    f = float(text)
                except ValueError:
                    return None
                return int(f) if f.is_integer() else None
        return None

    def check(self, value, path, ctx):
        """The value as an int; ``ctx.fail`` if it does not parse or is below ``minimum``."""
        n = self._parse(value)
        if n is None:
            raise ctx.error(path, f"must be an integer, got {scalar_text(value) or _kind(value)!r}")
        if self.minimum is not None and n < self.minimum:
            raise ctx.error(path, f"must be >= {self.minimum}, got {n}")
        return n


class Mode(Int):
    """A file mode: ``0440`` written bare or as a string is octal, as in ``chmod``."""

    describe = "a file mode"

    def __init__(self):
        super().__init__(minimum=0, octal=True)


class Float(Type):
    """A number (strings cast); ``maximum``/``minimum`` inclusive."""

    describe = "a number"

    def __init__(self, minimum: Optional[float] = None, maximum: Optional[float] = None):
        self.minimum, self.maximum = minimum, maximum

    def check(self, value, path, ctx):
        """The value as a float; ``ctx.fail`` if it is not a number or is out of range."""
        try:
            if isinstance(value, bool):
                raise ValueError
            f = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise ctx.error(path, f"must be a number, got {scalar_text(value) or _kind(value)!r}") from None
        if (self.minimum is not None and f < self.minimum) or (
                self.maximum is not None and f > self.maximum):
            raise ctx.error(path, f"must be between {self.minimum} and {self.maximum}, got {f}")
        return f


class Bool(Type):
    """A boolean; strings ``y/yes/true/on`` and ``n/no/false/off`` (any case) are cast."""

    describe = "a boolean"

    def check(self, value, path, ctx):
        """The value as a bool (docker's ``toBoolean`` words cast); ``ctx.fail`` otherwise."""
        if isinstance(value, bool):
            return value
        text = value.strip().lower() if isinstance(value, str) else None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ctx.error(path, f"must be a boolean (true/false), got {scalar_text(value) or _kind(value)!r}")


class Duration(Type):
    """A Go duration string (``1m30s``, ``500ms``, ``0``), kept as written."""

    describe = "a duration"

    def check(self, value, path, ctx):
        """The duration text, stripped; ``ctx.fail`` if it is not Go duration syntax."""
        text = scalar_text(value)
        if isinstance(value, bool) or text is None:
            raise ctx.error(path, f"must be a duration like 10s, got {_kind(value)}")
        text = text.strip()
        if text in ("0", "-0", "+0") or _DURATION_RE.match(text):
            return text
        raise ctx.error(path, f"must be a duration like 10s, 1m30s or 500ms, got {text!r}")


class Bytes(Type):
    """A byte size: a plain integer (bytes) or ``64M``, ``1g``, ``512k``, ``2GiB``; kept as is."""

    describe = "a byte size"

    def check(self, value, path, ctx):
        """An int (bytes) or the size text (``64M``); ``ctx.fail`` on a bad or negative size."""
        if isinstance(value, bool):
            raise ctx.error(path, "must be a byte size like 64M, got a boolean")
        if isinstance(value, int):
            if value < 0:
                raise ctx.error(path, f"must be >= 0, got {value}")
            return int(value)
        text = scalar_text(value)
        if text is None or not _BYTES_RE.match(text.strip()):
            raise ctx.error(path, f"must be a byte size like 64M or 1g, got {text or _kind(value)!r}")
        text = text.strip()
        return int(text) if text.isdigit() else text


class Cpus(Type):
    """CPUs as a decimal string (``0.5``): a YAML number keeps its written digits, no float."""

    describe = "a CPU count"

    def check(self, value, path, ctx):
        """The CPU count as decimal text (``0.5``); ``ctx.fail`` if it is not one."""
        text = scalar_text(value)
        if isinstance(value, bool) or text is None or not _CPUS_RE.match(text.strip()):
            raise ctx.error(path, f"must be a CPU count like 0.5, got {text or _kind(value)!r}")
        return text.strip()
