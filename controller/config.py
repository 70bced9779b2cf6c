"""Settings: every knob Keelson has, with its unit, default and environment variable.

Each field maps to a command-line option and an environment variable (``KEELSON_<NAME>``);
the option wins over the variable, the variable over the default.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Mapping, Optional, Tuple

from controller.errors import ConfigError


# --- issue 7: ownership and admission policy ------------------------------------------------
INSTANCE_RE = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"


class PolicyLevel(str, Enum):
    """Admission levels, after Kubernetes Pod Security Standards (privileged < baseline <
    restricted); what each refuses is in ``controller.policy.admission``."""

    PRIVILEGED = "privileged"
    BASELINE = "baseline"
    RESTRICTED = "restricted"

    @classmethod
    def parse(cls, text: str) -> "PolicyLevel":
        """The level named ``text`` (case-insensitive); raises ConfigError naming KEELSON_POLICY."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise ConfigError(f"KEELSON_POLICY: {text!r} is not one of privileged, baseline, "
                              "restricted") from None


def repo_identity(repo: str) -> str:
    """The repository a URL names, without what may change while the repository stays the same.

    Drops the scheme, userinfo (``user:token@``), query and fragment, lower-cases the host, and
    strips trailing slashes and ``.git``: ``https://u:t@Git.example.com/org/deploy.git/``,
    ``ssh://git@git.example.com/org/deploy`` and ``git@git.example.com:org/deploy.git`` all give
    ``git.example.com/org/deploy``. A local path keeps its form (trailing ``/`` and ``.git``
    stripped).

    Args:
        repo: KEELSON_REPO as given.
    Returns:
        str: the identity text hashed into the default instance name.
    """
    text = repo.strip()
    url = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)([^?#]*)", text)
    scp = re.match(r"^(?:[^@/:]+@)?([^/:]+):(?!//)([^?#]*)", text)
    if url:
        host = url.group(1).rsplit("@", 1)[-1].lower()
        text = f"{host}/{url.group(2).lstrip('/')}"
    elif scp and "/" not in text.split(":", 1)[0]:
        text = f"{scp.group(1).lower()}/{scp.group(2).lstrip('/')}"
    while True:
        stripped = re.sub(r"(\.git)?/*$", "", text)
        if stripped == text or not stripped:
            return stripped or text
        text = stripped


def default_instance(repo: str, path: str, legacy: bool = False) -> str:
    """``keelson-`` + 10 hex of sha256(repo identity + ``#`` + path).

    Args:
        repo: KEELSON_REPO. path: KEELSON_PATH.
        legacy: hash the URL as given (credentials included), as versions before issue 7 did;
            used only to take over stacks such a version labelled.
    """
    ident = repo if legacy else repo_identity(repo)
    where = path if legacy else path.strip("/")
    return "keelson-" + hashlib.sha256(f"{ident}#{where}".encode()).hexdigest()[:10]


def comma_list(text: str) -> Tuple[str, ...]:
    """``a, b,,c`` -> ``("a", "b", "c")``."""
    return tuple(x.strip() for x in text.split(",") if x.strip())


def trust_settings_from_env(e: Mapping[str, str]) -> dict:
    """Issue 7's ``KEELSON_*`` variables as Settings keyword arguments."""
    out: dict = {}
    if "KEELSON_ADOPT" in e:
        out["adopt"] = env_bool(e["KEELSON_ADOPT"], False)
    if e.get("KEELSON_ADOPT_INSTANCES"):
        out["adopt_instances"] = comma_list(e["KEELSON_ADOPT_INSTANCES"])
    if e.get("KEELSON_SELF_STACK"):
        out["self_stack"] = e["KEELSON_SELF_STACK"].strip()
    if e.get("KEELSON_POLICY"):
        out["policy"] = PolicyLevel.parse(e["KEELSON_POLICY"])
    if e.get("KEELSON_PROTECTED_NAMES"):
        out["protected_names"] = comma_list(e["KEELSON_PROTECTED_NAMES"])
    if e.get("KEELSON_ALLOWED_BIND_PATHS"):
        out["allowed_bind_paths"] = comma_list(e["KEELSON_ALLOWED_BIND_PATHS"])
    return out
# --- end issue 7 ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Keelson's settings.

    Attributes:
        repo: git URL, local git repo, or plain folder holding the manifests (KEELSON_REPO).
        branch: branch to follow (KEELSON_BRANCH).
        path: folder inside the repo with one sub-folder per stack (KEELSON_PATH).
        registry: ``host:port`` of the registry built images are pushed to (KEELSON_REGISTRY);
            empty means builds are not allowed.
        interval_s: seconds between polls of the repo (KEELSON_INTERVAL).
        listen: ``host:port`` of the HTTP server (KEELSON_LISTEN); empty disables it.
        stacks: limit reconcile to these stack names (``--stack``, KEELSON_STACKS comma list).
        workdir: folder for the git clone and exported trees (KEELSON_WORKDIR).
        rollout_timeout_s: seconds a rollout may take before it is failed (KEELSON_ROLLOUT_TIMEOUT).
        pending_timeout_s: seconds a new task may stay Pending/Assigned before the rollout is
            failed with the task's own message (KEELSON_PENDING_TIMEOUT).
        webhook_secret: shared secret for ``POST /hooks/git`` (KEELSON_WEBHOOK_SECRET); read from
            the file named by KEELSON_WEBHOOK_SECRET_FILE when that is set (Docker secrets).
        prune: remove stacks/services that left the repo (KEELSON_PRUNE).
        instance: name of this Keelson in the ``io.keelson.instance`` label (KEELSON_INSTANCE);
            it prunes only objects carrying its own name. Default: ``keelson-`` + 10 hex of
            sha256(repo + path), so two controllers of different repos never prune each other.
        workers: stacks reconciled at once in a pass (KEELSON_WORKERS, default 4).
        image_poll_interval_s: seconds a tag -> digest answer stays fresh; the registry is asked
            again after that (KEELSON_IMAGE_POLL_INTERVAL, default 300). A tag a commit names
            for the first time is asked at once.
        watch_interval_s: seconds between rollout polling rounds (KEELSON_WATCH_INTERVAL, 0.5).
        prune_max_stacks / prune_max_ratio: a pass that would remove more stacks than this
            number, or more than this share of the stacks this Keelson owns, removes nothing
            and fails with PruneBlocked (KEELSON_PRUNE_MAX_STACKS, default 5;
            KEELSON_PRUNE_MAX_RATIO, default 0.5).
        allow_mass_prune: lift that guard (KEELSON_ALLOW_MASS_PRUNE, or ``keelson sync
            --allow-mass-prune`` for one pass).
        api_token: bearer token ``/api/status`` (and any API that can act) requires when the
            HTTP server is bound beyond loopback; read from the file named by
            KEELSON_API_TOKEN_FILE (a Docker secret). Empty: those routes answer 401 there.
        webhook_allow_unsigned: accept webhooks without a signature when no webhook secret is
            set (KEELSON_WEBHOOK_ALLOW_UNSIGNED, default false: unsigned POSTs are refused).
        min_pass_gap_s: seconds a triggered pass (webhook, file event) waits after the previous
            pass ended (KEELSON_MIN_PASS_GAP, default 1); triggers in between are coalesced.
        http_max_connections: connections the HTTP server serves at once; more are answered
            503 at once and closed (KEELSON_HTTP_MAX_CONNECTIONS, default 32).
            The repo URL is hashed without credentials (userinfo, query), scheme, trailing
            ``.git`` and slashes (``repo_identity``), so rotating a token keeps the instance.

        Issue 7 (ownership and admission policy):
        adopt: adopt hand-deployed objects (no Keelson owner) in every stack, as
            ``x-keelson: {adopt: true}`` does for one stack (KEELSON_ADOPT, default false).
        adopt_instances: names of other Keelson instances whose stacks and state records this
            one takes over (KEELSON_ADOPT_INSTANCES, comma list, default empty). ``validated``
            adds the name earlier versions derived from the URL as given (credentials included),
            so an upgrade keeps its stacks.
        self_stack: the stack Keelson itself runs in, never changed nor pruned
            (KEELSON_SELF_STACK; default: detected from Keelson's own service labels).
        policy: admission level for what a stack may deploy (KEELSON_POLICY: privileged,
            baseline or restricted; default baseline). A stack cannot set it.
        protected_names: more secret/config/network names (fnmatch patterns) no stack may use,
            besides Keelson's own and every ``keelson_*`` name (KEELSON_PROTECTED_NAMES, comma
            list).
        allowed_bind_paths: absolute host paths under which bind mounts are allowed at baseline
            and restricted (KEELSON_ALLOWED_BIND_PATHS, comma list, default empty: none).
        bind_root: absolute folder, present on every node, that relative bind mount sources
            resolve against as ``<bind_root>/<stack>/<source>`` (KEELSON_BIND_ROOT); empty
            (the default) refuses relative bind sources with a hint.

        Trust boundary (issue 7): what a merge to the repo may make Keelson read or wait for.
        max_stack_file_bytes: largest stack file read, bytes (KEELSON_MAX_STACK_FILE_BYTES,
            default 256 KiB; PyYAML composes about 250 KiB a second here).
        max_env_file_bytes: largest ``.env`` or ``env_file`` read, bytes
            (KEELSON_MAX_ENV_FILE_BYTES, default 256 KiB).
        max_object_file_bytes: largest config/secret ``file:`` read, bytes
            (KEELSON_MAX_OBJECT_FILE_BYTES, default 500 KiB: Swarm's own limit for a config or
            secret, swarmkit ``MaxConfigSize``/``MaxSecretSize``).
        max_tree_bytes: largest exported revision, bytes, counting 512 per entry plus file sizes
            (KEELSON_MAX_TREE_BYTES, default 256 MiB); a bigger revision fails the fetch.
        env_allow: controller variables stack files may interpolate, as fnmatch patterns
            (KEELSON_ENV_ALLOW comma list, default none); ``KEELSON_*`` never, whatever the
            pattern.
        build_timeout_s: seconds one image build may take before it is cancelled
            (KEELSON_BUILD_TIMEOUT, default 1200).
        git_timeout_s: seconds one git command (fetch) may take before it is killed
            (KEELSON_GIT_TIMEOUT, default 300).
        pass_deadline_s: seconds a pass may run before ``/readyz`` answers 503
            (KEELSON_PASS_DEADLINE, default 3600).
        drift: what a pass does with a live field that differs from git (KEELSON_DRIFT):
            ``heal`` (default: write the desired spec back) or ``report`` (only report
            OutOfSync); a stack's ``x-keelson: {drift: ...}`` wins (issue 8.4).
        recreate: object kinds Keelson may recreate for every stack when a change cannot be
            applied in place (KEELSON_RECREATE, comma list; only ``networks``); default none,
            so such a change fails its stack; a stack adds kinds with ``x-keelson:
            {recreate: [networks]}`` (issue 8.3).
    """

    repo: str = ""
    branch: str = "main"
    path: str = "manifests"
    registry: str = ""
    interval_s: float = 30.0
    listen: str = "0.0.0.0:9090"
    stacks: Tuple[str, ...] = ()
    workdir: str = "/var/lib/keelson"
    rollout_timeout_s: float = 300.0
    pending_timeout_s: float = 60.0
    webhook_secret: str = field(default="", repr=False)  # a secret: never in a repr (issue 7)
    prune: bool = True
    instance: str = ""
    # issue 12 / 8 (core at scale, prune guard)
    workers: int = 4
    image_poll_interval_s: float = 300.0
    watch_interval_s: float = 0.5
    prune_max_stacks: int = 5
    prune_max_ratio: float = 0.5
    allow_mass_prune: bool = False
    # --- issue 7, the HTTP side: API token, webhook policy, trigger gap, server bounds ---
    api_token: str = field(default="", repr=False)  # a secret: never in a repr
    webhook_allow_unsigned: bool = False
    min_pass_gap_s: float = 1.0  # seconds
    http_max_connections: int = 32
    # --- issue 7: ownership and admission policy ---
    adopt: bool = False
    adopt_instances: Tuple[str, ...] = ()
    self_stack: str = ""
    policy: PolicyLevel = PolicyLevel.BASELINE
    protected_names: Tuple[str, ...] = ()
    allowed_bind_paths: Tuple[str, ...] = ()
    # --- issue 8 (relative bind mounts) ---
    bind_root: str = ""  # KEELSON_BIND_ROOT: absolute folder on every node; "" refuses them
    # -- issue 7: trust boundary (sandbox limits, allowed variables, bounded work) --
    max_stack_file_bytes: int = 256 << 10
    max_env_file_bytes: int = 256 << 10
    max_object_file_bytes: int = 500 << 10
    max_tree_bytes: int = 256 << 20
    env_allow: Tuple[str, ...] = ()
    build_timeout_s: float = 1200.0
    git_timeout_s: float = 300.0
    pass_deadline_s: float = 3600.0
    # -- issue 8 (drift and changes Swarm cannot apply in place) --
    drift: str = "heal"  # heal | report (KEELSON_DRIFT)
    recreate: Tuple[str, ...] = ()  # object kinds to recreate, e.g. ("networks",) (KEELSON_RECREATE)

    def validated(self) -> "Settings":
        """Return self after checking the values; raises ConfigError naming the bad setting."""
        if not self.repo:
            raise ConfigError("--repo (KEELSON_REPO) is required: a git URL, a local repo or a folder")
        if self.interval_s <= 0:
            raise ConfigError(f"--interval must be > 0 seconds, got {self.interval_s}")
        # issue 8: every duration must be positive (a bad env value exits 2 with one line)
        for value, name in ((self.rollout_timeout_s, "--rollout-timeout (KEELSON_ROLLOUT_TIMEOUT)"),
                            (self.pending_timeout_s, "KEELSON_PENDING_TIMEOUT")):
            if value <= 0:
                raise ConfigError(f"{name} must be > 0 seconds, got {value:g}")
        if self.registry and ("/" in self.registry or "://" in self.registry):
            raise ConfigError(f"--registry takes host:port, got {self.registry!r}")
        if self.workers < 1:
            raise ConfigError(f"KEELSON_WORKERS must be >= 1, got {self.workers}")
        if self.image_poll_interval_s < 0 or self.watch_interval_s <= 0:
            raise ConfigError("KEELSON_IMAGE_POLL_INTERVAL must be >= 0 and "
                              "KEELSON_WATCH_INTERVAL > 0 seconds")
        if self.prune_max_stacks < 0 or not 0 <= self.prune_max_ratio <= 1:
            raise ConfigError("KEELSON_PRUNE_MAX_STACKS must be >= 0 and KEELSON_PRUNE_MAX_RATIO "
                              f"between 0 and 1, got {self.prune_max_stacks}, {self.prune_max_ratio}")
        if self.bind_root and not os.path.isabs(self.bind_root):  # issue 8
            raise ConfigError(f"KEELSON_BIND_ROOT must be an absolute path, got {self.bind_root!r}")
        if self.listen and ":" not in self.listen:
            raise ConfigError(f"--listen takes host:port, got {self.listen!r}")
        if self.drift not in ("heal", "report"):
            raise ConfigError(f"KEELSON_DRIFT must be heal or report, got {self.drift!r}")
        if any(k != "networks" for k in self.recreate):
            raise ConfigError(f"KEELSON_RECREATE takes a comma list of: networks "
                              f"(volumes are never recreated), got {','.join(self.recreate)!r}")
        # issue 7: trigger gap and HTTP bounds
        if self.min_pass_gap_s < 0:
            raise ConfigError(f"KEELSON_MIN_PASS_GAP must be >= 0 seconds, got {self.min_pass_gap_s}")
        if self.http_max_connections < 1:
            raise ConfigError("KEELSON_HTTP_MAX_CONNECTIONS must be >= 1, "
                              f"got {self.http_max_connections}")
        for name in ("max_stack_file_bytes", "max_env_file_bytes", "max_object_file_bytes",
                     "max_tree_bytes", "build_timeout_s", "git_timeout_s", "pass_deadline_s"):
            if getattr(self, name) <= 0:  # issue 7: every bound must bound something
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        checked = self._trust_checked()  # issue 7
        if not checked.instance:
            legacy = default_instance(checked.repo, checked.path, legacy=True)
            instance = default_instance(checked.repo, checked.path)
            takeover = checked.adopt_instances
            if legacy != instance and legacy not in takeover:
                takeover = takeover + (legacy,)
            return dataclasses.replace(checked, instance=instance, adopt_instances=takeover)
        if not re.fullmatch(INSTANCE_RE, checked.instance):
            raise ConfigError(f"KEELSON_INSTANCE: letters, digits, . _ - only, got {checked.instance!r}")
        return checked

    def _trust_checked(self) -> "Settings":
        """Issue 7 settings checked: policy level parsed, bind paths absolute, names valid."""
        level = self.policy if isinstance(self.policy, PolicyLevel) else PolicyLevel.parse(
            str(self.policy))
        for p in self.allowed_bind_paths:
            if not p.startswith("/"):
                raise ConfigError(f"KEELSON_ALLOWED_BIND_PATHS: {p!r} is not an absolute path")
        for name in self.adopt_instances:
            if not re.fullmatch(INSTANCE_RE, name):
                raise ConfigError(f"KEELSON_ADOPT_INSTANCES: {name!r} is not an instance name")
        if self.self_stack and not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", self.self_stack):
            raise ConfigError(f"KEELSON_SELF_STACK: {self.self_stack!r} is not a stack name")
        return dataclasses.replace(self, policy=level)


def parse_duration_s(text: str, setting: str) -> float:
    """Parse ``30``, ``30s``, ``5m``, ``1h`` into seconds; raises ConfigError naming ``setting``."""
    t = str(text).strip()
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise ConfigError(f"{setting}: not a duration: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{setting}: must be a finite number of seconds >= 0, got {text!r}")
    return value


def env_bool(value: Optional[str], default: bool, setting: str = "") -> bool:
    """Read a boolean environment value (1/0, true/false, yes/no, on/off); None gives ``default``.

    Args:
        value: the variable's text, or None. default: used when ``value`` is None or empty.
        setting: the variable's name, for the error.
    Returns:
        bool.
    Raises:
        ConfigError: any other word (``KEELSON_PRUNE=maybe`` must not silently mean false).
    """
    if value is None or value.strip() == "":
        return default
    word = value.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{setting or 'value'}: not a boolean: {value!r} (use true or false)")


def settings_from_env(environ: Mapping[str, str] = os.environ) -> dict:
    """Collect the ``KEELSON_*`` variables as Settings keyword arguments (strings converted)."""
    out: dict = {}
    e = environ
    if e.get("KEELSON_REPO"):
        out["repo"] = e["KEELSON_REPO"]
    if e.get("KEELSON_BRANCH"):
        out["branch"] = e["KEELSON_BRANCH"]
    if e.get("KEELSON_PATH"):
        out["path"] = e["KEELSON_PATH"]
    if "KEELSON_REGISTRY" in e:
        out["registry"] = e["KEELSON_REGISTRY"]
    if e.get("KEELSON_INTERVAL"):
        out["interval_s"] = parse_duration_s(e["KEELSON_INTERVAL"], "KEELSON_INTERVAL")
    if "KEELSON_LISTEN" in e:
        out["listen"] = e["KEELSON_LISTEN"]
    if e.get("KEELSON_STACKS"):
        out["stacks"] = tuple(s.strip() for s in e["KEELSON_STACKS"].split(",") if s.strip())
    if e.get("KEELSON_WORKDIR"):
        out["workdir"] = e["KEELSON_WORKDIR"]
    if e.get("KEELSON_ROLLOUT_TIMEOUT"):
        out["rollout_timeout_s"] = parse_duration_s(e["KEELSON_ROLLOUT_TIMEOUT"], "KEELSON_ROLLOUT_TIMEOUT")
    if e.get("KEELSON_PENDING_TIMEOUT"):
        out["pending_timeout_s"] = parse_duration_s(e["KEELSON_PENDING_TIMEOUT"], "KEELSON_PENDING_TIMEOUT")
    if e.get("KEELSON_WEBHOOK_SECRET_FILE"):
        try:
            with open(e["KEELSON_WEBHOOK_SECRET_FILE"], encoding="utf-8") as fh:
                out["webhook_secret"] = fh.read().strip()
        except OSError as exc:
            raise ConfigError(f"KEELSON_WEBHOOK_SECRET_FILE: {exc}") from exc
    elif e.get("KEELSON_WEBHOOK_SECRET"):
        out["webhook_secret"] = e["KEELSON_WEBHOOK_SECRET"]
    if e.get("KEELSON_INSTANCE"):
        out["instance"] = e["KEELSON_INSTANCE"]
    # --- issue 8 ---
    if e.get("KEELSON_BIND_ROOT"):
        out["bind_root"] = e["KEELSON_BIND_ROOT"]
    if "KEELSON_PRUNE" in e:
        out["prune"] = env_bool(e["KEELSON_PRUNE"], True, "KEELSON_PRUNE")
    # issue 12 / 8 (core at scale, prune guard)
    if e.get("KEELSON_WORKERS"):
        out["workers"] = env_int(e["KEELSON_WORKERS"], "KEELSON_WORKERS")
    for var, key in (("KEELSON_IMAGE_POLL_INTERVAL", "image_poll_interval_s"),
                     ("KEELSON_WATCH_INTERVAL", "watch_interval_s")):
        if e.get(var):
            out[key] = parse_duration_s(e[var], var)
    if e.get("KEELSON_PRUNE_MAX_STACKS"):
        out["prune_max_stacks"] = env_int(e["KEELSON_PRUNE_MAX_STACKS"], "KEELSON_PRUNE_MAX_STACKS")
    if e.get("KEELSON_PRUNE_MAX_RATIO"):
        try:
            out["prune_max_ratio"] = float(e["KEELSON_PRUNE_MAX_RATIO"])
        except ValueError:
            raise ConfigError(f"KEELSON_PRUNE_MAX_RATIO: not a number: "
                              f"{e['KEELSON_PRUNE_MAX_RATIO']!r}") from None
    if "KEELSON_ALLOW_MASS_PRUNE" in e:
        out["allow_mass_prune"] = env_bool(e["KEELSON_ALLOW_MASS_PRUNE"], False)
    # -- issue 7: trust boundary --
    for var, key in (("KEELSON_MAX_STACK_FILE_BYTES", "max_stack_file_bytes"),
                     ("KEELSON_MAX_ENV_FILE_BYTES", "max_env_file_bytes"),
                     ("KEELSON_MAX_OBJECT_FILE_BYTES", "max_object_file_bytes"),
                     ("KEELSON_MAX_TREE_BYTES", "max_tree_bytes")):
        if e.get(var):
            out[key] = parse_bytes(e[var], var)
    if e.get("KEELSON_ENV_ALLOW"):
        out["env_allow"] = parse_env_allow(e["KEELSON_ENV_ALLOW"])
    for var, key in (("KEELSON_BUILD_TIMEOUT", "build_timeout_s"),
                     ("KEELSON_GIT_TIMEOUT", "git_timeout_s"),
                     ("KEELSON_PASS_DEADLINE", "pass_deadline_s")):
        if e.get(var):
            out[key] = parse_duration_s(e[var], var)
    # -- issue 8 --
    if e.get("KEELSON_DRIFT"):
        out["drift"] = e["KEELSON_DRIFT"].strip().lower()
    if e.get("KEELSON_RECREATE"):
        out["recreate"] = tuple(k.strip() for k in e["KEELSON_RECREATE"].split(",") if k.strip())
    out.update(_http_settings_from_env(e))
    out.update(trust_settings_from_env(e))  # issue 7
    return out


def _http_settings_from_env(e: Mapping[str, str]) -> dict:
    """Issue 7's HTTP settings from ``KEELSON_*`` variables (see Settings for units/defaults).

    Raises:
        ConfigError: the token file cannot be read or is empty, or a number does not parse.
    """
    out: dict = {}
    if e.get("KEELSON_API_TOKEN_FILE"):
        try:
            with open(e["KEELSON_API_TOKEN_FILE"], encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as exc:
            raise ConfigError(f"KEELSON_API_TOKEN_FILE: {exc}") from exc
        if not token:
            raise ConfigError(f"KEELSON_API_TOKEN_FILE: {e['KEELSON_API_TOKEN_FILE']} is empty")
        out["api_token"] = token
    if "KEELSON_WEBHOOK_ALLOW_UNSIGNED" in e:
        out["webhook_allow_unsigned"] = env_bool(e["KEELSON_WEBHOOK_ALLOW_UNSIGNED"], False)
    if e.get("KEELSON_MIN_PASS_GAP"):
        out["min_pass_gap_s"] = parse_duration_s(e["KEELSON_MIN_PASS_GAP"], "KEELSON_MIN_PASS_GAP")
    if e.get("KEELSON_HTTP_MAX_CONNECTIONS"):
        try:
            out["http_max_connections"] = int(e["KEELSON_HTTP_MAX_CONNECTIONS"])
        except ValueError:
            raise ConfigError("KEELSON_HTTP_MAX_CONNECTIONS: not an integer: "
                              f"{e['KEELSON_HTTP_MAX_CONNECTIONS']!r}") from None
    return out


def env_int(text: str, setting: str) -> int:
    """Parse a whole number; raises ConfigError naming ``setting``."""
    try:
        return int(str(text).strip())
    except ValueError:
        raise ConfigError(f"{setting}: not a whole number: {text!r}") from None


def parse_bytes(text: str, setting: str) -> int:
    """Parse ``1048576``, ``512k``, ``1m``, ``1g`` (powers of 1024) into bytes.

    Raises:
        ConfigError: not a number of bytes, naming ``setting``.
    """
    t = str(text).strip().lower().rstrip("b").rstrip("i")
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(t)
    except ValueError:
        raise ConfigError(f"{setting}: not a size in bytes: {text!r}") from None


def parse_env_allow(text: str) -> Tuple[str, ...]:
    """``KEELSON_ENV_ALLOW``: a comma list of fnmatch patterns (``APP_*,DOMAIN``), blanks dropped."""
    return tuple(p.strip() for p in str(text).split(",") if p.strip())
