"""Variable interpolation in stack files: the Compose Specification's grammar.

Grammar (compose-spec ``interpolation.md``; docker/cli ``cli/compose/template`` is the reference
for names and errors):

- ``$$`` -> a literal ``$``;
- ``$NAME`` and ``${NAME}``: the value, or "" plus a warning when NAME is unset;
- ``${NAME:-default}`` / ``${NAME-default}``: default when unset or empty / when unset;
- ``${NAME:?message}`` / ``${NAME?message}``: error when unset or empty / when unset;
- ``${NAME:+replacement}`` / ``${NAME+replacement}``: replacement when set and non-empty / set,
  else "" (docker stack deploy rejects these; the specification defines them);
- defaults, messages and replacements are interpolated themselves: ``${A:-${B:-x}}``;
- NAME is ``[A-Za-z_][A-Za-z0-9_]*``; any other ``$`` use is an error ("invalid interpolation
  format"), as in docker's template package.

Only values are interpolated, never mapping keys. Swarm templates (``{{.Node.ID}}``) contain no
``$`` and pass through untouched.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from controller.errors import ManifestError

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")

Lookup = Callable[[str], Optional[str]]

# Issue 7: a 256 KiB .env value referenced 60,000 times would build gigabytes; a default nested
# thousands deep would recurse until Python gives up. Both are bounded, per stack file.
MAX_EXPANSION_CHARS = 4 << 20  # characters all interpolated values of one stack may produce
MAX_NESTING = 16  # ``${A:-${B:-...}}`` levels


class _Context:
    """What one substitution needs: the variables, where we are, what went missing."""

    def __init__(self, lookup: Lookup, key: Optional[str], line: Optional[int], budget: int):
        self.lookup = lookup
        self.key = key
        self.line = line
        self.missing: List[str] = []
        self.budget = budget  # characters this value may still produce
        self.depth = 0

    def grow(self, piece: str) -> str:
        """Count ``piece`` against the budget; returns it. ManifestError when over."""
        self.budget -= len(piece)
        if self.budget < 0:
            raise self.error(f"interpolation produces more than {MAX_EXPANSION_CHARS} "
                             "characters (a variable repeated too often?)")
        return piece

    def error(self, message: str) -> ManifestError:
        """A ManifestError with ``message`` at this value's key and line."""
        return ManifestError(message, key=self.key, line=self.line)


def substitute(text: str, lookup: Lookup, *, key: Optional[str] = None,
               line: Optional[int] = None,
               budget: int = MAX_EXPANSION_CHARS) -> Tuple[str, List[str]]:
    """Interpolate one string value.

    Args:
        text: the value as written.
        lookup: variable name -> value, or None when unset.
        key: dotted key path of the value, for errors; line: its 1-based line.
        budget: characters the result may have at most (what is left of the stack's
            ``MAX_EXPANSION_CHARS``).
    Returns:
        (result, missing): the interpolated string and the names of unset variables that were
        replaced by "" (no default given), in order of appearance.
    Raises:
        ManifestError: invalid ``$`` syntax, or a ``:?``/``?`` variable that is unset (or empty),
            naming the variable and its message, with ``key``/``line`` as given; a result over
            ``budget`` characters or defaults nested over ``MAX_NESTING`` levels.
    """
    if "$" not in text:
        return text, []
    ctx = _Context(lookup, key, line, budget)
    return _expand(text, ctx), ctx.missing


def _expand(text: str, ctx: _Context) -> str:
    ctx.depth += 1
    try:
        if ctx.depth > MAX_NESTING:
            raise ctx.error(f"interpolation nests more than {MAX_NESTING} levels deep")
        return _expand_level(text, ctx)
    finally:
        ctx.depth -= 1


def _expand_level(text: str, ctx: _Context) -> str:
    out: List[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            out.append(ctx.grow(text[i:]))
            break
        out.append(ctx.grow(text[i:j]))
        nxt = text[j + 1:j + 2]
        if nxt == "$":
            out.append(ctx.grow("$"))
            i = j + 2
        elif nxt == "{":
            end = _matching_brace(text, j + 1)
            if end < 0:
                raise ctx.error(f"invalid interpolation format in {text!r}: unclosed '${{'")
            out.append(ctx.grow(_braced(text[j + 2:end], text, ctx)))
            i = end + 1
        else:
            m = _NAME_RE.match(text, j + 1)
            if not m:
                raise ctx.error(f"invalid interpolation format in {text!r}: a lone '$' "
                                "(write '$$' for a literal '$')")
            out.append(ctx.grow(_plain(m.group(0), ctx)))
            i = m.end()
    return "".join(out)


def _matching_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``start`` (nested braces counted), or -1."""
    depth = 0
    for k in range(start, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return -1


def _plain(name: str, ctx: _Context) -> str:
    value = ctx.lookup(name)
    if value is None:
        ctx.missing.append(name)
        return ""
    return value


def _braced(body: str, whole: str, ctx: _Context) -> str:
    m = _NAME_RE.match(body)
    if not m:
        raise ctx.error(f"invalid interpolation format in {whole!r}: bad variable name in "
                        f"'${{{body}}}'")
    name, rest = m.group(0), body[m.end():]
    if not rest:
        return _plain(name, ctx)
    op = next((o for o in _OPERATORS if rest.startswith(o)), None)
    if op is None:
        raise ctx.error(f"invalid interpolation format in {whole!r}: unknown operator in "
                        f"'${{{body}}}'")
    word = rest[len(op):]
    value = ctx.lookup(name)
    unset = value is None
    empty_or_unset = unset or value == ""
    if op in (":-", "-"):
        use_default = empty_or_unset if op == ":-" else unset
        return _expand(word, ctx) if use_default else value  # type: ignore[return-value]
    if op in (":?", "?"):
        failed = empty_or_unset if op == ":?" else unset
        if failed:
            message = _expand(word, ctx) if word else ""
            state = "unset or empty" if op == ":?" and not unset else "not set"
            raise ctx.error(f"required variable {name} is {state}"
                            + (f": {message}" if message else ""))
        return value  # type: ignore[return-value]
    # ":+" / "+": the replacement when the variable is set (and non-empty for ":+").
    present = not empty_or_unset if op == ":+" else not unset
    return _expand(word, ctx) if present else ""



def _walk(data: Any, lookup: Lookup, positions: Mapping[str, int], path: str,
          warned: Dict[str, str]) -> Any:
    if isinstance(data, dict):
        return {k: _walk(v, lookup, positions, f"{path}.{k}" if path else str(k), warned)
                for k, v in data.items()}
    if isinstance(data, list):
        return [_walk(v, lookup, positions, f"{path}.{i}" if path else str(i), warned)
                for i, v in enumerate(data)]
    if isinstance(data, str):
        value, missing = substitute(data, lookup, key=path or None, line=positions.get(path))
        for name in missing:
            warned.setdefault(name, path)
        return value
    return data


def chain_lookup(*sources: Mapping[str, str]) -> Lookup:
    """A lookup that asks each mapping in turn; the first that has the name wins.

    Args:
        sources: mappings name -> value, highest precedence first.
    Returns:
        callable name -> value or None.
    """
    def lookup(name: str) -> Optional[str]:
        """The value of ``name`` from the first source that has it, or None when none does."""
        for source in sources:
            if name in source:
                return source[name]
        return None
    return lookup
