"""Load a stack folder: read its files, interpolate, cast, validate, resolve paths.

Pure apart from reading the stack's own files (stack file, ``.env``, ``env_file``s, and checking
that ``configs``/``secrets`` files and build contexts exist). Every one of those reads goes
through ``sandbox.RepoSandbox`` (confined to the tree, size-capped; issue 7). The files that make
the stack are chosen in ``files`` (``stack_file_set``). The pipeline:
``yaml_load.load_yaml`` (strict YAML, positions) -> ``keys.TOP`` (interpolation, casting and
validation in one walk of the schema, ``x-`` keys dropped) -> service checks (ignored keys,
image/build) -> paths (build contexts, config/secret files, env_file merged into environment).
"""
from __future__ import annotations

import os
from typing import Dict, List, Mapping, Optional

from controller.errors import ManifestError
from controller.model.manifest import BuildSpec, StackManifest
from controller.render.compose.dotenv import parse_dotenv
from controller.render.compose.files import (STACK_FOLDER_MARKERS, Reader, StackFileSet,
                                             stack_file_set, with_x_keelson_files)
from controller.render.compose.inputs import VARIABLE_PREFIX, hash_file, hash_tree, variable_digest
from controller.render.compose.interpolate import chain_lookup
from controller.render.compose.keys import FORBIDDEN_SERVICE_KEYS, IGNORED_SERVICE_KEYS, TOP
from controller.render.compose.merge import MergedDocument, StackDocument, merge_documents, strip_tags
from controller.render.compose.options import stack_options
from controller.render.compose.depends import read_depends
from controller.render.compose.schema import Context, join
from controller.render.compose.reference import is_valid_reference
from controller.render.compose.encrypted import Decryptor, decrypt_if_encrypted
from controller.render.compose.sandbox import RepoLimits, RepoSandbox
from controller.render.compose.yaml_load import load_yaml

DOTENV_NAME = ".env"


def load_stack(name: str, stack_file: str, environ: Optional[Mapping[str, str]] = None, *,
               root: Optional[str] = None, limits: Optional[RepoLimits] = None,
               decryptor: Optional[Decryptor] = None) -> StackManifest:
    """Load one stack (its base file merged with its override files) into a StackManifest.

    The files are chosen by ``files.stack_file_set`` from the stack file's folder, then by the
    base file's ``x-keelson.files`` when it has one; they merge by Compose's rules
    (``controller.render.compose.merge``). Relative paths in every file resolve against the stack
    folder, as Compose resolves them against the base file's folder.

    Variables for interpolation, highest precedence first: ``environ`` (the controller
    variables the operator allows, ``variables.allowed_variables``), then the ``.env`` file
    beside the stack file (as docker compose: the shell wins over ``.env``).

    Args:
        name: the stack name (its folder's name).
        stack_file: path of the stack file (or of any file in the stack folder that
            :func:`find_stacks` returned); a file with another name is loaded alone.
        environ: the allowed controller variables (default: none).
        root: the tree every read must stay in (the exported revision); errors name files
            relative to it. Default: the stack's own folder.
        limits: size caps (default ``sandbox.DEFAULT_LIMITS``).
        decryptor: decrypts SOPS-encrypted secret/config files, env_files and ``.env`` in
            memory (``encrypted.Decryptor``); None: such a file is an error.
    Returns:
        StackManifest with ``compose`` interpolated, cast and validated, ``files`` (merge
        order), ``builds``, warnings (ignored keys, unset variables), ``positions`` and
        ``inputs``.
    Raises:
        RepoAccessError: a file the stack reads (itself included) leaves the tree, is a symlink
            out of it, is not a regular file or is over its size cap (reason PolicyDenied).
        ManifestError: ambiguous or missing stack files, unreadable file, bad YAML, nesting or
            alias expansion over the limits, bad interpolation, unknown key, bad value, missing
            file or build context; with stack, file, line and key as far as known.
    """
    stack_file = os.path.abspath(stack_file)
    directory = os.path.dirname(stack_file)
    sandbox = RepoSandbox(root or directory, limits)
    shown = sandbox.shown

    def read(path: str) -> str:
        """A stack file's text, through the sandbox and under its size cap."""
        return sandbox.read_text(path, what="stack file",
                                 max_bytes=sandbox.limits.stack_file_bytes)

    try:
        # links out of the tree are only logged at export: the stack holding one fails here, alone
        sandbox.check_folder(directory, what="the stack folder")
        # a stack file with another name is loaded alone
        if os.path.basename(stack_file) in STACK_FOLDER_MARKERS:
            fileset = stack_file_set(directory, shown=shown, read=read)
        else:
            fileset = StackFileSet(stack_file)
        docs = [_read_document(fileset.base, shown, read)]
        fileset = with_x_keelson_files(fileset, docs[0], directory, shown)
        docs += [_read_document(p, shown, read) for p in fileset.overrides]
    except ManifestError as exc:
        raise exc.located(stack=name, file=shown(stack_file))
    merged = merge_documents(docs) if len(docs) > 1 else None
    return _load(docs[0], merged, name=name, directory=directory, fileset=fileset,
                 environ=environ, root=root, sandbox=sandbox, decryptor=decryptor)


def _read_document(path: str, shown, read: Reader) -> StackDocument:
    """Read (through the sandbox) and parse one stack file (errors located in it)."""
    try:
        text = read(path)
    except ManifestError as exc:
        raise exc.located(file=shown(path))
    try:
        data, positions = load_yaml(text)
    except ManifestError as exc:
        raise exc.located(file=shown(path))
    return StackDocument(data, positions, shown(path))



def load_text(text: str, *, name: str = "test", directory: str = ".",
              environ: Optional[Mapping[str, str]] = None,
              filename: str = "stack.yml") -> StackManifest:
    """Load a stack from a string, as :func:`load_stack` does from a single file.

    Args:
        text: the stack file's content.
        name: the stack name. directory: the stack folder (``.env`` and relative paths; also
            the tree every read must stay in).
        environ: allowed controller variables (default: none). filename: the file name
            errors show.
    Returns:
        StackManifest (``file`` is ``directory/filename``).
    Raises:
        ManifestError: as :func:`load_stack`.
    """
    directory = os.path.abspath(directory)
    try:
        data, positions = load_yaml(text)
    except ManifestError as exc:
        raise exc.located(stack=name, file=filename)
    doc = StackDocument(data, positions, filename)
    return _load(doc, None, name=name, directory=directory,
                 fileset=StackFileSet(os.path.join(directory, filename)), environ=environ,
                 root=None, sandbox=RepoSandbox(directory))


def _load(base: StackDocument, merged: Optional[MergedDocument], *, name: str, directory: str,
          fileset: StackFileSet, environ: Optional[Mapping[str, str]],
          root: Optional[str], sandbox: RepoSandbox,
          decryptor: Optional[Decryptor] = None) -> StackManifest:
    try:
        return _Loading(name, directory, fileset, environ, root, sandbox,
                        decryptor).run(base, merged)
    except ManifestError as exc:
        raise exc.located(stack=name, file=base.file)
    except RecursionError as exc:  # a guard missed a deep structure: still this stack's fault
        raise ManifestError("the stack file is nested too deeply", stack=name,
                            file=base.file) from exc


class _Loading:
    """One stack being loaded (keeps the folder, variables and positions together)."""

    def __init__(self, name: str, directory: str, fileset: StackFileSet,
                 environ: Optional[Mapping[str, str]], root: Optional[str],
                 sandbox: RepoSandbox, decryptor: Optional[Decryptor] = None):
        self.name, self.directory, self.file = name, directory, fileset.base
        self.decryptor = decryptor
        self.versions: Dict[str, str] = {}  # path -> version id of a SOPS-decrypted file
        self.fileset = fileset
        self.shown = os.path.relpath(fileset.base, root) if root else os.path.basename(fileset.base)
        self.inputs: Dict[str, str] = {}
        self.root = os.path.realpath(root) if root else None
        self.sandbox = sandbox
        self.environ = {} if environ is None else environ
        self.warnings: List[str] = []
        self.ctx = Context({})

    def run(self, base: StackDocument, merged: Optional[MergedDocument]) -> StackManifest:
        """Load the base document (merged with its overrides when ``merged``) into a manifest.

        Raises:
            ManifestError: empty or non-mapping file, or any schema/interpolation error.
        """
        if base.data is None:
            raise ManifestError("the stack file is empty")
        if not isinstance(base.data, dict):
            raise ManifestError("the stack file must be a mapping with a services key", line=1)
        if merged is not None:
            data, positions = merged.data, dict(merged.positions)
            files = {p: f for p, f in merged.files.items() if f != base.file}
        else:
            data, positions, files = strip_tags(base.data), dict(base.positions), {}
        self.warnings.extend(self.fileset.warnings)
        dotenv = self._dotenv()
        variables = {**dotenv, **self.environ}  # the allowed controller variables win
        self.ctx = Context(positions, chain_lookup(variables), files)
        stack_opts = stack_options(data, self.ctx)  # issue 8: x-keelson (drift, recreate)
        compose = TOP.check(data, "", self.ctx)
        for path, written, docker in self.ctx.number_spellings:
            where = self.ctx.file(path) or self.shown
            line = self.ctx.line(path)
            self.warnings.append(
                f"{where}:{line or '?'}: key {path}: {written} is kept as the string "
                f"{written!r}; docker stack deploy would send {docker!r} (quote the value to "
                "make both agree)")
        for var, where in self.ctx.missing.items():
            self.warnings.append(f"variable {var} is not set, using an empty string "
                                 f"(at {where}; stacks see their .env and the controller "
                                 "variables named in KEELSON_ENV_ALLOW)")
        compose.pop("version", None)  # accepted for compatibility, means nothing
        if compose.pop("name", None) is not None:
            self.warnings.append("top-level name is ignored: a stack is named after its folder")
        self._unset_breaks_value(compose)
        builds: Dict[str, BuildSpec] = {}
        for svc_name, svc in compose["services"].items():
            self._service(svc_name, svc, builds)
        # issue 10: depends_on orders rollouts in waves; a cycle is an error
        depends, depends_warnings = read_depends(compose["services"], self.ctx)
        self.warnings.extend(depends_warnings)
        file_data: Dict[str, bytes] = {}
        for kind in ("configs", "secrets"):
            for key, obj in (compose.get(kind) or {}).items():
                if obj.get("file") is not None:
                    fkey = f"{kind}.{key}.file"
                    obj["file"] = self._path(obj["file"], fkey, want="file")
                    try:
                        file_data[obj["file"]] = self._plain(obj["file"], self.sandbox.read(
                            obj["file"], what=f"{kind[:-1]} file",
                            max_bytes=self.sandbox.limits.object_file_bytes), version=True)
                    except ManifestError as exc:
                        raise exc.at(key=fkey, line=self.ctx.line(fkey))
                    self._input(obj["file"], "file")
        if merged is not None or self.root:  # load_text has no files of its own
            for path in self.fileset.files:
                self._input(path, "file")
        for var, value in sorted(self.ctx.looked_up.items()):
            self.inputs[VARIABLE_PREFIX + var] = variable_digest(value)
        options = data.get("x-keelson")
        if options is not None and not isinstance(options, dict):
            raise self.ctx.error("x-keelson", "x-keelson must be a mapping of Keelson options")
        return StackManifest(name=self.name, file=self.file, directory=self.directory,
                             compose=compose, builds=builds, warnings=self.warnings,
                             positions=dict(self.ctx.positions), x_keelson=dict(options or {}),
                             files=self.fileset.files, position_files=dict(self.ctx.files),
                             inputs=dict(sorted(self.inputs.items())),
                             shown_file=self.shown, variables=variables, file_data=file_data,
                             file_versions=dict(self.versions),
                             options=stack_opts, depends=depends)

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
                raise self.ctx.error(path, f"variable {', '.join(names)} is not set, which leaves "
                                          f"an invalid value {value!r}")

    def _dotenv(self) -> Dict[str, str]:
        """The ``.env`` beside the stack file (read through the sandbox), or {} when absent."""
        path = os.path.join(self.directory, DOTENV_NAME)
        if not os.path.lexists(path):
            return {}
        text = self._text(path, what=DOTENV_NAME)
        self._input(path, "file")
        try:
            return parse_dotenv(text)
        except ManifestError as exc:
            raise ManifestError(f"{DOTENV_NAME} line {exc.line}: {exc.message}") from exc

    def _service(self, svc_name: str, svc: dict, builds: Dict[str, BuildSpec]) -> None:
        key = f"services.{svc_name}"
        for bad, hint in FORBIDDEN_SERVICE_KEYS.items():
            if bad in svc:
                raise self.ctx.error(join(key, bad), f"{bad} is not supported by Swarm: {hint}")
        # depends_on is not ignored: it orders the rollout waves (issue 10)
        ignored = sorted(k for k in svc if k in IGNORED_SERVICE_KEYS and k != "depends_on")
        if ignored:
            self.warnings.append(f"service {svc_name}: ignoring options Swarm does not "
                                 f"support: {', '.join(ignored)}")
        if not svc.get("image") and svc.get("build") is None:
            raise self.ctx.error(key, f"service {svc_name} has neither image nor build")
        if svc.get("image") and not is_valid_reference(str(svc["image"])):
            # an unset variable is only a warning, unless it leaves an invalid name behind
            unset = self.ctx.missing_at.get(f"{key}.image", [])
            why = f" (variable {', '.join(unset)} is not set)" if unset else ""
            raise self.ctx.error(f"{key}.image",
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
        try:
            self.sandbox.check_folder(context, what=f"build context {spec.get('context') or '.'!r}")
        except ManifestError as exc:
            raise exc.at(key=f"{key}.context", line=self.ctx.line(f"{key}.context"))
        spec["context"] = context
        self._input(context, "folder")
        dockerfile = str(spec.get("dockerfile") or "Dockerfile")
        # the Dockerfile may lie outside its context, but never outside the repository
        # (Compose: a relative dockerfile is resolved from the build context)
        try:
            dockerfile_path = self.sandbox.resolve(context, dockerfile, what="build.dockerfile")
        except ManifestError as exc:
            raise exc.at(key=f"{key}.dockerfile", line=self.ctx.line(f"{key}.dockerfile"))
        if os.path.isfile(dockerfile_path):  # a missing one fails the build, with its message
            self._input(dockerfile_path, "file")
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
                         root=self.sandbox.root, args=args, target=spec.get("target") or None,
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
            if not os.path.lexists(path):
                continue  # ``required: false`` and absent
            try:
                text = self._text(path, what="env_file")
            except ManifestError as exc:
                raise exc.at(key=ekey, line=self.ctx.line(ekey))
            self._input(path, "file")
            try:
                merged.update(parse_dotenv(text))
            except ManifestError as exc:
                raise self.ctx.error(ekey, f"env_file {item['path']} line {exc.line}: "
                                          f"{exc.message}") from exc
        # ``environment`` wins; a bare ``KEY`` there does not erase the env_file's value.
        for k, v in environment.items():
            if v is not None or k not in merged:
                merged[k] = v
        return merged

    def _plain(self, path: str, data: bytes, version: bool = False) -> bytes:
        """``data`` as is, or decrypted in memory when it is a SOPS-encrypted file (age only;
        ``version``: remember the decryptor's version id of the plaintext for ``path``).

        Raises:
            ManifestError: it names a key service other than age, Keelson holds no age key,
                or it cannot be decrypted; naming the file and its recipients, never content.
        """
        plain = decrypt_if_encrypted(data, self.sandbox.shown(path), self.decryptor)
        if plain is None:
            return data
        if version:
            self.versions[path] = self.decryptor.version(plain)
        return plain

    def _text(self, path: str, *, what: str) -> str:
        """A dotenv file's text (decrypted when SOPS-encrypted), through the sandbox."""
        data = self._plain(path, self.sandbox.read(path, what=what,
                                                   max_bytes=self.sandbox.limits.env_file_bytes))
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{what} {self.sandbox.shown(path)} is not UTF-8 text "
                                f"(byte {exc.start})") from exc

    def _input(self, path: str, kind: str) -> None:
        """Record ``path`` (a file, or a folder's tree) and its hash in ``inputs``.

        Raises:
            ManifestError: it cannot be read.
        """
        key = os.path.relpath(path, self.root) if self.root else path
        try:
            self.inputs[key] = hash_tree(path) if kind == "folder" else hash_file(path)
        except OSError as exc:
            raise ManifestError(f"cannot read {key}: {exc.strerror or exc}") from exc

    def _path(self, value: str, key: str, want: Optional[str]) -> str:
        """Resolve ``value`` against the stack folder through the sandbox (stays in the tree;
        exists as a ``want`` when given); errors carry ``key`` and its line."""
        parts = [p for p in key.split(".") if not p.isdigit()]
        what = parts[-1] if parts else "file"  # env_file, file, context
        try:
            return self.sandbox.resolve(self.directory, value, what=what, want=want)
        except ManifestError as exc:
            raise exc.at(key=key, line=self.ctx.line(key))


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
