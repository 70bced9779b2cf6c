"""Field types of the stack file: validate, cast after interpolation, normalize unambiguous forms.

Each type is a small object with ``check(value, path, ctx) -> value``. Validation walks the
schema, so only values are interpolated (never keys) and ``x-`` keys are dropped before their
values are touched. Interpolation yields strings, so ints, floats and booleans are cast here (docker/cli
``cli/compose/loader/interpolate.go`` lists the same casts). The key tables that use these types
live in ``controller.render.compose.keys``. Output values are plain Python (no ``YamlInt``).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from controller.render.compose.docker_numbers import docker_reading
from controller.render.compose.interpolate import MAX_EXPANSION_CHARS, substitute
from controller.render.compose.yaml_load import YamlFloat, YamlInt
from controller.render.locate import KeyLocator


class Context(KeyLocator):
    """Shared state of one validation pass.

    Attributes:
        positions: dotted key path -> line; new paths are added when forms are normalized.
        lookup: variable name -> value or None; None disables interpolation.
        missing: unset variables that became "" -> dotted path of their first use.
        missing_at: dotted path -> the unset variables used in that value (every use).
        files: dotted path -> the file (as shown) its value came from, for paths that came
            from an override file; errors at or below such a path name that file.
        looked_up: every variable interpolation asked for -> its value (None when unset);
            part of the stack's inputs (``controller.render.compose.inputs``).
        number_spellings: (path, text kept, text docker would send) for each plain number
            used as a string where ``docker stack deploy`` would spell it differently.
    """

    def __init__(self, positions: Dict[str, int],
                 lookup: Optional[Callable[[str], Optional[str]]] = None,
                 files: Optional[Dict[str, str]] = None):
        self.positions = positions
        self.lookup = lookup
        self.files = files if files is not None else {}
        self.missing: Dict[str, str] = {}
        self.missing_at: Dict[str, list] = {}
        self.expanded = 0  # characters interpolation produced so far (issue 7 budget)
        self.looked_up: Dict[str, Optional[str]] = {}
        self.number_spellings: List[Tuple[str, str, str]] = []
        if lookup is not None:
            inner = lookup

            def recording(name: str) -> Optional[str]:
                """Look ``name`` up and remember it (it is an input of the stack)."""
                value = inner(name)
                self.looked_up[name] = value
                return value
            self.lookup = recording

    def interp(self, value: Any, path: str) -> Any:
        """Interpolate ``value`` when it is a string (exactly once per value); else return it."""
        if self.lookup is None or not isinstance(value, str) or "$" not in value:
            return value  # a value without ``$`` keeps its type (PlainText)
        out, missing = substitute(value, self.lookup, key=path or None, line=self.line(path),
                                  budget=MAX_EXPANSION_CHARS - self.expanded)
        if out is not value:
            self.expanded += len(out)
        for name in missing:
            self.missing.setdefault(name, path)
        if missing:
            self.missing_at[path] = list(missing)
        return out

    def interp_deep(self, value: Any, path: str) -> Any:
        """Interpolate every string inside lists/dicts (values only, never keys)."""
        if isinstance(value, dict):
            return {k: self.interp_deep(v, join(path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.interp_deep(v, join(path, i)) for i, v in enumerate(value)]
        return self.interp(value, path)

    def note_number(self, value: Any, path: str) -> None:
        """Remember ``value`` at ``path`` (a string field) when docker would spell it otherwise.

        See ``controller.render.compose.docker_numbers``: ``VERSION: 1.10`` is kept as ``1.10`` here,
        ``docker stack deploy`` sends ``1.1``. The loader turns these into warnings.
        """
        docker = docker_reading(value)
        if docker is not None and path != "version":
            written = value.text if isinstance(value, (YamlInt, YamlFloat)) else str(value)
            self.number_spellings.append((path, written, docker))


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
    leaf = True  # receives scalars: ``check()`` interpolates a string before ``check``

    def check(self, value: Any, path: str, ctx: Context) -> Any:
        """Return the validated, cast value; raise ctx.error(path, ...) when it does not fit."""
        raise NotImplementedError


class AnyValue(Type):
    """Anything YAML can hold (kept as plain data)."""

    nullable = True

    leaf = False

    def check(self, value, path, ctx):
        """Return the value as plain data (strings interpolated, YamlInt/YamlFloat made plain)."""
        return plain(ctx.interp_deep(value, path))


class ListOf(Type):
    """A list whose items are of type ``item``; ``unique`` rejects repeated items."""

    describe = "a list"
    leaf = False

    def __init__(self, item: Type, unique: bool = False):
        self.item, self.unique = item, unique

    def check(self, value, path, ctx):
        """Return the list with each item checked; raise ``ctx.fail`` on a non-list or a repeat."""
        if not isinstance(value, list):
            raise ctx.error(path, f"must be a list, got {_kind(value)}")
        out = [check(self.item, v, join(path, i), ctx) for i, v in enumerate(value)]
        if self.unique:
            seen: List[Any] = []
            for i, v in enumerate(out):
                if v in seen:
                    raise ctx.error(join(path, i), f"{v!r} is listed twice")
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

    leaf = False

    def __init__(self, *options: Tuple[Tuple[str, ...], Type], nullable: bool = False):
        self.options = options
        self.nullable = nullable
        self.describe = " or ".join(t.describe for _, t in options)

    def check(self, value, path, ctx):
        """The value checked by the option for its kind; ``ctx.fail`` if no option takes it."""
        k = kind_of(value)
        for kinds, t in self.options:
            if k in kinds:
                return check(t, value, path, ctx)
        raise ctx.error(path, f"must be {self.describe}, got {_kind(value)}")


class MapOf(Type):
    """A mapping with free keys (matching ``key_pattern``) and values of type ``value``.

    Args:
        value: type of every value. key_pattern: regex each key must match.
        null_as_empty: a null value stands for ``{}``. nullable_values: a null value is kept.
    """

    describe = "a mapping"
    leaf = False

    def __init__(self, value: Type, key_pattern: Optional[str] = None,
                 null_as_empty: bool = False, nullable_values: bool = False):
        self.value = value
        self.key_re = re.compile(key_pattern) if key_pattern else None
        self.null_as_empty = null_as_empty  # ``volumes: {data: }`` means ``data: {}``
        self.nullable_values = nullable_values  # ``networks: {front: }`` keeps None

    def check(self, value, path, ctx):
        """Return a dict with each value checked; raise ``ctx.fail`` on a non-mapping or bad key."""
        if not isinstance(value, dict):
            raise ctx.error(path, f"must be a mapping, got {_kind(value)}")
        out = {}
        for k, v in value.items():
            p = join(path, k)
            if self.key_re and not self.key_re.match(k):
                raise ctx.error(p, f"invalid name {k!r}")
            if v is None and self.null_as_empty:
                v = {}
            out[k] = None if v is None and self.nullable_values else check(self.value, v, p, ctx)
        return out


class Struct(Type):
    """A mapping with a fixed set of keys; any other key is an error naming its path."""

    describe = "a mapping"
    leaf = False

    def __init__(self, fields: Mapping[str, Type], required: Sequence[str] = ()):
        self.fields = dict(fields)
        self.required = tuple(required)

    def check(self, value, path, ctx):
        """A dict of the set keys, checked; ``ctx.fail`` on an unknown or missing key."""
        if not isinstance(value, dict):
            raise ctx.error(path, f"must be a mapping, got {_kind(value)}")
        out = {}
        for k, v in value.items():
            if k.startswith("x-"):
                continue  # extension fields: allowed in every mapping of the schema, unused
            p = join(path, k)
            t = self.fields.get(k)
            if t is None:
                allowed = sorted(self.fields)
                hint = f" (allowed here: {', '.join(allowed)})" if len(allowed) <= 16 else ""
                raise ctx.error(p, f"unknown key {k!r}{hint}")
            if v is None and not t.nullable:
                continue  # ``key:`` with nothing after it means "not set"
            out[k] = check(t, v, p, ctx)
        for k in self.required:
            if k not in out:
                raise ctx.error(path, f"missing required key {k!r}")
        return out


class ListOrDict(Type):
    """``KEY=VALUE`` list or mapping (environment, labels, args, sysctls) -> dict of str.

    A list item ``KEY`` without ``=`` and a mapping value of null both give None (environment:
    "take it from elsewhere"). Numbers and booleans become their written text.
    """

    describe = "a list of KEY=VALUE or a mapping"
    leaf = False
    nullable = False

    def __init__(self, allow_none: bool = True):
        self.allow_none = allow_none

    def check(self, value, path, ctx):
        """A dict name -> str or None; ``ctx.fail`` on a bad item, a repeat or a missing value."""
        out: Dict[str, Optional[str]] = {}
        if isinstance(value, list):
            for i, item in enumerate(value):
                p = join(path, i)
                text = scalar_text(ctx.interp(item, p))
                if text is None or isinstance(item, bool):
                    raise ctx.error(p, f"must be a KEY=VALUE string, got {_kind(item)}")
                key, sep, val = text.partition("=")
                if not key:
                    raise ctx.error(p, f"empty name in {text!r}")
                if key in out:
                    raise ctx.error(p, f"{key!r} is set twice")
                out[key] = val if sep else None
                ctx.positions.setdefault(join(path, key), ctx.line(p) or 0)
        elif isinstance(value, dict):
            for k, v in value.items():
                v = ctx.interp(v, join(path, k))
                ctx.note_number(v, join(path, k))
                if v is not None and scalar_text(v) is None:
                    raise ctx.error(join(path, k), f"must be a string, got {_kind(v)}")
                out[k] = scalar_text(v)
        else:
            raise ctx.error(path, f"must be {self.describe}, got {_kind(value)}")
        if not self.allow_none:
            for k, v in out.items():
                if v is None:
                    raise ctx.error(join(path, k), f"{k!r} has no value")
        return out


class MapOfStr(Type):
    """A mapping of name -> string (driver_opts, logging options); numbers kept as written."""

    describe = "a mapping of strings"
    leaf = False

    def check(self, value, path, ctx):
        """Return dict name -> str; raise ``ctx.fail`` on a non-mapping or a non-scalar value."""
        if not isinstance(value, dict):
            raise ctx.error(path, f"must be a mapping, got {_kind(value)}")
        out = {}
        for k, v in value.items():
            ctx.note_number(v, join(path, k))
            text = scalar_text(ctx.interp(v, join(path, k)))
            if text is None:
                raise ctx.error(join(path, k), f"must be a string, got {_kind(v)}")
            out[k] = text
        return out


class ExtraHosts(Type):
    """``extra_hosts``: a list of ``host:ip`` kept, or a mapping host -> ip turned into one."""

    describe = "a list of host:ip or a mapping"
    leaf = False

    def check(self, value, path, ctx):
        """Return a list of ``host:ip`` strings; raise ``ctx.fail`` on any other shape."""
        if isinstance(value, list):
            out_list = []
            for i, v in enumerate(value):
                text = scalar_text(ctx.interp(v, join(path, i)))
                if text is None or isinstance(v, bool):
                    raise ctx.error(join(path, i), f"must be a host:ip string, got {_kind(v)}")
                out_list.append(text)
            return out_list
        if isinstance(value, dict):
            out = []
            for k, v in value.items():
                ips = v if isinstance(v, list) else [v]
                for ip in ips:
                    text = scalar_text(ctx.interp(ip, join(path, k)))
                    if text is None:
                        raise ctx.error(join(path, k), f"must be an address, got {_kind(ip)}")
                    out.append(f"{k}:{text}")
            return out
        raise ctx.error(path, f"must be {self.describe}, got {_kind(value)}")



def check(t: Type, value: Any, path: str, ctx: Context) -> Any:
    """Validate ``value`` at ``path`` against ``t`` (None passes when ``t.nullable``)."""
    if value is None:
        if t.nullable:
            return None
        raise ctx.error(path, f"must be {t.describe}, got null")
    if t.leaf:
        value = ctx.interp(value, path)
    return t.check(value, path, ctx)
