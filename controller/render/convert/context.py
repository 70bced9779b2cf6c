"""What every conversion step needs: the stack's names and a way to point at a bad key."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, NoReturn, TypeVar

from controller.errors import ManifestError
from controller.model.manifest import StackManifest

T = TypeVar("T")


@dataclass
class ConvertContext:
    """One stack's conversion state.

    Attributes:
        manifest: the stack being converted (its name scopes every object name).
        warnings: human-readable warnings collected while converting (end up in DesiredStack).
        bind_root: ``KEELSON_BIND_ROOT`` (absolute folder on every node) for relative bind
            sources, or "" to refuse them (see ``convert_mounts``).
    """

    manifest: StackManifest
    warnings: List[str] = field(default_factory=list)
    bind_root: str = ""

    @property
    def stack(self) -> str:
        """The stack name (``com.docker.stack.namespace``)."""
        return self.manifest.name

    def scope(self, name: str) -> str:
        """Return ``<stack>_<name>``, docker's ``Namespace.Scope`` (docker/cli convert/compose.go)."""
        return f"{self.stack}_{name}"

    def line_of(self, key: str) -> "int | None":
        """Line of ``key`` in the stack file, or of its nearest known parent; None if unknown."""
        positions: Dict[str, int] = self.manifest.positions or {}
        parts = key.split(".")
        while parts:
            line = positions.get(".".join(parts))
            if line:
                return line
            parts.pop()
        return None

    def error(self, key: str, message: str) -> ManifestError:
        """Build a ManifestError located at ``key`` (dotted path) in this stack's file.

        Args:
            key: dotted key path, e.g. ``services.web.deploy.update_config.delay``.
            message: what is wrong, in the user's terms.
        Returns:
            ManifestError: with stack, file, line (when known) and key filled in.
        """
        return ManifestError(message, stack=self.stack, file=self.file_of(key),
                             line=self.line_of(key), key=key)

    def file_of(self, key: str) -> "str | None":
        """The file holding ``key``'s line: an override file when it came from one, else the
        stack file (None when unknown)."""
        positions: Dict[str, int] = self.manifest.positions or {}
        parts = key.split(".")
        while parts:
            path = ".".join(parts)
            if positions.get(path):
                return self.manifest.position_files.get(path) or self._base_file()
            parts.pop()
        return self._base_file()

    def _base_file(self) -> "str | None":
        """The stack file as errors show it (relative to the manifests root when known)."""
        return self.manifest.shown_file or self.manifest.file or None

    def fail(self, key: str, message: str) -> NoReturn:
        """Raise :meth:`error` (``raise ctx.error(...)`` for call sites that read better so)."""
        raise self.error(key, message)

    def parse(self, key: str, parser: Callable[..., T], value) -> T:
        """Apply a units parser, turning its ValueError into a located ManifestError.

        Args:
            key: dotted key path of ``value``.
            parser: e.g. ``parse_duration_ns``.
            value: the raw value.
        Returns:
            the parser's result.
        Raises:
            ManifestError: when the parser raises ValueError.
        """
        try:
            return parser(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from exc

    def warn(self, key: str, message: str) -> None:
        """Record a warning about ``key``."""
        self.warnings.append(f"stack {self.stack}: key {key}: {message}")
