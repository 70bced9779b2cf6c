"""Which files make a stack: stack folders, base and override files, their merge order.

Rules (Compose's file conventions, with Keelson's explicit order on top): a stack folder
holds one base stack file (``STACK_FILE_NAMES``: ``stack.yml``, ``docker-stack.yml``,
``compose.yaml``...) and, optionally, the override file named after it
(``compose.override.yaml``), merged onto it; or an explicit order, base first, in
``.keelson.yml`` (``files: [...]``) or in the base file's ``x-keelson.files``. Reads only the
folder listing and ``.keelson.yml`` (through the reader the loader passes: its sandbox).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from controller.errors import ManifestError
from controller.render.compose.merge import StackDocument
from controller.render.compose.yaml_load import load_yaml

STACK_FILE_NAMES = ("stack.yml", "stack.yaml", "docker-stack.yml", "docker-stack.yaml",
                    "compose.yml", "compose.yaml", "docker-compose.yml", "docker-compose.yaml")
# Compose's override convention: ``<base stem>.override.<yml|yaml>`` beside the base file.
OVERRIDE_FILE_NAMES = tuple(f"{stem}.override.{ext}" for stem in (
    "stack", "docker-stack", "compose", "docker-compose") for ext in ("yml", "yaml"))
KEELSON_FILE = ".keelson.yml"  # a stack folder's explicit file order: ``files: [...]``
# Any of these makes a folder a stack folder (base files first: find_stacks returns the first).
STACK_FOLDER_MARKERS = STACK_FILE_NAMES + (KEELSON_FILE,) + OVERRIDE_FILE_NAMES
STACK_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def find_stacks(manifests_dir: str, rejected: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """List the stacks of a manifests folder: one per direct sub-folder with a stack file.

    Args:
        manifests_dir: the folder holding one sub-folder per stack.
        rejected: when given, a folder with a stack file whose name is not a valid stack name
            is added here (name -> error message) instead of failing the whole listing, so one
            bad folder fails only itself.
    Returns:
        dict stack name (the folder's name) -> absolute path of its stack file (the first of
        ``STACK_FILE_NAMES`` present; else its ``.keelson.yml`` or an override file, so that
        ``loader.load_stack`` reports what is wrong with that stack alone), sorted by name.
        Hidden folders (``.git``) are skipped, and so are folders without any stack file.
    Raises:
        ManifestError: ``manifests_dir`` is not a folder, or a folder with a stack file has a
            name that is not a stack name (lowercase letters, digits, ``-``, ``_``; starting with
            a letter or digit, as docker's stack namespace must).
    """
    if not os.path.isdir(manifests_dir):
        raise ManifestError(f"manifests folder {manifests_dir} does not exist or is not a folder")
    found: Dict[str, str] = {}
    for entry in sorted(os.listdir(manifests_dir)):
        folder = os.path.join(manifests_dir, entry)
        if entry.startswith(".") or not os.path.isdir(folder):
            continue
        stack_file = next((os.path.join(folder, n) for n in STACK_FOLDER_MARKERS
                           if os.path.isfile(os.path.join(folder, n))), None)
        if stack_file is None:
            continue
        if not STACK_NAME_RE.match(entry):
            error = ManifestError(
                f"folder {entry!r} is not a valid stack name: use lowercase letters, digits, "
                "'-' and '_', starting with a letter or digit", file=entry)
            if rejected is None:
                raise error
            rejected[entry] = str(error)
            continue
        found[entry] = os.path.abspath(stack_file)
    return found


@dataclass(frozen=True)
class StackFileSet:
    """Which files make up one stack, in merge order.

    Attributes:
        base: absolute path of the base stack file.
        overrides: absolute paths of the files merged onto it, in order.
        origin: how the list was chosen: ``single`` (one file), ``convention`` (the base plus
            its Compose override file), ``.keelson.yml`` or ``x-keelson.files``.
        warnings: e.g. an override file present but left out of an explicit list.
    """

    base: str
    overrides: Tuple[str, ...] = ()
    origin: str = "single"
    warnings: Tuple[str, ...] = ()

    @property
    def files(self) -> Tuple[str, ...]:
        """Every file, base first."""
        return (self.base,) + self.overrides


def override_names(base_name: str) -> Tuple[str, ...]:
    """The override file names of a base file (Compose's ``<stem>.override.<yml|yaml>``).

    Args:
        base_name: a base stack file's name, e.g. ``compose.yml``.
    Returns:
        e.g. (``compose.override.yml``, ``compose.override.yaml``).
    """
    stem = base_name.rsplit(".", 1)[0]
    return (f"{stem}.override.yml", f"{stem}.override.yaml")


Reader = Callable[[str], str]  # path -> text, through the sandbox


def plain_read(path: str) -> str:
    """A file's UTF-8 text, read directly (the default when no sandbox reader is given).

    Raises:
        OSError, UnicodeDecodeError: it cannot be read as UTF-8 text.
    """
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def stack_file_set(folder: str, *, shown=lambda p: os.path.basename(p),
                   read: Reader = plain_read) -> StackFileSet:
    """Choose the files of the stack in ``folder`` (before reading the base's ``x-keelson``).

    Rules: a ``.keelson.yml`` with ``files: [...]`` gives the order (first is the base).
    Otherwise exactly one base file (``STACK_FILE_NAMES``) must exist, and the override file
    named after it (``compose.override.yml`` for ``compose.yml``, as Compose's default
    ``compose.yaml`` + ``compose.override.yaml``; ``stack.override.yml`` for ``stack.yml``) is
    merged onto it when present.

    Args:
        folder: the stack folder. shown: path -> how errors name it.
        read: reads ``.keelson.yml`` (the loader passes its sandbox's reader).
    Returns:
        StackFileSet.
    Raises:
        ManifestError: two base files, two override files of one base, an override file with
            no base or that does not match the base, a bad ``.keelson.yml``, or a listed file
            that is missing; each names the files.
    """
    present = sorted(n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n)))
    overrides_present = [n for n in OVERRIDE_FILE_NAMES if n in present]
    keelson = os.path.join(folder, KEELSON_FILE)
    if os.path.isfile(keelson):
        files = read_keelson_file(keelson, shown(keelson), read)
        return explicit_file_set(folder, files, KEELSON_FILE, overrides_present, shown)
    bases = [n for n in STACK_FILE_NAMES if n in present]
    if len(bases) > 1:
        raise ManifestError(
            f"more than one base stack file: {', '.join(bases)}; keep one, or list the files "
            f"to merge in order in {KEELSON_FILE} (files: [...])", file=shown(folder))
    if not bases:
        if overrides_present:
            raise ManifestError(
                f"override file {overrides_present[0]} has no base file (one of "
                f"{', '.join(STACK_FILE_NAMES[:4])}, ...)", file=shown(folder))
        raise ManifestError("no stack file", file=shown(folder))
    base = bases[0]
    mine = [n for n in override_names(base) if n in present]
    other = [n for n in overrides_present if n not in mine]
    if len(mine) > 1:
        raise ManifestError(f"two override files for {base}: {', '.join(mine)}; keep one",
                            file=shown(folder))
    if other:
        raise ManifestError(
            f"override file {other[0]} does not belong to the base file {base} (its override "
            f"is {override_names(base)[0]}); rename it, or list the files in order under "
            "x-keelson.files", file=shown(folder))
    full = os.path.join(folder, base)
    if mine:
        return StackFileSet(full, (os.path.join(folder, mine[0]),), "convention")
    return StackFileSet(full)


def explicit_file_set(folder: str, files: List[str], origin: str, overrides_present: List[str],
                      shown) -> StackFileSet:
    """A StackFileSet from an explicit ordered list of file names (relative to ``folder``).

    Args:
        folder: the stack folder. files: file names, base first (``.keelson.yml`` or
            ``x-keelson.files``). origin: where the list came from (named in errors and warnings).
        overrides_present: the override files in the folder; one left out gets a warning.
        shown: path -> its name in errors.
    Returns:
        StackFileSet with ``origin`` and the warnings.
    Raises:
        ManifestError: a listed file does not exist.
    """
    paths = []
    for name in files:
        path = os.path.normpath(os.path.join(folder, name))
        if not os.path.isfile(path):
            raise ManifestError(f"{origin} lists {name}, which does not exist", file=shown(folder))
        paths.append(path)
    listed = {os.path.basename(p) for p in paths if os.path.dirname(p) == os.path.normpath(folder)}
    warnings = tuple(f"{n} is not listed in {origin} and is not used" for n in overrides_present
                     if n not in listed)
    return StackFileSet(paths[0], tuple(paths[1:]), origin, warnings)


def read_keelson_file(path: str, shown: str, read: Reader = plain_read) -> List[str]:
    """Read a stack folder's ``.keelson.yml``: ``files: [base, override, ...]``.

    Args:
        path: the file. shown: its name for errors. read: path -> text.
    Returns:
        list of file names relative to the stack folder, base first.
    Raises:
        ManifestError: unreadable, not a mapping, an unknown key, or ``files`` not a non-empty
            list of distinct names.
    """
    try:
        data, positions = load_yaml(read(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read: {exc}", file=shown) from exc
    except ManifestError as exc:
        raise exc.located(file=shown)
    if not isinstance(data, dict):
        raise ManifestError("must be a mapping with a files key", file=shown, line=1)
    for key in data:
        if key != "files":
            raise ManifestError(f"unknown key {key!r} (allowed here: files)", file=shown,
                                line=positions.get(key), key=key)
    return check_files_list(data.get("files"), "files", positions, shown)


def check_files_list(value, key: str, positions: Mapping[str, int], shown: str) -> List[str]:
    """Check a ``files`` list (``.keelson.yml`` or ``x-keelson.files``).

    Returns:
        the names as strings. Raises ManifestError: not a non-empty list of distinct strings.
    """
    if not isinstance(value, list) or not value:
        raise ManifestError("files must be a non-empty list of stack file names, base first",
                            file=shown, line=positions.get(key), key=key)
    out: List[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ManifestError(f"must be a file name, got {item!r}", file=shown,
                                line=positions.get(f"{key}.{i}"), key=f"{key}.{i}")
        if item in out:
            raise ManifestError(f"{item} is listed twice", file=shown,
                                line=positions.get(f"{key}.{i}"), key=f"{key}.{i}")
        out.append(item)
    return out


def x_keelson_files(doc: StackDocument) -> Optional[List[str]]:
    """The base file's ``x-keelson.files`` list, or None when it has none.

    Args:
        doc: the base stack file, parsed.
    Returns:
        the listed file names, base first; None without ``x-keelson.files``.
    Raises:
        ManifestError: ``files`` is not a non-empty list of distinct names.
    """
    opts = doc.data.get("x-keelson") if isinstance(doc.data, dict) else None
    if not isinstance(opts, dict) or opts.get("files") is None:
        return None
    return check_files_list(opts["files"], "x-keelson.files", doc.positions, doc.file)


def with_x_keelson_files(fileset: StackFileSet, base: StackDocument, directory: str,
                         shown) -> StackFileSet:
    """Apply the base file's ``x-keelson.files`` order, when it has one.

    An explicit ``.keelson.yml`` order already chose the files: it is kept as is.

    Args:
        fileset: the files chosen from the folder (:func:`stack_file_set`).
        base: the base file, parsed. directory: the stack folder. shown: path -> its name in errors.
    Returns:
        StackFileSet: ``fileset``, or the listed files (origin ``x-keelson.files``).
    Raises:
        ManifestError: the list does not start with the base file, is not a list of distinct
            names, or names a missing file.
    """
    if fileset.origin not in ("single", "convention"):
        return fileset
    listed = x_keelson_files(base)
    if listed is None:
        return fileset
    if os.path.normpath(os.path.join(directory, listed[0])) != fileset.base:
        raise ManifestError(
            f"x-keelson.files must start with this file "
            f"({os.path.basename(fileset.base)}), got {listed[0]}",
            file=base.file, line=base.positions.get("x-keelson.files"),
            key="x-keelson.files")
    present = [n for n in OVERRIDE_FILE_NAMES
               if os.path.isfile(os.path.join(directory, n))]
    return explicit_file_set(directory, listed, "x-keelson.files", present, shown)
