"""What every conversion step needs: the stack's names and a way to point at a bad key."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, TypeVar

from controller.model.manifest import StackManifest
from controller.render.locate import KeyLocator

T = TypeVar("T")


@dataclass
class ConvertContext(KeyLocator):
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

    @property
    def positions(self) -> Dict[str, int]:
        """Dotted key path -> line, from the loaded stack."""
        return self.manifest.positions or {}

    @property
    def files(self) -> Dict[str, str]:
        """Dotted key path -> the override file its line is in."""
        return self.manifest.position_files

    @property
    def base_file(self) -> "str | None":
        """The stack file as errors show it (relative to the manifests root when known)."""
        return self.manifest.shown_file or self.manifest.file or None

    def scope(self, name: str) -> str:
        """Return ``<stack>_<name>``, docker's ``Namespace.Scope`` (docker/cli convert/compose.go)."""
        return f"{self.stack}_{name}"

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
