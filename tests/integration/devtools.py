"""Drive a real headless Chromium through the DevTools protocol, for tests that click.

``browser.py`` only loads a page and dumps its DOM; clicking a button needs a live browser. This
starts Debian's ``chromium`` (scripts/dev-env.sh) with ``--remote-debugging-pipe``: Chromium reads
DevTools commands from its file descriptor 3 and writes answers and events to descriptor 4, one
JSON message each, ended by a NUL byte (the transport Puppeteer's ``pipe: true`` uses). So there
is no port to find, no websocket and no driver: the standard library is enough.

Clicks are real input events (``Input.dispatchMouseEvent`` at the element's centre), so a page's
handlers see trusted clicks exactly as from a mouse. Messages the page logs (console errors,
exceptions, Content-Security-Policy violations) are kept in ``Tab.problems``.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

from tests.integration.browser import CHROMIUM, FLAGS

WIDTH, HEIGHT = 1400, 1000


class DevToolsError(AssertionError):
    """A DevTools command failed, timed out, or the browser went away."""


class Chromium:
    """A headless Chromium on a fresh profile, spoken to over its DevTools pipe.

    Use as a context manager; ``open(url)`` gives a ``Tab``.
    """

    def __init__(self):
        assert CHROMIUM, "chromium is not installed: run scripts/dev-env.sh"
        self.profile = tempfile.mkdtemp(prefix="keelson-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # bash puts our pipe ends on descriptors 3 and 4, where Chromium expects them (dash
        # takes only one-digit descriptors, and under pytest ours are often 10 or more)
        script = f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w}'
        self.proc = subprocess.Popen(
            ["bash", "-c", script, "bash", CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}",
             "--remote-debugging-pipe", "about:blank"],
            pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._lock = threading.Lock()
        self._answers: Dict[int, Dict[str, Any]] = {}
        self._arrived = threading.Condition()
        self.events: List[Dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, name="devtools-reader", daemon=True)
        self._reader.start()

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read(self) -> None:
        """Split the pipe into messages; answers wake ``send``, events are kept."""
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._arrived:
                    self._answers[-1] = {"error": {"message": "browser closed the pipe"}}
                    self._arrived.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw.decode("utf-8"))
                with self._arrived:
                    if "id" in msg:
                        self._answers[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self._arrived.notify_all()

    def send(self, method: str, params: Optional[dict] = None, session: str = "",
             timeout_s: float = 60) -> Dict[str, Any]:
        """Send one command and wait for its answer.

        Args:
            method: a DevTools method (``Page.navigate``). params: its parameters.
            session: the target session (``Tab.session``); "" for the browser itself.
            timeout_s: seconds to wait for the answer.
        Returns:
            dict: the command's ``result``.
        Raises:
            DevToolsError: the command failed, timed out, or the browser is gone.
        """
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            msg: Dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            os.write(self._to_browser, json.dumps(msg).encode("utf-8") + b"\0")
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while ident not in self._answers and -1 not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DevToolsError(f"{method}: no answer within {timeout_s}s")
                self._arrived.wait(left)
            answer = self._answers.pop(ident, None) or self._answers[-1]
        if "error" in answer:
            raise DevToolsError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def open(self, url: str) -> "Tab":
        """A new tab showing ``url`` (its load is not awaited: use ``Tab.wait``)."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        tab = Tab(self, session)
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.send(domain, session=session)
        self.send("Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": HEIGHT,
                                                         "deviceScaleFactor": 1, "mobile": False},
                  session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        return tab

    def close(self) -> None:
        """Close the browser and remove its profile (safe to call twice)."""
        if self.proc.poll() is None:
            try:
                self.send("Browser.close", timeout_s=10)
            except DevToolsError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.proc.stderr:
            self.proc.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Tab:
    """One page target of a ``Chromium``."""

    def __init__(self, browser: Chromium, session: str):
        self.browser = browser
        self.session = session

    def send(self, method: str, params: Optional[dict] = None, timeout_s: float = 60) -> dict:
        """``Chromium.send`` for this tab."""
        return self.browser.send(method, params, self.session, timeout_s)

    def evaluate(self, expression: str, timeout_s: float = 60) -> Any:
        """The JSON value of a JavaScript expression in the page (promises awaited).

        Raises:
            DevToolsError: the expression threw.
        """
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True}, timeout_s)
        if "exceptionDetails" in res:
            raise DevToolsError(f"{expression!r} threw: {res['exceptionDetails']}")
        return res.get("result", {}).get("value")

    def wait(self, what: str, expression: str, timeout_s: float = 60, every_s: float = 0.2) -> Any:
        """Evaluate ``expression`` until it gives something truthy; return that.

        Raises:
            AssertionError: still falsy after ``timeout_s`` (the last value in the message).
        """
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            last = self.evaluate(expression)
            if last:
                return last
            time.sleep(every_s)
        raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}; "
                             f"page problems: {self.problems()}")

    def click(self, selector: str) -> None:
        """Click the centre of the element ``selector`` names, as a mouse would.

        Raises:
            AssertionError: no such element, or it is hidden or has no size.
        """
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return r.width && r.height ? [r.left + r.width / 2, r.top + r.height / 2] : null; })()")
        assert box, f"{selector}: not on the page or not visible"
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left",
                                                   "clickCount": 0 if kind == "mouseMoved" else 1})

    def type(self, selector: str, text: str) -> None:
        """Focus the input ``selector`` names, clear it and type ``text``."""
        self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                      " e.focus(); e.select(); })()")
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path: pathlib.Path) -> pathlib.Path:
        """Save a PNG of what the tab shows now; returns ``path``."""
        import base64
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def problems(self) -> List[str]:
        """Errors the page reported so far: exceptions, console errors, CSP violations."""
        out = []
        for ev in list(self.browser.events):
            if ev.get("sessionId") != self.session:
                continue
            p = ev.get("params", {})
            if ev.get("method") == "Runtime.exceptionThrown":
                out.append(str(p.get("exceptionDetails", {}).get("exception", {}).get("description")
                               or p.get("exceptionDetails", {}).get("text")))
            elif ev.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(str(p["entry"].get("text")))
            elif ev.get("method") == "Runtime.consoleAPICalled" and p.get("type") == "error":
                out.append(" ".join(str(a.get("value", a.get("description", "")))
                                    for a in p.get("args", [])))
        return out
