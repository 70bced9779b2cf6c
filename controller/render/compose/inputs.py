"""Every input a stack reads, and one hash over them: the key of "this content failed".

A stack is Stalled "until an input changes" (issue 8). Its inputs are more than its folder: the
stack files and their overrides, ``.env``, ``env_file``s, config and secret files, build
contexts and Dockerfiles (which may lie outside the stack folder), the variables interpolation
looked up, and the digests its image tags resolve to (a tag re-pushed to the registry is a new
input). The loader records the files and variables (``StackManifest.inputs``); the pass adds the
resolved image references and calls :func:`inputs_hash`.

Pure apart from :func:`hash_file` and :func:`hash_tree`, which read the files they hash.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from typing import Mapping, Optional

from controller.model.manifest import ImageRef, StackManifest

CHUNK = 1 << 20  # bytes read at a time while hashing
VARIABLE_PREFIX = "variable "  # inputs key of an interpolation variable: ``variable NAME``


def hash_file(path: str) -> str:
    """sha256 hex (64 characters) of a file's bytes.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_tree(folder: str) -> str:
    """Hash a folder's content.

    Args:
        folder: absolute path of a folder.
    Returns:
        str: sha256 hex (64 characters) over every file's path relative to ``folder`` (``/``
        separators, sorted) and its content; a symlink counts as its target text, not followed.
        Empty folders do not count.
    Raises:
        OSError: a file could not be read (e.g. removed while hashing).
    """
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        # symlinked folders are listed in dirnames but not walked: hash them as links
        entries = sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))])
        for name in entries:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, folder).replace(os.sep, "/")
            # length prefixes keep "a"+"bc" and "ab"+"c" apart
            digest.update(b"P%d:%s" % (len(rel.encode()), rel.encode()))
            if os.path.islink(full):
                target = os.readlink(full).encode()
                digest.update(b"L%d:%s" % (len(target), target))
                continue
            mode = os.lstat(full).st_mode
            if not stat.S_ISREG(mode):  # a FIFO or a device: never opened (it could block)
                digest.update(b"X%d:" % stat.S_IFMT(mode))
                continue
            digest.update(b"F%d:" % os.path.getsize(full))
            with open(full, "rb") as fh:
                for chunk in iter(lambda: fh.read(CHUNK), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def variable_digest(value: Optional[str]) -> str:
    """What the inputs record of a variable's value: sha256 hex, or ``unset`` (never the value:
    variables may hold secrets, and the state record is readable by anyone with docker)."""
    return "unset" if value is None else hashlib.sha256(value.encode("utf-8")).hexdigest()


def inputs_hash(manifest: StackManifest, images: Optional[Mapping[str, ImageRef]] = None,
                options: Optional[Mapping[str, str]] = None) -> str:
    """One hash over everything a loaded stack reads: equal hashes mean the same inputs.

    Args:
        manifest: the loaded stack; ``manifest.inputs`` (path or ``variable NAME`` -> sha256 hex)
            covers the stack files, ``.env``, env_files, config/secret files, build contexts and
            Dockerfiles, and the interpolation variables.
        images: compose service name -> the ImageRef its ``image:`` tag resolved to this pass
            (repository, tag, digest): a tag re-pushed to the registry changes the hash. Built
            services need no entry (their context and Dockerfile are in ``manifest.inputs``);
            an entry for them is ignored, so the hash can be taken before any build.
        options: operator settings that change what the stack renders to (setting name ->
            value, e.g. ``KEELSON_BIND_ROOT``, ``KEELSON_REGISTRY``): a new value is a new input.
    Returns:
        str: ``inputs-`` + 40 hex of sha256 over the sorted inputs and image references (the
        prefix tells it apart from the git tree ids an older Keelson recorded).
    """
    refs = {svc: ref.reference for svc, ref in sorted((images or {}).items())
            if svc not in manifest.builds}
    doc = {"inputs": dict(sorted(manifest.inputs.items())), "images": refs}
    if options:
        doc["options"] = dict(sorted(options.items()))
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return "inputs-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]
