"""Logging set-up: one line per event, to stderr, as logfmt (``key=value``) or JSON.

Logfmt by default because both people (``docker service logs``) and Loki/Vector parse it without
a schema; ``KEELSON_LOG_FORMAT=json`` writes one JSON object a line for log pipelines that want
typed fields. Fields passed through ``extra=`` become keys; a ``kv`` dict in ``extra`` adds keys
whose names would clash with ``LogRecord`` attributes.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Mapping

from controller.errors import ConfigError
from controller.telemetry.scrub import scrub

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_HANDLER_NAME = "keelson-logfmt"
LOG_FORMATS = ("logfmt", "json")


def _quote(value: Any) -> str:
    """Render one logfmt value: bare when safe, else double-quoted with escapes."""
    if isinstance(value, float):
        text = f"{value:.3f}".rstrip("0").rstrip(".") if value == value else "NaN"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    if text and not any(c in text for c in ' ="\\\n\r\t'):
        return text
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"')
               .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
    return f'"{escaped}"'


def _clean(value: Any) -> Any:
    """A log value with credentials masked (numbers and booleans pass through unchanged)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return scrub(str(value))


def record_fields(record: logging.LogRecord, formatter: logging.Formatter) -> list:
    """The fields of one record, in order: ts (UTC RFC 3339 with milliseconds), level (lower
    case), logger, msg, then every ``extra`` field and ``kv`` key in the order given, then
    ``exc`` (the traceback) when there is one. Values are not yet scrubbed."""
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    fields = [("ts", f"{ts}.{int(record.msecs):03d}Z"), ("level", record.levelname.lower()),
              ("logger", record.name), ("msg", record.getMessage())]
    for key, value in vars(record).items():
        if key in _STANDARD or key.startswith("_"):
            continue
        if key == "kv" and isinstance(value, Mapping):
            fields.extend((str(k), v) for k, v in value.items())
        else:
            fields.append((key, value))
    if record.exc_info:
        fields.append(("exc", formatter.formatException(record.exc_info)))
    return fields


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line: the same keys as the logfmt line
    (``ts``, ``level``, ``logger``, ``msg``, extra fields, ``exc``). Numbers and booleans stay
    typed; every other value is a string passed through ``scrub()``."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one JSON line (no trailing newline).

        Args:
            record: the log record; ``extra`` fields and a ``kv`` mapping become keys (a later
                key of the same name replaces an earlier one).
        Returns:
            str: ``json.dumps`` of the fields, non-ASCII kept as is.
        """
        return json.dumps({k: _clean(v) for k, v in record_fields(record, self)},
                          ensure_ascii=False, default=str)


class LogfmtFormatter(logging.Formatter):
    """Formats a record as ``ts=... level=... logger=... msg="..." key=value ...`` on one line.

    ``ts`` is UTC RFC 3339 with milliseconds; ``level`` lower case; a traceback goes, escaped,
    into ``exc``. Extra fields keep the order they were given in. The message, every value and
    the traceback pass through ``scrub()`` (issue 7): no credential-shaped text is logged.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one logfmt line (no trailing newline).

        Args:
            record: the log record; ``extra`` fields and a ``kv`` mapping become keys.
        Returns:
            str: the formatted line.
        """
        return " ".join(f"{k}={_quote(_clean(v))}" for k, v in record_fields(record, self))


def setup_logging(level: str = "INFO", fmt: str = "logfmt") -> None:
    """Send every log record at ``level`` or above to stderr, one line each.

    Calling it again replaces the handler it installed before (no duplicate lines).

    Args:
        level: a logging level name (DEBUG, INFO, WARNING, ERROR), any case.
        fmt: ``logfmt`` or ``json`` (``--log-format``, KEELSON_LOG_FORMAT), any case.
    Returns:
        None.
    Raises:
        ConfigError: ``level`` is not a logging level name (``--log-level``, KEELSON_LOG_LEVEL)
            or ``fmt`` is not a format.
    """
    fmt = str(fmt or "logfmt").strip().lower()
    if fmt not in LOG_FORMATS:
        raise ConfigError(f"--log-format (KEELSON_LOG_FORMAT): unknown format {fmt!r}; use "
                          "logfmt or json")
    numeric = logging.getLevelName(str(level).upper())
    if not isinstance(numeric, int):
        raise ConfigError(f"--log-level (KEELSON_LOG_LEVEL): unknown level {level!r}; use DEBUG, "
                          "INFO, WARNING or ERROR")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root.addHandler(handler)
    root.setLevel(numeric)
    # Third-party chatter (docker's urllib3, GitPython's commands) only when debugging.
    for noisy in ("urllib3", "docker", "git"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))


