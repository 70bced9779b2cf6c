"""Build and push progress as log lines (issue 13.5).

Every build step and every pushed layer is logged at debug; a build that has run longer than a
few seconds also says ``building <image> (step n/m)`` at info, at most once every few seconds,
so an operator watching ``docker service logs`` sees a slow build move without the noise of a
fast one. The facts are fields (``image``, ``step``, ``steps``), never only words.

Source of the step lines: the classic builder (``POST /build``) writes ``Step n/m : <instruction>``
(moby ``builder/dockerfile/evaluator.go``).
"""
from __future__ import annotations

import logging
import re
import time
from typing import Callable

log = logging.getLogger("keelson.images.build")

STEP_RE = re.compile(r"^Step (\d+)/(\d+) : ?(.*)$")
INFO_AFTER_S = 5.0  # seconds a build runs before its steps are logged at info (and between two)


class BuildProgress:
    """Turns one build's and push's stream messages into log lines. Never raises.

    Args:
        image: the reference built (``registry/repo:tag``).
        info_after_s: seconds after which (and between which) a step is logged at info.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, image: str, info_after_s: float = INFO_AFTER_S,
                 clock: Callable[[], float] = time.monotonic):
        self.image = image
        self.info_after_s = info_after_s
        self.clock = clock
        self.started = clock()
        self._last_info = self.started
        self._partial = ""

    def text(self, chunk: str) -> None:
        """Feed build output as it arrives (a chunk may hold several lines or part of one)."""
        try:
            lines = (self._partial + chunk).split("\n")
            self._partial = lines.pop()
            for line in lines:
                self._line(line.strip())
        except Exception:  # progress is a courtesy: it must never fail a build
            log.debug("build progress: cannot read a chunk", exc_info=True)

    def _line(self, line: str) -> None:
        """Log one step line (debug; info for a slow build, at most once per interval)."""
        m = STEP_RE.match(line)
        if not m:
            return
        step, steps = int(m.group(1)), int(m.group(2))
        fields = {"image": self.image, "step": step, "steps": steps}
        log.debug("build step", extra={"kv": dict(fields, instruction=m.group(3)[:200])})
        now = self.clock()
        if now - self.started >= self.info_after_s and now - self._last_info >= self.info_after_s:
            self._last_info = now
            log.info("building %s (step %d/%d)", self.image, step, steps, extra={"kv": fields})

    def pushed(self, status: str, layer: str) -> None:
        """Feed one push status message: a layer pushed, already present or mounted from
        another repository is logged at debug (``layer``, ``status`` fields)."""
        if layer and (status in ("Pushed", "Layer already exists")
                      or status.startswith("Mounted from")):
            log.debug("layer pushed", extra={"kv": {"image": self.image, "layer": layer,
                                                    "status": status}})
