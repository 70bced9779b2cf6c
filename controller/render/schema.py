"""Field types of the stack file: validate, cast after interpolation, normalize unambiguous forms.

Each type is a small object with ``check(value, path, ctx) -> value``. Interpolation yields
strings, so ints, floats and booleans are cast here (docker/cli
``cli/compose/loader/interpolate.go`` lists the same casts). The key tables that use these types
live in ``controller.render.keys``. Output values are plain Python (no ``YamlInt``).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from controller.errors import ManifestError
from controller.render.yaml_load import YamlFloat, YamlInt

# Go's time.ParseDuration syntax (a sign, then number+unit pairs; "0" alone allowed).
_DURATION_RE = re.compile(r"^[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+$")
# docker/go-units RAMInBytes: a number, an optional blank, then k/m/g/t/p with optional i and b.
_BYTES_RE = re.compile(r"^[0-9]+(?:\.[0-9]+)? ?(?:[kKmMgGtTpP][iI]?)?[bB]?$")
_CPUS_RE = re.compile(r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
_TRUE = {"y", "yes", "true", "on"}  # docker's toBoolean (yaml.org/type/bool.html)
_FALSE = {"n", "no", "false", "off"}


class Context:
    """Shared state of one validation pass.

    Attributes:
        positions: dotted key path -> line; new paths are added when forms are normalized.
    """

    def __init__(self, positions: Dict[str, int]):
        self.positions = positions

    def line(self, path: str) -> Optional[int]:
        """Line of ``path``, or of its nearest ancestor that has one."""
        p = path
        while p:
            if p in self.positions:
                return self.positions[p]
            p = p.rpartition(".")[0]
        return None

    def fail(self, path: str, message: str) -> ManifestError:
        """A ManifestError for ``path`` with its line."""
        return ManifestError(message, key=path or None, line=self.line(path))


def join(path: str, part: Any) -> str:
    """``a.b`` + ``c`` -> ``a.b.c`` (the dotted key path convention)."""
    return f"{path}.{part}" if path else str(part)


def scalar_text(value: Any) -> Optional[str]:
    """The string form of a scalar as the user wrote it (``1.10`` stays ``1.10``).

    Returns:
        str, or None for None, or the text of a YamlInt/YamlFloat/int/float; bools give
        ``true``/``false``; lists and dicts give None (the caller reports the error).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (YamlInt, YamlFloat)):
        return value.text
    if isinstance(value, (int, float)):
        return str(value)
    return None


def plain(value: Any) -> Any:
    """Deep copy of ``value`` with YamlInt/YamlFloat turned into plain int/float."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "a mapping"


class Type:
    """Base of field types. ``nullable`` types accept None as a value (kept as None)."""

    nullable = False
    describe = "a value"

    def check(self, value: Any, path: str, ctx: Context) -> Any:
        """Return the validated, cast value; raise ctx.fail(path, ...) when it does not fit."""
        raise NotImplementedError


class AnyValue(Type):
    """Anything YAML can hold (kept as plain data)."""

    nullable = True

    def check(self, value, path, ctx):
        return plain(value)


class Str(Type):
    """A string; a number is taken as written (``user: 1000``); ``choices`` limits the value."""

    describe = "a string"

    def __init__(self, choices: Sequence[str] = (), pattern: Optional[str] = None):
        self.choices = tuple(choices)
        self.pattern = re.compile(pattern) if pattern else None

    def check(self, value, path, ctx):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ctx.fail(path, f"must be a string, got {_kind(value)}")
        text = scalar_text(value)
        if self.choices and text not in self.choices:
            raise ctx.fail(path, f"must be one of {', '.join(self.choices)}, got {text!r}")
        if self.pattern and not self.pattern.match(text):
            raise ctx.fail(path, f"invalid value {text!r}")
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
        n = self._parse(value)
        if n is None:
            raise ctx.fail(path, f"must be an integer, got {scalar_text(value) or _kind(value)!r}")
        if self.minimum is not None and n < self.minimum:
            raise ctx.fail(path, f"must be >= {self.minimum}, got {n}")
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
        try:
            if isinstance(value, bool):
                raise ValueError
            f = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise ctx.fail(path, f"must be a number, got {scalar_text(value) or _kind(value)!r}") from None
        if (self.minimum is not None and f < self.minimum) or (
                self.maximum is not None and f > self.maximum):
            raise ctx.fail(path, f"must be between {self.minimum} and {self.maximum}, got {f}")
        return f


class Bool(Type):
    """A boolean; strings ``y/yes/true/on`` and ``n/no/false/off`` (any case) are cast."""

    describe = "a boolean"

    def check(self, value, path, ctx):
        if isinstance(value, bool):
            return value
        text = value.strip().lower() if isinstance(value, str) else None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ctx.fail(path, f"must be a boolean (true/false), got {scalar_text(value) or _kind(value)!r}")


class Duration(Type):
    """A Go duration string (``1m30s``, ``500ms``, ``0``), kept as written."""

    describe = "a duration"

    def check(self, value, path, ctx):
        text = scalar_text(value)
        if isinstance(value, bool) or text is None:
            raise ctx.fail(path, f"must be a duration like 10s, got {_kind(value)}")
        text = text.strip()
        if text in ("0", "-0", "+0") or _DURATION_RE.match(text):
            return text
        raise ctx.fail(path, f"must be a duration like 10s, 1m30s or 500ms, got {text!r}")


class Bytes(Type):
    """A byte size: a plain integer (bytes) or ``64M``, ``1g``, ``512k``, ``2GiB``; kept as is."""

    describe = "a byte size"

    def check(self, value, path, ctx):
        if isinstance(value, bool):
            raise ctx.fail(path, "must be a byte size like 64M, got a boolean")
        if isinstance(value, int):
            if value < 0:
                raise ctx.fail(path, f"must be >= 0, got {value}")
            return int(value)
        text = scalar_text(value)
        if text is None or not _BYTES_RE.match(text.strip()):
            raise ctx.fail(path, f"must be a byte size like 64M or 1g, got {text or _kind(value)!r}")
        text = text.strip()
        return int(text) if text.isdigit() else text


class Cpus(Type):
    """CPUs as a decimal string (``0.5``): a YAML number keeps its written digits, no float."""

    describe = "a CPU count"

    def check(self, value, path, ctx):
        text = scalar_text(value)
        if isinstance(value, bool) or text is None or not _CPUS_RE.match(text.strip()):
            raise ctx.fail(path, f"must be a CPU count like 0.5, got {text or _kind(value)!r}")
        return text.strip()


class ListOf(Type):
    """A list whose items are of type ``item``; ``unique`` rejects repeated items."""

    describe = "a list"

    def __init__(self, item: Type, unique: bool = False):
        self.item, self.unique = item, unique

    def check(self, value, path, ctx):
        if not isinstance(value, list):
            raise ctx.fail(path, f"must be a list, got {_kind(value)}")
        out = [check(self.item, v, join(path, i), ctx) for i, v in enumerate(value)]
        if self.unique:
            seen: List[Any] = []
            for i, v in enumerate(out):
                if v in seen:
                    raise ctx.fail(join(path, i), f"{v!r} is listed twice")
                seen.append(v)
        return out


def kind_of(value: Any) -> str:
    """``bool``, ``int``, ``float``, ``str``, ``list``, ``dict`` or ``null`` (bool is not int)."""
    if value is None:
        return "null"
    for name, py in (("bool", bool), ("int", int), ("float", float), ("str", str),
                     ("list", list), ("dict", dict)):
        if isinstance(value, py):
            return name
    return type(value).__name__


class Either(Type):
    """One of several types, chosen by the value's kind (see :func:`kind_of`).

    Args:
        options: (kinds, type) pairs, e.g. ``(("str",), Str())``, ``(("dict",), Struct(...))``.
    """

    def __init__(self, *options: Tuple[Tuple[str, ...], Type], nullable: bool = False):
        self.options = options
        self.nullable = nullable
        self.describe = " or ".join(t.describe for _, t in options)

    def check(self, value, path, ctx):
        k = kind_of(value)
        for kinds, t in self.options:
            if k in kinds:
                return check(t, value, path, ctx)
        raise ctx.fail(path, f"must be {self.describe}, got {_kind(value)}")


class MapOf(Type):
    """A mapping with free keys (matching ``key_pattern``) and values of type ``value``."""

    describe = "a mapping"

    def __init__(self, value: Type, key_pattern: Optional[str] = None,
                 null_as_empty: bool = False):
        self.value = value
        self.key_re = re.compile(key_pattern) if key_pattern else None
        self.null_as_empty = null_as_empty

    def check(self, value, path, ctx):
        if not isinstance(value, dict):
            raise ctx.fail(path, f"must be a mapping, got {_kind(value)}")
        out = {}
        for k, v in value.items():
            p = join(path, k)
            if self.key_re and not self.key_re.match(k):
                raise ctx.fail(p, f"invalid name {k!r}")
            if v is None and self.null_as_empty:
                v = {}
            out[k] = check(self.value, v, p, ctx)
        return out


class Struct(Type):
    """A mapping with a fixed set of keys; any other key is an error naming its path."""

    describe = "a mapping"

    def __init__(self, fields: Mapping[str, Type], required: Sequence[str] = ()):
        self.fields = dict(fields)
        self.required = tuple(required)

    def check(self, value, path, ctx):
        if not isinstance(value, dict):
            raise ctx.fail(path, f"must be a mapping, got {_kind(value)}")
        out = {}
        for k, v in value.items():
            p = join(path, k)
            t = self.fields.get(k)
            if t is None:
                raise ctx.fail(p, f"unknown key {k!r} (allowed here: "
                               f"{', '.join(sorted(self.fields))})")
            if v is None and not t.nullable:
                continue  # ``key:`` with nothing after it means "not set"
            out[k] = check(t, v, p, ctx)
        for k in self.required:
            if k not in out:
                raise ctx.fail(path, f"missing required key {k!r}")
        return out


class ListOrDict(Type):
    """``KEY=VALUE`` list or mapping (environment, labels, args, sysctls) -> dict of str.

    A list item ``KEY`` without ``=`` and a mapping value of null both give None (environment:
    "take it from elsewhere"). Numbers and booleans become their written text.
    """

    describe = "a list of KEY=VALUE or a mapping"
    nullable = False

    def __init__(self, allow_none: bool = True):
        self.allow_none = allow_none

    def check(self, value, path, ctx):
        out: Dict[str, Optional[str]] = {}
        if isinstance(value, list):
            for i, item in enumerate(value):
                p = join(path, i)
                text = scalar_text(item)
                if text is None or isinstance(item, bool):
                    raise ctx.fail(p, f"must be a KEY=VALUE string, got {_kind(item)}")
                key, sep, val = text.partition("=")
                if not key:
                    raise ctx.fail(p, f"empty name in {text!r}")
                if key in out:
                    raise ctx.fail(p, f"{key!r} is set twice")
                out[key] = val if sep else None
                ctx.positions.setdefault(join(path, key), ctx.line(p) or 0)
        elif isinstance(value, dict):
            for k, v in value.items():
                if v is not None and scalar_text(v) is None:
                    raise ctx.fail(join(path, k), f"must be a string, got {_kind(v)}")
                out[k] = scalar_text(v)
        else:
            raise ctx.fail(path, f"must be {self.describe}, got {_kind(value)}")
        if not self.allow_none:
            for k, v in out.items():
                if v is None:
                    raise ctx.fail(join(path, k), f"{k!r} has no value")
        return out


class MapOfStr(Type):
    """A mapping of name -> string (driver_opts, logging options); numbers kept as written."""

    describe = "a mapping of strings"

    def check(self, value, path, ctx):
        if not isinstance(value, dict):
            raise ctx.fail(path, f"must be a mapping, got {_kind(value)}")
        out = {}
        for k, v in value.items():
            text = scalar_text(v)
            if text is None:
                raise ctx.fail(join(path, k), f"must be a string, got {_kind(v)}")
            out[k] = text
        return out


class ExtraHosts(Type):
    """``extra_hosts``: a list of ``host:ip`` kept, or a mapping host -> ip turned into one."""

    describe = "a list of host:ip or a mapping"

    def check(self, value, path, ctx):
        if isinstance(value, list):
            return [check(Str(), v, join(path, i), ctx) for i, v in enumerate(value)]
        if isinstance(value, dict):
            out = []
            for k, v in value.items():
                ips = v if isinstance(v, list) else [v]
                for ip in ips:
                    text = scalar_text(ip)
                    if text is None:
                        raise ctx.fail(join(path, k), f"must be an address, got {_kind(ip)}")
                    out.append(f"{k}:{text}")
            return out
        raise ctx.fail(path, f"must be {self.describe}, got {_kind(value)}")


class Checked(Type):
    """Another type plus a check on the result: ``rule(value) -> error message or None``."""

    def __init__(self, inner: Type, rule: Callable[[Any], Optional[str]]):
        self.inner, self.rule = inner, rule
        self.describe, self.nullable = inner.describe, inner.nullable

    def check(self, value, path, ctx):
        out = check(self.inner, value, path, ctx)
        problem = self.rule(out)
        if problem:
            raise ctx.fail(path, problem)
        return out


def check(t: Type, value: Any, path: str, ctx: Context) -> Any:
    """Validate ``value`` at ``path`` against ``t`` (None passes when ``t.nullable``)."""
    if value is None:
        if t.nullable:
            return None
        raise ctx.fail(path, f"must be {t.describe}, got null")
    return t.check(value, path, ctx)
