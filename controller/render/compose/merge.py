"""Merge a stack's files (a base file and its overrides) the way Compose merges ``-f`` files.

Pure. Works on the raw documents ``yaml_load.load_yaml`` returns (before interpolation and
casting), and keeps every value's line and file so later errors still point at the right file.

Rules, from the Compose Specification ``merge.md`` (docs.docker.com/reference/compose-file/merge)
and the Compose manual "Merge Compose files":

- mappings merge: missing keys are added, keys in both are merged recursively; a scalar of the
  later file replaces the earlier one;
- sequences are appended (later items after earlier ones; an item equal to one already there is
  not repeated);
- ``command``, ``entrypoint`` and ``healthcheck.test`` are replaced, never appended;
- unique resources: ``ports`` by (host_ip, target, published, protocol), ``volumes`` by target,
  ``secrets`` and ``configs`` by target (docker's default target when none is given); an entry
  sharing the key with an earlier one is merged into it, others are appended;
- ``environment``, ``labels`` (service, ``deploy``, ``build``, networks, volumes, configs,
  secrets), ``build.args``, ``sysctls`` and a service's ``networks`` merge by name whether
  written as a list or a mapping (the result is a mapping; two mappings for one name, such as
  a network's ``aliases``, merge as mappings do);
- ``build: ./app`` merges as ``build: {context: ./app}``;
- ``!reset`` removes the value; ``!override`` replaces it without merging.

Values that still hold ``${VAR}`` are keyed as written (Compose interpolates each file first); a
port written ``${PORT}:80`` in two files merges only when both spell it the same.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple

from controller.errors import ManifestError
from controller.render.compose.yaml_load import RESET, Override, YamlFloat, YamlInt

# A service attribute whose later value replaces the earlier one (merge.md "Shell commands").
_REPLACED = {("command",), ("entrypoint",), ("healthcheck", "test")}
# Service attributes written as a list of KEY=VALUE or a mapping; merged by name.
_BY_NAME_SERVICE = {("environment",), ("labels",), ("deploy", "labels"), ("build", "args"),
                    ("build", "labels"), ("sysctls",), ("networks",)}
_UNIQUE = ("ports", "volumes", "secrets", "configs")
_TOP_OBJECTS = ("networks", "volumes", "configs", "secrets")


@dataclass(frozen=True)
class StackDocument:
    """One stack file as read, before merging.

    Attributes:
        data: the document (dict) from ``load_yaml``.
        positions: dotted key path -> 1-based line in this file.
        file: the file's path as errors show it (relative to the manifests root where known).
    """

    data: dict
    positions: Dict[str, int]
    file: str


@dataclass(frozen=True)
class MergedDocument:
    """Several stack files merged into one document.

    Attributes:
        data: the merged document, with ``!reset`` values removed and ``!override`` unwrapped.
        positions: dotted key path -> 1-based line, in the file ``files[path]`` names.
        files: dotted key path -> the file (as shown) the value at that path came from.
    """

    data: dict
    positions: Dict[str, int] = field(default_factory=dict)
    files: Dict[str, str] = field(default_factory=dict)


def merge_documents(documents: Sequence[StackDocument]) -> MergedDocument:
    """Merge stack files in order: each later file merges onto the result of the earlier ones.

    Args:
        documents: the base file first, then each override in order (at least one).
    Returns:
        MergedDocument: the merged data and, for every key path, its line and file.
    Raises:
        ManifestError: an override file that is not a mapping, or a value whose shape cannot
            merge with the earlier file's (a list onto a mapping), naming the file and line.
    """
    if not documents:
        raise ValueError("merge_documents needs at least one document")
    merger = _Merger()
    first = documents[0]
    merger.take(first, "", "")
    data = first.data
    for doc in documents[1:]:
        if doc.data is None:
            continue  # an empty override file changes nothing
        if not isinstance(doc.data, dict):
            raise ManifestError("an override file must be a mapping", file=doc.file, line=1)
        data = merger.merge(data, doc.data, "", doc)
    data = _strip(data)
    return MergedDocument(data if isinstance(data, dict) else {}, merger.lines, merger.files)


class _Merger:
    """Holds the merged positions while documents merge."""

    def __init__(self) -> None:
        self.lines: Dict[str, int] = {}
        self.files: Dict[str, str] = {}

    def take(self, doc: StackDocument, src: str, dst: str) -> None:
        """Record the positions of ``doc``'s subtree at ``src`` as those of ``dst``."""
        for path, line in doc.positions.items():
            if not src or path == src or path.startswith(src + "."):
                new = dst + path[len(src):] if src else (f"{dst}.{path}" if dst else path)
                self.lines[new] = line
                self.files[new] = doc.file

    def drop(self, dst: str) -> None:
        """Forget the positions under ``dst`` (its value is being replaced)."""
        for path in [p for p in self.lines if p == dst or p.startswith(dst + ".")]:
            del self.lines[path]
            self.files.pop(path, None)

    def replace(self, over: Any, path: str, doc: StackDocument) -> Any:
        """``over`` replaces whatever was at ``path``."""
        self.drop(path)
        self.take(doc, path, path)
        return over.value if isinstance(over, Override) else over

    def merge(self, base: Any, over: Any, path: str, doc: StackDocument) -> Any:
        """Merge ``over`` (from ``doc``, at ``path``) onto ``base``; returns the merged value."""
        if over is RESET:
            self.drop(path)
            return RESET
        if isinstance(over, Override) or base is None or base is RESET:
            return self.replace(over, path, doc)
        parts = tuple(path.split("."))
        attr = parts[2:] if len(parts) >= 3 and parts[0] == "services" else None
        if attr in _REPLACED:
            return self.replace(over, path, doc)
        if attr == ("build",):  # ``build: ./app`` is ``build: {context: ./app}``
            base = {"context": base} if isinstance(base, str) else base
            over = {"context": over} if isinstance(over, str) else over
        if attr in _BY_NAME_SERVICE or _top_labels(parts):
            return self._by_name(base, over, path, doc)
        if attr is not None and len(attr) == 1 and attr[0] in _UNIQUE \
                and isinstance(base, list) and isinstance(over, list):
            return self._unique(base, over, path, doc, attr[0])
        if isinstance(base, dict) and isinstance(over, dict):
            out = dict(base)
            for key, value in over.items():
                p = f"{path}.{key}" if path else key
                if key in out:  # a mapping or list keeps the earlier file's line
                    out[key] = self.merge(out[key], value, p, doc)
                else:
                    self.take(doc, p, p)
                    out[key] = value.value if isinstance(value, Override) else value
            return out
        if attr is not None and (isinstance(base, list) or isinstance(over, list)) \
                and not isinstance(base, dict) and not isinstance(over, dict):
            return self._append(_as_list(base), _as_list(over), path, doc)
        if isinstance(base, (dict, list)) and isinstance(over, (dict, list)):
            raise ManifestError(f"cannot merge a {_shape(over)} onto the earlier file's "
                                f"{_shape(base)}", file=doc.file, line=doc.positions.get(path),
                                key=path or None)
        return self.replace(over, path, doc)

    def _append(self, base: list, over: list, path: str, doc: StackDocument) -> list:
        """Append ``over``'s items to ``base``, skipping items equal to one already there."""
        out = list(base)
        for i, item in enumerate(over):
            if item is RESET or any(_same(item, b) for b in out):
                continue
            self.take(doc, f"{path}.{i}", f"{path}.{len(out)}")
            out.append(item)
        return out

    def _unique(self, base: list, over: list, path: str, doc: StackDocument, attr: str) -> list:
        """Merge list entries that share their unique key; append the others."""
        out = list(base)
        keys = [_unique_key(attr, b) for b in out]
        for i, item in enumerate(over):
            if item is RESET:
                continue
            key = _unique_key(attr, item)
            src = f"{path}.{i}"
            if key in keys:
                j = keys.index(key)
                dst = f"{path}.{j}"
                if isinstance(out[j], dict) and isinstance(item, dict):
                    out[j] = self.merge(out[j], item, dst, _shifted(doc, src, dst))
                else:
                    self.drop(dst)
                    self.take(doc, src, dst)
                    out[j] = item
            else:
                self.take(doc, src, f"{path}.{len(out)}")
                keys.append(key)
                out.append(item)
        return out

    def _by_name(self, base: Any, over: Any, path: str, doc: StackDocument) -> dict:
        """Merge two KEY=VALUE lists or mappings by name; a later value wins."""
        base_map = _named(base, path, self.lines, self.files, None)
        lines, files = dict(doc.positions), {}
        over_map = _named(over, path, lines, files, doc.file)
        out = dict(base_map)
        for key, value in over_map.items():
            p = f"{path}.{key}"
            self.drop(p)
            if p in lines:
                self.lines[p], self.files[p] = lines[p], doc.file
            if isinstance(out.get(key), dict) and isinstance(value, dict):
                out[key] = self.merge(out[key], value, p, doc)  # a network's aliases, ...
                continue
            for q, line in lines.items():  # nested values (a service network's aliases)
                if q.startswith(p + "."):
                    self.lines[q], self.files[q] = line, doc.file
            out[key] = value
        return out


def _shifted(doc: StackDocument, src: str, dst: str) -> StackDocument:
    """A view of ``doc`` whose positions under ``src`` appear under ``dst`` (list entries)."""
    moved = {dst + p[len(src):]: line for p, line in doc.positions.items()
             if p == src or p.startswith(src + ".")}
    return StackDocument(doc.data, moved, doc.file)


def _named(value: Any, path: str, lines: Dict[str, int], files: Dict[str, str],
           file: Optional[str]) -> dict:
    """A KEY=VALUE list (or a network list) as a mapping; positions re-keyed by name in place.

    Args:
        value: a list of ``KEY=VALUE`` strings (or of names), or a mapping.
        path: its dotted path. lines/files: positions to re-key (item index -> name).
        file: the file to record for re-keyed positions (None keeps ``files`` as they are).
    """
    if isinstance(value, dict):
        return {k: v for k, v in value.items()}
    if not isinstance(value, list):
        return {} if value is None else {str(value): None}
    out: Dict[str, Any] = {}
    for i, item in enumerate(value):
        if item is RESET:
            continue
        text = item.text if isinstance(item, (YamlInt, YamlFloat)) else item
        if not isinstance(text, str):
            raise ManifestError(f"must be a KEY=VALUE string, got {item!r}", file=file,
                                line=lines.get(f"{path}.{i}"), key=f"{path}.{i}")
        key, sep, val = text.partition("=")
        out[key] = val if sep else None
        old = f"{path}.{i}"
        if old in lines:
            lines[f"{path}.{key}"] = lines[old]
            if file is not None:
                files[f"{path}.{key}"] = file
            elif old in files:
                files[f"{path}.{key}"] = files[old]
    return out


def _top_labels(parts: Tuple[str, ...]) -> bool:
    """True for ``networks.X.labels`` and the like (top-level objects' labels)."""
    return len(parts) == 3 and parts[0] in _TOP_OBJECTS and parts[2] == "labels"


def _unique_key(attr: str, item: Any) -> Any:
    """The key Compose keeps entries of ``ports``/``volumes``/``secrets``/``configs`` unique by.

    Source: compose-spec merge.md "Unique resources" (volumes, secrets, configs: target;
    ports: host_ip, target, published, protocol); a secret's default target is
    ``/run/secrets/<source>``, a config's ``/<source>`` (docker/cli convert).
    """
    text = item.text if isinstance(item, (YamlInt, YamlFloat)) else item
    if attr == "ports":
        if isinstance(item, dict):
            return (str(item.get("host_ip") or ""), str(item.get("target")),
                    str(item.get("published") or ""), str(item.get("protocol") or "tcp"))
        spec, _, proto = str(text).partition("/")
        pieces = spec.rsplit(":", 2)
        target = pieces[-1]
        published = pieces[-2] if len(pieces) >= 2 else ""
        host_ip = pieces[0] if len(pieces) == 3 else ""
        return (host_ip, target, published, proto or "tcp")
    if attr == "volumes":
        if isinstance(item, dict):
            return str(item.get("target") or "")
        parts = str(text).split(":")
        return parts[0] if len(parts) == 1 else parts[1]
    default_dir = "/run/secrets/" if attr == "secrets" else "/"
    if isinstance(item, dict):
        return str(item.get("target") or f"{default_dir}{item.get('source')}")
    return f"{default_dir}{text}"


def _same(a: Any, b: Any) -> bool:
    """Equal values, comparing numbers by their written text (``1.10`` is not ``1.1``)."""
    ta = a.text if isinstance(a, (YamlInt, YamlFloat)) else a
    tb = b.text if isinstance(b, (YamlInt, YamlFloat)) else b
    return type(ta) is type(tb) and ta == tb


def _as_list(value: Any) -> list:
    """A string (``dns: 8.8.8.8``) as a one-item list; a list unchanged."""
    return value if isinstance(value, list) else [value]


def _shape(value: Any) -> str:
    return "mapping" if isinstance(value, dict) else "list"


def _strip(value: Any) -> Any:
    """Remove ``!reset`` values and unwrap ``!override`` ones, at every level."""
    if isinstance(value, Override):
        return _strip(value.value)
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if v is not RESET}
    if isinstance(value, list):
        return [_strip(v) for v in value if v is not RESET]
    return value


def strip_tags(data: Any) -> Any:
    """A single file's document with ``!reset`` values removed and ``!override`` unwrapped.

    Args:
        data: a document from ``load_yaml``.
    Returns:
        the same shape without RESET/Override markers (a base file's ``!reset`` means "unset").
    """
    return _strip(data)

