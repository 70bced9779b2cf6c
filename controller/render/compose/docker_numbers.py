"""How ``docker stack deploy`` would spell a number that Keelson keeps as written.

Pure. Keelson reads YAML 1.2 and keeps the written text of a number used where a string is
expected (``VERSION: 1.10`` stays ``1.10``). docker's compose loader decodes the same plain
scalar as a number first and prints it back with Go's ``fmt.Sprint``: ``1.10`` becomes ``1.1``,
``1e3`` becomes ``1000``, ``0x1F`` becomes ``31``, and ``0755`` (octal in YAML 1.1) becomes
``493``. Keelson keeps its choice (a quoted value means the same to both); this module tells
where the two would differ so ``validate`` and ``plan`` can warn.

Sources: docker/cli ``cli/compose/loader`` (``toString`` uses ``fmt.Sprint``); Go ``fmt``'s
``%v`` for a float64 is ``strconv.FormatFloat(f, 'g', -1, 64)``.
"""
from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any, Optional

from controller.render.compose.yaml_load import PlainText, YamlFloat, YamlInt

_OCTAL_11_RE = re.compile(r"^[-+]?0[0-7]+$")  # YAML 1.1 octal int (``0755``)


def go_float_text(value: float) -> str:
    """``fmt.Sprint(float64)`` (Go's ``%v``): shortest digits, ``%e`` form for big or tiny.

    Rule from Go ``strconv/ftoa.go`` (``'g'`` with shortest precision): the exponent form is
    used when the decimal exponent is < -4 or >= 6 (``fmt.Println(1e6)`` prints ``1e+06``).

    Args:
        value: the float.
    Returns:
        str: e.g. ``1.1``, ``1000``, ``1e+21``, ``1e-05``, ``+Inf``, ``NaN``.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exp = Decimal(repr(value)).normalize().as_tuple()
    ds = "".join(str(d) for d in digits)
    nd = len(ds)
    dp = nd + exp  # position of the decimal point relative to the digits
    x = dp - 1
    prefix = "-" if sign else ""
    if x < -4 or x >= 6:
        mant = ds[0] + ("." + ds[1:] if nd > 1 else "")
        return f"{prefix}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{prefix}0.{'0' * -dp}{ds}"
    if dp >= nd:
        return f"{prefix}{ds}{'0' * (dp - nd)}"
    return f"{prefix}{ds[:dp]}.{ds[dp:]}"


def docker_reading(value: Any) -> Optional[str]:
    """The string ``docker stack deploy`` would make of a plain YAML scalar used as a string.

    Args:
        value: a value from ``yaml_load`` (YamlInt, YamlFloat, PlainText or anything else).
    Returns:
        str when docker's text differs from the text Keelson keeps; None when they agree or
        the value is not a plain number (quoted strings mean the same to both).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, YamlInt):
        docker = str(int(value))
    elif isinstance(value, YamlFloat):
        docker = go_float_text(float(value))
    elif isinstance(value, PlainText) and _OCTAL_11_RE.match(value):
        docker = str(int(value, 8))
    else:
        return None
    written = value.text if isinstance(value, (YamlInt, YamlFloat)) else str(value)
    return None if docker == written else docker
