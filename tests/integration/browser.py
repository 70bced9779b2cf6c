"""A real browser for the web page's tests: Debian's headless ``chromium`` (scripts/dev-env.sh).

No driver and no downloaded browser: Chromium's own ``--dump-dom`` prints the DOM after the page
ran its scripts for ``--virtual-time-budget`` milliseconds (virtual time waits for pending
fetches), and ``--screenshot`` saves a PNG the same way. Each run gets a fresh profile folder.
The DOM is read back with the standard library's HTML parser into ``Element`` records.
"""
from __future__ import annotations

import html.parser
import pathlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1400,1000"]
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}


@dataclass
class Element:
    """One element of the dumped DOM: tag, attributes, its text (descendants' included), and
    the index of its parent in the element list (-1 for the root)."""

    tag: str
    attrs: Dict[str, str]
    parent: int
    text: str = ""
    classes: List[str] = field(default_factory=list)


class _Collector(html.parser.HTMLParser):
    """Collects every element in document order with its text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: List[Element] = []
        self._open: List[int] = []

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        self.elements.append(Element(tag, a, self._open[-1] if self._open else -1,
                                     classes=a.get("class", "").split()))
        if tag not in _VOID:
            self._open.append(len(self.elements) - 1)

    def handle_endtag(self, tag):
        for depth in range(len(self._open) - 1, -1, -1):
            if self.elements[self._open[depth]].tag == tag:
                del self._open[depth:]
                return

    def handle_data(self, data):
        for idx in self._open:
            self.elements[idx].text += data


class Dom:
    """A dumped DOM with a few queries.

    Args:
        text: the HTML Chromium printed.
    """

    def __init__(self, text: str):
        self.text = text
        parser = _Collector()
        parser.feed(text)
        self.elements = parser.elements

    def find(self, cls: str = "", **attrs: str) -> List[Element]:
        """Elements having class ``cls`` (if given) and every ``attrs`` (``data_x`` = ``data-x``)."""
        want = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [e for e in self.elements if (not cls or cls in e.classes)
                and all(e.attrs.get(k) == v for k, v in want.items())]

    def by_id(self, ident: str) -> Optional[Element]:
        """The element with ``id``, or None."""
        found = [e for e in self.elements if e.attrs.get("id") == ident]
        return found[0] if found else None

    def inside(self, child: Element, ancestor: Element) -> bool:
        """Whether ``child`` is a descendant of ``ancestor``."""
        target = self.elements.index(ancestor)
        idx = child.parent
        while idx >= 0:
            if idx == target:
                return True
            idx = self.elements[idx].parent
        return False


def _run(args: List[str], timeout_s: float) -> subprocess.CompletedProcess:
    assert CHROMIUM, "chromium is not installed: run scripts/dev-env.sh"
    profile = tempfile.mkdtemp(prefix="keelson-chromium-")
    try:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout_s)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def dump_dom(url: str, budget_ms: int = 5000, timeout_s: float = 90) -> Dom:
    """Load ``url``, let its scripts run ``budget_ms`` of virtual time, return the DOM.

    Raises:
        AssertionError: Chromium failed or printed nothing.
    """
    proc = _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", url], timeout_s)
    assert proc.returncode == 0 and "<html" in proc.stdout, (proc.returncode, proc.stderr[-2000:])
    return Dom(proc.stdout)


def screenshot(url: str, path: pathlib.Path, budget_ms: int = 5000, timeout_s: float = 90) -> pathlib.Path:
    """Save a PNG of ``url`` after ``budget_ms`` of virtual time; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = _run([f"--virtual-time-budget={budget_ms}", f"--screenshot={path}", url], timeout_s)
    assert proc.returncode == 0 and path.is_file() and path.stat().st_size > 1000, proc.stderr[-2000:]
    return path
