"""Pure helpers of the benchmarks: alternation order, medians, ratios, targets, tables."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

KEELSON, DOCKER = "keelson", "docker"


def pair_order(pair: int) -> Tuple[str, str]:
    """Who goes first in pair number ``pair`` (0-based): Keelson in even pairs, docker in odd."""
    return (KEELSON, DOCKER) if pair % 2 == 0 else (DOCKER, KEELSON)


def median(values: Sequence[float]) -> Optional[float]:
    """The median, or None for no values."""
    return statistics.median(values) if values else None


def ratio(keelson: Optional[float], docker: Optional[float]) -> Optional[float]:
    """keelson / docker, or None when either is missing or docker is 0."""
    if keelson is None or not docker:
        return None
    return keelson / docker


@dataclass(frozen=True)
class Target:
    """A figure's target and whether the measurement meets it.

    Attributes:
        text: the target as the issue states it (``<= 0.05x``).
        met: True / False, or None when it could not be judged (a figure is missing).
    """

    text: str
    met: Optional[bool]

    @property
    def verdict(self) -> str:
        """``met``, ``NOT met`` or ``n/a``."""
        return "n/a" if self.met is None else ("met" if self.met else "NOT met")


def at_most(value: Optional[float], limit: float, text: str) -> Target:
    """Target ``value <= limit`` (None when value is unknown)."""
    return Target(text, None if value is None else value <= limit)


def below(value: Optional[float], limit: float, text: str) -> Target:
    """Target ``value < limit`` (None when value is unknown)."""
    return Target(text, None if value is None else value < limit)


def growth(per_scale: Sequence[Tuple[int, float]], tolerance: float = 1.1) -> List[Tuple[str, float, float, Target]]:
    """How a time grows between consecutive scales, against linear growth.

    Args:
        per_scale: (stacks, seconds) sorted by stacks.
        tolerance: a step meets "no faster than linearly" while its growth is at most
            ``tolerance`` x the growth in stacks (medians of a shared machine are noisy).
    Returns:
        list: (``"20->100"``, measured factor, linear factor, Target) per consecutive pair.
    """
    out = []
    for (n0, t0), (n1, t1) in zip(per_scale, per_scale[1:]):
        linear = n1 / n0
        factor = t1 / t0 if t0 else float("inf")
        out.append((f"{n0}->{n1}", factor, linear,
                    at_most(factor, linear * tolerance, f"<= {linear:.1f}x (linear)")))
    return out


def fmt(value: Optional[float], digits: int = 2) -> str:
    """A number for a table cell (``-`` when missing)."""
    return "-" if value is None else f"{value:.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
