"""Where a key of a stack lives: its line and file, and errors that point there.

Both render halves use it: loading (``compose.schema.Context``) and conversion
(``convert.context.ConvertContext``). One contract for both: ``error()`` returns a located
ManifestError, ``fail()`` raises it.
"""
from __future__ import annotations

from typing import Dict, NoReturn, Optional

from controller.errors import ManifestError


class KeyLocator:
    """Points at a dotted key path (``services.web.deploy.replicas``) of a stack's files.

    Attributes (set by subclasses):
        positions: dotted key path -> 1-based line. files: dotted key path -> the override file
            (as errors show it) the line is in; absent means the base file.
        base_file: the base stack file as errors show it (None: filled in by the caller).
        stack: the stack name for errors (None: filled in by the caller).
    """

    positions: Dict[str, int]
    files: Dict[str, str]
    base_file: Optional[str] = None
    stack: Optional[str] = None

    def _nearest(self, path: str) -> Optional[str]:
        """``path`` or its nearest ancestor that has a line, or None."""
        p = path
        while p:
            if self.positions.get(p):
                return p
            p = p.rpartition(".")[0]
        return None

    def line(self, path: str) -> Optional[int]:
        """Line of ``path``, or of its nearest ancestor that has one (None if unknown)."""
        found = self._nearest(path)
        return self.positions[found] if found else None

    def file(self, path: str) -> Optional[str]:
        """The file holding ``path``'s line: an override file when it came from one, else
        ``base_file``."""
        found = self._nearest(path)
        return (self.files.get(found) if found else None) or self.base_file

    def error(self, path: str, message: str) -> ManifestError:
        """A ManifestError located at ``path`` (key, line, file, stack as far as known)."""
        return ManifestError(message, stack=self.stack, file=self.file(path),
                             line=self.line(path), key=path or None)

    def fail(self, path: str, message: str) -> NoReturn:
        """Raise :meth:`error`."""
        raise self.error(path, message)
