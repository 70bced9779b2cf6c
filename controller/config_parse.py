"""How a setting is declared and read: the parsers of each kind, and the :func:`setting` field.

A Settings field (``controller.config``) is declared with :func:`setting`: its default, its
environment variable, its ``kind`` (a key of :data:`PARSERS`: ``duration`` in seconds, ``bytes``,
``list``, ``bool``, ``policy``, ``secret_file``...), its help line and its command-line option.
Every parser turns text into a value or raises ConfigError naming the setting.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Dict, Optional, Tuple

from controller.errors import ConfigError


class PolicyLevel(str, Enum):
    """Admission levels, after Kubernetes Pod Security Standards (privileged < baseline <
    restricted); what each refuses is in ``controller.policy.admission``."""

    PRIVILEGED = "privileged"
    BASELINE = "baseline"
    RESTRICTED = "restricted"

    @classmethod
    def parse(cls, text: str, setting: str = "KEELSON_POLICY") -> "PolicyLevel":
        """The level named ``text`` (case-insensitive); raises ConfigError naming ``setting``."""
        try:
            return cls(str(text).strip().lower())
        except ValueError:
            raise ConfigError(f"{setting}: {text!r} is not one of privileged, baseline, "
                              "restricted") from None


# -- parsers: text -> value, ConfigError naming the setting -----------------------------------
def parse_duration_s(text: str, setting: str) -> float:
    """Parse ``30``, ``30s``, ``5m``, ``1h`` into seconds; raises ConfigError naming ``setting``."""
    t = str(text).strip()
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise ConfigError(f"{setting}: not a duration: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{setting}: must be a finite number of seconds >= 0, got {text!r}")
    return value


def env_bool(value: Optional[str], default: bool, setting: str = "") -> bool:
    """Read a boolean environment value (1/0, true/false, yes/no, on/off); None gives ``default``.

    Args:
        value: the variable's text, or None. default: used when ``value`` is None or empty.
        setting: the variable's name, for the error.
    Returns:
        bool.
    Raises:
        ConfigError: any other word (``KEELSON_PRUNE=maybe`` must not silently mean false).
    """
    if value is None or value.strip() == "":
        return default
    word = value.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{setting or 'value'}: not a boolean: {value!r} (use true or false)")


def env_int(text: str, setting: str) -> int:
    """Parse a whole number; raises ConfigError naming ``setting``."""
    try:
        return int(str(text).strip())
    except ValueError:
        raise ConfigError(f"{setting}: not a whole number: {text!r}") from None


def env_float(text: str, setting: str) -> float:
    """Parse a finite number; raises ConfigError naming ``setting``."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ConfigError(f"{setting}: not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{setting}: not a finite number: {text!r}")
    return value


def parse_bytes(text: str, setting: str) -> int:
    """Parse ``1048576``, ``512k``, ``1m``, ``1g`` (powers of 1024) into bytes.

    Raises:
        ConfigError: not a number of bytes, naming ``setting``.
    """
    t = str(text).strip().lower().rstrip("b").rstrip("i")
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(t)
    except ValueError:
        raise ConfigError(f"{setting}: not a size in bytes: {text!r}") from None


def comma_list(text: str, setting: str = "") -> Tuple[str, ...]:
    """``a, b,,c`` -> ``("a", "b", "c")``."""
    return tuple(x.strip() for x in str(text).split(",") if x.strip())


def read_secret_file(path: str, setting: str) -> str:
    """The content of a secret file (a Docker secret), stripped.

    Raises:
        ConfigError: unreadable or empty, naming ``setting``.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            value = fh.read().strip()
    except OSError as exc:
        raise ConfigError(f"{setting}: {exc}") from exc
    if not value:
        raise ConfigError(f"{setting}: {path} is empty")
    return value


PARSERS: Dict[str, Callable[[str, str], Any]] = {
    "str": lambda text, setting: text.strip(),
    "lower": lambda text, setting: text.strip().lower(),
    "duration": parse_duration_s,
    "int": env_int,
    "float": env_float,
    "bool": lambda text, setting: env_bool(text, False, setting),
    "list": comma_list,
    "bytes": parse_bytes,
    "policy": PolicyLevel.parse,
    "secret_file": read_secret_file,
}


@dataclass(frozen=True)
class Setting:
    """How one Settings field is read.

    Attributes:
        env: its environment variable. kind: a key of PARSERS (``duration`` is seconds,
            ``bytes`` is bytes, ``secret_file`` reads a Docker secret's file). help: one line,
            with the unit. option: the command-line option, "" when none.
        empty_ok: an empty variable is a value ("" disables), not "unset".
        minimum / above: the smallest allowed number (inclusive / exclusive), or None.
    """

    env: str
    kind: str
    help: str
    option: str = ""
    empty_ok: bool = False
    minimum: Optional[float] = None
    above: Optional[float] = None

    def parse(self, text: str, name: str = "") -> Any:
        """Parse ``text`` as this setting (errors name ``name`` or the variable)."""
        value = PARSERS[self.kind](text, name or self.env)
        self.check(value, name or self.env)
        return value

    def check(self, value: Any, name: str) -> None:
        """Raise ConfigError when a number is out of range."""
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"{name} must be >= {self.minimum:g}, got {value:g}")
        if self.above is not None and value <= self.above:
            raise ConfigError(f"{name} must be > {self.above:g}, got {value:g}")


def setting(default: Any, env: str, kind: str, help: str, *, option: str = "",
            secret: bool = False, **limits: Any) -> Any:
    """A Settings field with its table entry (see :class:`Setting`); ``secret`` keeps the
    value out of ``repr``."""
    return field(default=default, repr=not secret,
                 metadata={"setting": Setting(env, kind, help, option, **limits)})
