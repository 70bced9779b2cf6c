"""Logging set-up: one ``key=value`` (logfmt) line per event, to stderr.

Logfmt because both people (``docker service logs``) and Loki/Vector parse it without a schema.
Fields passed through ``extra=`` become keys; a ``kv`` dict in ``extra`` adds keys whose names
would clash with ``LogRecord`` attributes.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Any, Mapping

from controller.errors import ConfigError
from controller.telemetry.scrub import scrub

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_HANDLER_NAME = "keelson-logfmt"


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
            fields.append(("exc", self.formatException(record.exc_info)))
        return " ".join(f"{k}={_quote(_clean(v))}" for k, v in fields)


def setup_logging(level: str = "INFO") -> None:
    """Send every log record at ``level`` or above to stderr as logfmt lines.

    Calling it again replaces the handler it installed before (no duplicate lines).

    Args:
        level: a logging level name (DEBUG, INFO, WARNING, ERROR), any case.
    Returns:
        None.
    Raises:
        ConfigError: ``level`` is not a logging level name (``--log-level``, KEELSON_LOG_LEVEL).
    """
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
    handler.setFormatter(LogfmtFormatter())
    root.addHandler(handler)
    root.setLevel(numeric)
    # Third-party chatter (docker's urllib3, GitPython's commands) only when debugging.
    for noisy in ("urllib3", "docker", "git"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))


