"""Image reference grammar (pure): what the Engine accepts as ``[domain/]path[:tag][@digest]``.

Source: the reference grammar of distribution/reference (the package docker uses to parse every
image name); an invalid name there is docker's "invalid reference format".
"""
from __future__ import annotations

import re

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?$")
NAME_TOTAL_LENGTH_MAX = 255  # distribution/reference: the name part is at most 255 characters


def is_valid_reference(image: str) -> bool:
    """True when ``image`` parses as an image reference (``repo``, ``host:5000/a/b:tag@sha256:…``)."""
    name = image.split("@", 1)[0]
    return bool(_REFERENCE.match(image)) and len(name) <= NAME_TOTAL_LENGTH_MAX + 129
