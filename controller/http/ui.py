"""The web page (issue 13): one static HTML + JS + CSS page served by Keelson itself.

The files live in ``controller/http/static/`` (package data: ``pip install .`` and the image ship
them) and are read once. The page holds no data: it polls ``/api/status`` and ``/api/swarm``
(which need the API token beyond loopback) and draws with ``textContent`` only. Every page
response carries a strict Content-Security-Policy: scripts, styles and requests only from this
origin, no inline script or style, no frames, no plugins.
"""
from __future__ import annotations

import functools
from importlib import resources
from typing import Dict, Tuple

# path -> (file in controller/http/static, Content-Type)
PAGES: Dict[str, Tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/ui/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/ui/app.css": ("app.css", "text/css; charset=utf-8"),
}
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@functools.lru_cache(maxsize=None)
def page(path: str) -> Tuple[bytes, str]:
    """The body and Content-Type of one page file.

    Args:
        path: a key of ``PAGES`` (``/``, ``/ui/app.js``, ``/ui/app.css``).
    Returns:
        tuple: (file bytes, Content-Type).
    Raises:
        KeyError: ``path`` is not a page. OSError: the file is missing from the package.
    """
    name, content_type = PAGES[path]
    body = resources.files("controller.http").joinpath("static", name).read_bytes()
    return body, content_type
