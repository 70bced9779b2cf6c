"""Load a stack folder: find stack files, read, interpolate, cast, validate, resolve paths.

Pure apart from reading the stack's own files (stack file, ``.env``, ``env_file``s, and checking
that ``configs``/``secrets`` files and build contexts exist). The pipeline:
``yaml_load.load_yaml`` (strict YAML, positions) -> ``keys.TOP`` (interpolation, casting and
validation in one walk of the schema, ``x-`` keys dropped) -> service checks (ignored keys,
image/build) -> paths (build contexts, config/secret files, env_file merged into environment).
"""
from __future__ import annotations

import os
import re
from typing import Dict, List, Mapping, Optional

from controller.errors import ManifestError
from controller.model.manifest import BuildSpec, StackManifest
from controller.render.dotenv import parse_dotenv
from controller.render.interpolate import chain_lookup
from controller.render.keys import FORBIDDEN_SERVICE_KEYS, IGNORED_SERVICE_KEYS, TOP
from controller.render.options import stack_options
from controller.render.schema import Context, join
from controller.render.reference import is_valid_reference
from controller.render.yaml_load import load_yaml

STACK_FILE_NAMES = ("stack.yml", "stack.yaml", "docker-stack.yml", "docker-stack.yaml",
                    "compose.yml", "compose.yaml", "docker-compose.yml", "docker-compose.yaml")
STACK_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
DOTENV_NAME = ".env"


def find_stacks(manifests_dir: str, rejected: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """List the stacks of a manifests folder: one per direct sub-folder with a stack file.

    Args:
        manifests_dir: the folder holding one sub-folder per stack.
        rejected: when given, a folder with a stack file whose name is not a valid stack name
            is added here (name -> error message) instead of failing the whole listing, so one
            bad folder fails only itself.
    Returns:
        dict stack name (the folder's name) -> absolute path of its stack file (the first of
        ``STACK_FILE_NAMES`` present), sorted by name. Hidden folders (``.git``) are skipped, and
        so are folders without a stack file.
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
        stack_file = next((os.path.join(folder, n) for n in STACK_FILE_NAMES
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


def load_stack(name: str, stack_file: str, environ: Optional[Mapping[str, str]] = None, *,
               root: Optional[str] = None) -> StackManifest:
    """Load one stack file into a validated StackManifest.

    Variables for interpolation, highest precedence first: ``environ`` (the controller's
    environment), then the ``.env`` file beside the stack file (as docker compose: the shell
    wins over ``.env``).

    Args:
        name: the stack name (its folder's name).
        stack_file: path of the stack file.
        environ: the controller's environment (default ``os.environ``).
        root: the manifests root; errors name files relative to it, and every file the stack
            refers to (build contexts, config/secret files, env_files) must lie inside it.
    Returns:
        StackManifest with ``compose`` interpolated, cast and validated, ``builds``, warnings
        (ignored keys, unset variables) and ``positions``.
    Raises:
        ManifestError: unreadable file, bad YAML, bad interpolation, unknown key, bad value,
            missing file or build context; with stack, file, line and key as far as known.
    """
    shown = os.path.relpath(stack_file, root) if root else stack_file
    try:
        with open(stack_file, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read stack file: {exc}", stack=name, file=shown) from exc
    directory = os.path.dirname(os.path.abspath(stack_file))
    return _load(text, name=name, directory=directory, file=os.path.abspath(stack_file),
                 shown=shown, environ=environ, root=root)


def load_text(text: str, *, name: str = "test", directory: str = ".",
              environ: Optional[Mapping[str, str]] = None,
              filename: str = "stack.yml") -> StackManifest:
    """Load a stack from a string, as :func:`load_stack` does from a file.

    Args:
        text: the stack file's content.
        name: the stack name. directory: the stack folder (``.env`` and relative paths).
        environ: variables (default ``os.environ``). filename: the file name errors show.
    Returns:
        StackManifest (``file`` is ``directory/filename``).
    Raises:
        ManifestError: as :func:`load_stack`.
    """
    directory = os.path.abspath(directory)
    return _load(text, name=name, directory=directory, file=os.path.join(directory, filename),
                 shown=filename, environ=environ, root=None)


def _load(text: str, *, name: str, directory: str, file: str, shown: str,
          environ: Optional[Mapping[str, str]], root: Optional[str]) -> StackManifest:
    try:
        return _Loading(name, directory, file, environ, root).run(text)
    except ManifestError as exc:
        raise exc.located(stack=name, file=shown)


class _Loading:
    """One stack being loaded (keeps the folder, variables and positions together)."""

    def __init__(self, name: str, directory: str, file: str,
                 environ: Optional[Mapping[str, str]], root: Optional[str]):
        self.name, self.directory, self.file = name, directory, file
        self.root = os.path.realpath(root) if root else None
        self.environ = os.environ if environ is None else environ
        self.warnings: List[str] = []
        self.ctx = Context({})

    def run(self, text: str) -> StackManifest:
        """Load ``text`` (the stack file) into a StackManifest.

        Raises:
            ManifestError: empty or non-mapping file, or any schema/interpolation error.
        """
        data, positions = load_yaml(text)
        if data is None:
            raise ManifestError("the stack file is empty")
        if not isinstance(data, dict):
            raise ManifestError("the stack file must be a mapping with a services key", line=1)
        dotenv = self._dotenv()
        self.ctx = Context(positions, chain_lookup(self.environ, dotenv))
        options = stack_options(data, self.ctx)  # issue 8: x-keelson (drift, recreate)
        compose = TOP.check(data, "", self.ctx)
        for var, where in self.ctx.missing.items():
            self.warnings.append(f"variable {var} is not set, using an empty string "
                                 f"(at {where})")
        compose.pop("version", None)  # accepted for compatibility, means nothing
        if compose.pop("name", None) is not None:
            self.warnings.append("top-level name is ignored: a stack is named after its folder")
        self._unset_breaks_value(compose)
        builds: Dict[str, BuildSpec] = {}
        for svc_name, svc in compose["services"].items():
            self._service(svc_name, svc, builds)
        for kind in ("configs", "secrets"):
            for key, obj in (compose.get(kind) or {}).items():
                if obj.get("file") is not None:
                    obj["file"] = self._path(obj["file"], f"{kind}.{key}.file", want="file")
        return StackManifest(name=self.name, file=self.file, directory=self.directory,
                             compose=compose, builds=builds, warnings=self.warnings,
                             positions=dict(self.ctx.positions), options=options)

    def _unset_breaks_value(self, compose: dict) -> None:
        """An unset variable is a warning, but an error where its empty value leaves a port or
        an object name invalid (``"${PORT}:80"``, ``name: ${NET}``)."""
        for path, names in self.ctx.missing_at.items():
            parts = path.split(".")
            value = _at(compose, parts)
            broken = False
            if len(parts) >= 4 and parts[0] == "services" and parts[2] == "ports":
                text = str(value) if value is not None else ""
                broken = (text == "" or text.startswith(":") or text.endswith(":")
                          or "::" in text or text.endswith("-") or text.startswith("-"))
            elif (len(parts) == 3 and parts[0] in ("networks", "volumes", "configs", "secrets")
                  and parts[2] == "name"):
                broken = not value
            if broken:
                raise self.ctx.fail(path, f"variable {', '.join(names)} is not set, which leaves "
                                          f"an invalid value {value!r}")

    def _dotenv(self) -> Dict[str, str]:
        path = os.path.join(self.directory, DOTENV_NAME)
        if not os.path.isfile(path):
            return {}
        try:
            with open(path, encoding="utf-8") as fh:
                return parse_dotenv(fh.read())
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"cannot read {DOTENV_NAME}: {exc}") from exc
        except ManifestError as exc:
            raise ManifestError(f"{DOTENV_NAME} line {exc.line}: {exc.message}") from exc

    def _service(self, svc_name: str, svc: dict, builds: Dict[str, BuildSpec]) -> None:
        key = f"services.{svc_name}"
        for bad, hint in FORBIDDEN_SERVICE_KEYS.items():
            if bad in svc:
                raise self.ctx.fail(join(key, bad), f"{bad} is not supported by Swarm: {hint}")
        ignored = sorted(k for k in svc if k in IGNORED_SERVICE_KEYS)
        if ignored:
            self.warnings.append(f"service {svc_name}: ignoring options Swarm does not "
                                 f"support: {', '.join(ignored)}")
        if not svc.get("image") and svc.get("build") is None:
            raise self.ctx.fail(key, f"service {svc_name} has neither image nor build")
        if svc.get("image") and not is_valid_reference(str(svc["image"])):
            # an unset variable is only a warning, unless it leaves an invalid name behind
            unset = self.ctx.missing_at.get(f"{key}.image", [])
            why = f" (variable {', '.join(unset)} is not set)" if unset else ""
            raise self.ctx.fail(f"{key}.image",
                                f"invalid image reference {svc['image']!r}{why}")
        if svc.get("build") is not None:
            builds[svc_name] = self._build(svc_name, svc)
        if svc.get("env_file") is not None:
            svc["environment"] = self._env_files(key, svc.pop("env_file"),
                                                 svc.get("environment") or {})

    def _build(self, svc_name: str, svc: dict) -> BuildSpec:
        key = f"services.{svc_name}.build"
        raw = svc["build"]
        spec = {"context": raw} if isinstance(raw, str) else dict(raw)
        context = self._path(spec.get("context") or ".", f"{key}.context", want="folder")
        spec["context"] = context
        svc["build"] = context if isinstance(raw, str) else spec
        args: Dict[str, str] = {}
        lookup = self.ctx.lookup
        for arg, value in (spec.get("args") or {}).items():
            # ``ARG`` without a value takes the variable's value, as docker compose does.
            value = value if value is not None else (lookup(arg) if lookup else None)
            if value is not None:
                args[arg] = value
        extra = sorted(k for k in ("cache_from", "network", "shm_size", "extra_hosts")
                       if k in spec)
        if extra:
            self.warnings.append(f"service {svc_name}: build options not used by Keelson: "
                                 f"{', '.join(extra)}")
        return BuildSpec(context=context, dockerfile=spec.get("dockerfile") or "Dockerfile",
                         args=args, target=spec.get("target") or None,
                         image=svc.get("image") or None,
                         labels={k: v for k, v in (spec.get("labels") or {}).items()
                                 if v is not None})

    def _env_files(self, key: str, env_file, environment: dict) -> dict:
        entries = [env_file] if isinstance(env_file, str) else env_file
        merged: Dict[str, Optional[str]] = {}
        for i, entry in enumerate(entries):
            item = {"path": entry} if isinstance(entry, str) else entry
            ekey = f"{key}.env_file" if isinstance(env_file, str) else f"{key}.env_file.{i}"
            required = item.get("required", True)
            path = self._path(item["path"], ekey, want="file" if required else None)
            if not os.path.isfile(path):
                continue  # ``required: false`` and absent
            try:
                with open(path, encoding="utf-8") as fh:
                    merged.update(parse_dotenv(fh.read()))
            except (OSError, UnicodeDecodeError) as exc:
                raise self.ctx.fail(ekey, f"cannot read env_file {path}: {exc}") from exc
            except ManifestError as exc:
                raise self.ctx.fail(ekey, f"env_file {path} line {exc.line}: "
                                          f"{exc.message}") from exc
        # ``environment`` wins; a bare ``KEY`` there does not erase the env_file's value.
        for k, v in environment.items():
            if v is not None or k not in merged:
                merged[k] = v
        return merged

    def _path(self, value: str, key: str, want: Optional[str]) -> str:
        """Resolve ``value`` against the stack folder; check it exists and stays in root."""
        path = os.path.normpath(os.path.join(self.directory, os.path.expanduser(value)))
        if self.root:
            real = os.path.realpath(path)
            if real != self.root and not real.startswith(self.root + os.sep):
                raise self.ctx.fail(key, f"{value} points outside the manifests repository")
        if want == "file" and not os.path.isfile(path):
            raise self.ctx.fail(key, f"file {path} does not exist")
        if want == "folder" and not os.path.isdir(path):
            raise self.ctx.fail(key, f"build context {path} does not exist or is not a folder")
        return path


def _at(doc, parts):
    """The value at a dotted path's parts in a loaded document (None when absent)."""
    for part in parts:
        if isinstance(doc, dict):
            doc = doc.get(part)
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    return doc
