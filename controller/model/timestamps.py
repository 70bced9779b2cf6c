"""The Engine's timestamps (RFC 3339, up to nanoseconds) as unix seconds; pure."""
from __future__ import annotations

import calendar
import re
from typing import Optional

_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$")


def parse_time(text: Optional[str]) -> float:
    """Parse the Engine's RFC 3339 timestamps (up to nanosecond fractions) to unix seconds.

    Args:
        text: e.g. ``2024-05-01T10:00:00.123456789Z``; None or "" allowed.
    Returns:
        float: seconds since the epoch (UTC); 0.0 for empty, unparsable or Go's zero time
        (``0001-01-01T00:00:00Z``).
    """
    if not text:
        return 0.0
    m = _TIME_RE.match(text.strip())
    if not m:
        return 0.0
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    if y <= 1:
        return 0.0
    secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    frac = m.group(7)
    if frac:
        secs += int(frac[:9].ljust(9, "0")) / 1e9
    tz = m.group(8)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        secs -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return float(secs)
