"""Settings: every knob Keelson has, in one table.

Each field of :class:`Settings` is declared once, with ``config_parse.setting``: its default, its
environment variable (``KEELSON_<NAME>``), how the text is parsed (``kind``), its unit and help,
and the command-line option when it has one. The option wins over the variable, the variable
over the default; ``settings_from_env`` and the CLI read the same table, and a unit test checks
that README's settings table names every variable.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from dataclasses import dataclass
from typing import Iterator, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from controller.config_parse import PolicyLevel, Setting, setting
from controller.errors import ConfigError

INSTANCE_RE = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"


@dataclass(frozen=True)
class Settings:
    """Keelson's settings: one field per knob, each declared with :func:`setting` (variable,
    parser, unit, help, option). ``settings_table()`` lists them; README's table shows them."""

    # -- source and loop --
    repo: str = setting("", "KEELSON_REPO", "str", "git URL, local git repo, or plain folder",
                        option="--repo")
    branch: str = setting("main", "KEELSON_BRANCH", "str", "branch to follow", option="--branch")
    path: str = setting("manifests", "KEELSON_PATH", "str",
                        "folder in the repo with one sub-folder per stack", option="--path")
    nodes_file: str = setting("cluster/nodes.yml", "KEELSON_NODES_FILE", "str",
                              "file in the repo declaring node labels, availability and role "
                              "(absent: nodes are not managed)")
    registry: str = setting("", "KEELSON_REGISTRY", "str",
                            "host:port that built images are pushed to ('' forbids builds)",
                            option="--registry", empty_ok=True)
    # -- registry credentials (issue 9), each a Docker secret's file --
    registry_auth: str = setting("", "KEELSON_REGISTRY_AUTH_FILE", "secret_file",
                                 "Docker config.json (auths) with registry logins",
                                 secret=True)
    registry_username: str = setting("", "KEELSON_REGISTRY_USERNAME_FILE", "secret_file",
                                     "file with the login name for KEELSON_REGISTRY",
                                     secret=True)
    registry_password: str = setting("", "KEELSON_REGISTRY_PASSWORD_FILE", "secret_file",
                                     "file with the password/token for KEELSON_REGISTRY",
                                     secret=True)
    interval_s: float = setting(30.0, "KEELSON_INTERVAL", "duration",
                                "seconds between polls (30s, 5m accepted)", option="--interval",
                                above=0)
    listen: str = setting("0.0.0.0:9090", "KEELSON_LISTEN", "str",
                          "HTTP address host:port; '' disables it", option="--listen",
                          empty_ok=True)
    stacks: Tuple[str, ...] = setting((), "KEELSON_STACKS", "list",
                                      "limit to these stacks (comma list; --stack repeatable)",
                                      option="--stack")
    workdir: str = setting("/var/lib/keelson", "KEELSON_WORKDIR", "str",
                           "cache folder for the clone and exported trees", option="--workdir")
    rollout_timeout_s: float = setting(300.0, "KEELSON_ROLLOUT_TIMEOUT", "duration",
                                       "seconds a rollout may take", option="--rollout-timeout",
                                       above=0)
    pending_timeout_s: float = setting(60.0, "KEELSON_PENDING_TIMEOUT", "duration",
                                       "seconds a new task may stay Pending before the rollout "
                                       "fails", above=0)
    webhook_secret: str = setting("", "KEELSON_WEBHOOK_SECRET_FILE", "secret_file",
                                  "file (Docker secret) with the webhook signing secret",
                                  secret=True)
    prune: bool = setting(True, "KEELSON_PRUNE", "bool", "remove stacks that left the repo")
    instance: str = setting("", "KEELSON_INSTANCE", "str",
                            "owner name in io.keelson.instance (default: hash of the repo "
                            "URL without credentials, and path)")
    # -- the core at scale (issue 12) and the prune guard (issue 8) --
    workers: int = setting(4, "KEELSON_WORKERS", "int", "stacks reconciled at once", minimum=1)
    image_poll_interval_s: float = setting(300.0, "KEELSON_IMAGE_POLL_INTERVAL", "duration",
                                           "seconds a tag -> digest answer stays fresh",
                                           minimum=0)
    watch_interval_s: float = setting(0.5, "KEELSON_WATCH_INTERVAL", "duration",
                                      "seconds between rollout polling rounds", above=0)
    prune_max_stacks: int = setting(5, "KEELSON_PRUNE_MAX_STACKS", "int",
                                    "most stacks one pass may remove", minimum=0)
    prune_max_ratio: float = setting(0.5, "KEELSON_PRUNE_MAX_RATIO", "float",
                                     "largest share (0-1) of owned stacks one pass may remove",
                                     minimum=0)
    allow_mass_prune: bool = setting(False, "KEELSON_ALLOW_MASS_PRUNE", "bool",
                                     "lift the prune guard")
    # -- HTTP side (issue 7) --
    api_token: str = setting("", "KEELSON_API_TOKEN_FILE", "secret_file",
                             "file (Docker secret) with the bearer token /api/status needs "
                             "beyond loopback", secret=True)
    webhook_allow_unsigned: bool = setting(False, "KEELSON_WEBHOOK_ALLOW_UNSIGNED", "bool",
                                           "accept unsigned webhooks when no secret is set")
    min_pass_gap_s: float = setting(1.0, "KEELSON_MIN_PASS_GAP", "duration",
                                    "seconds a triggered pass waits after the previous one",
                                    minimum=0)
    http_max_connections: int = setting(32, "KEELSON_HTTP_MAX_CONNECTIONS", "int",
                                        "HTTP connections served at once", minimum=1)
    # -- ownership and admission policy (issue 7) --
    adopt: bool = setting(False, "KEELSON_ADOPT", "bool",
                          "adopt hand-deployed objects in every stack")
    adopt_instances: Tuple[str, ...] = setting((), "KEELSON_ADOPT_INSTANCES", "list",
                                               "other instances whose stacks this one takes over")
    self_stack: str = setting("", "KEELSON_SELF_STACK", "str",
                              "the stack Keelson runs in (default: detected)")
    policy: PolicyLevel = setting(PolicyLevel.BASELINE, "KEELSON_POLICY", "policy",
                                  "admission level: privileged, baseline, restricted",
                                  option="--policy")
    protected_names: Tuple[str, ...] = setting((), "KEELSON_PROTECTED_NAMES", "list",
                                               "more secret/config/network names no stack may "
                                               "use (fnmatch patterns)")
    allowed_bind_paths: Tuple[str, ...] = setting((), "KEELSON_ALLOWED_BIND_PATHS", "list",
                                                  "host paths bind mounts may use")
    # -- bind mounts, drift, recreate (issue 8) --
    bind_root: str = setting("", "KEELSON_BIND_ROOT", "str",
                             "absolute folder on every node for relative bind sources")
    drift: str = setting("heal", "KEELSON_DRIFT", "lower", "heal or report drift")
    recreate: Tuple[str, ...] = setting((), "KEELSON_RECREATE", "list",
                                        "object kinds recreated when Swarm cannot update them "
                                        "in place (networks)")
    # -- trust boundary: sizes, variables, bounded work (issue 7) --
    max_stack_file_bytes: int = setting(256 << 10, "KEELSON_MAX_STACK_FILE_BYTES", "bytes",
                                        "largest stack file read, bytes", above=0)
    max_env_file_bytes: int = setting(256 << 10, "KEELSON_MAX_ENV_FILE_BYTES", "bytes",
                                      "largest .env or env_file read, bytes", above=0)
    max_object_file_bytes: int = setting(500 << 10, "KEELSON_MAX_OBJECT_FILE_BYTES", "bytes",
                                         "largest config/secret file read, bytes (Swarm's "
                                         "limit)", above=0)
    max_tree_bytes: int = setting(256 << 20, "KEELSON_MAX_TREE_BYTES", "bytes",
                                  "largest exported revision, bytes", above=0)
    env_allow: Tuple[str, ...] = setting((), "KEELSON_ENV_ALLOW", "list",
                                         "controller variables stacks may interpolate "
                                         "(fnmatch patterns; KEELSON_* never)")
    build_timeout_s: float = setting(1200.0, "KEELSON_BUILD_TIMEOUT", "duration",
                                     "seconds an image build may take", above=0)
    git_timeout_s: float = setting(300.0, "KEELSON_GIT_TIMEOUT", "duration",
                                   "seconds a git fetch may take", above=0)
    pass_deadline_s: float = setting(3600.0, "KEELSON_PASS_DEADLINE", "duration",
                                     "seconds a pass may run before /readyz answers 503", above=0)
    # -- secrets in git: SOPS + age (issue 9) --
    sops_age_key_file: str = setting("", "KEELSON_SOPS_AGE_KEY_FILE", "str",
                                     "file (Docker secret) with the age identity that decrypts "
                                     "SOPS-encrypted files in the repo ('' : none)",
                                     empty_ok=True)
    # -- analysis after a rollout (issue 10.2) --
    analysis_allow: Tuple[str, ...] = setting((), "KEELSON_ANALYSIS_ALLOW", "list",
                                              "hosts (host[:port]) or URL prefixes analysis "
                                              "checks may call ('' = analysis refused)")

    # -- notifications (issue 13.2) --
    notify_urls: str = setting("", "KEELSON_NOTIFY_URLS_FILE", "secret_file",
                               "file (a Docker secret) with one Apprise URL a line; '' sends "
                               "no notifications", secret=True)
    notify_events: Tuple[str, ...] = setting((), "KEELSON_NOTIFY_EVENTS", "list",
                                             "event kinds to send (comma list; empty: all)")
    notify_repeat_window_s: float = setting(3600.0, "KEELSON_NOTIFY_REPEAT_WINDOW", "duration",
                                            "seconds during which the same failure of a stack "
                                            "is notified once", minimum=0)
    notify_fetch_failing_after_s: float = setting(600.0, "KEELSON_NOTIFY_FETCH_FAILING_AFTER",
                                                  "duration", "seconds of failing fetches "
                                                  "before fetch_failing is notified", minimum=0)
    lease_ttl_s: float = setting(30.0, "KEELSON_LEASE_TTL", "duration",
                                 "seconds the writer lease lasts unrenewed (renewed every third; "
                                 "a second task of the instance waits)", minimum=1)

    def validated(self) -> "Settings":
        """Return the settings checked and completed (policy level parsed, default instance).

        Raises:
            ConfigError: the first bad value, naming its variable (or option).
        """
        if not self.repo:
            raise ConfigError("--repo (KEELSON_REPO) is required: a git URL, a local repo or a folder")
        for f, meta in settings_table():
            if meta.kind in ("duration", "int", "float", "bytes"):
                meta.check(getattr(self, f.name), meta.option or meta.env)
        if self.registry and ("/" in self.registry or "://" in self.registry):
            raise ConfigError(f"--registry takes host:port, got {self.registry!r}")
        if self.listen and ":" not in self.listen:
            raise ConfigError(f"--listen takes host:port, got {self.listen!r}")
        if self.prune_max_ratio > 1:
            raise ConfigError(f"KEELSON_PRUNE_MAX_RATIO must be <= 1, got {self.prune_max_ratio}")
        if self.bind_root and not os.path.isabs(self.bind_root):
            raise ConfigError(f"KEELSON_BIND_ROOT must be an absolute path, got {self.bind_root!r}")
        if self.drift not in ("heal", "report"):
            raise ConfigError(f"KEELSON_DRIFT must be heal or report, got {self.drift!r}")
        if any(k != "networks" for k in self.recreate):
            raise ConfigError(f"KEELSON_RECREATE takes a comma list of: networks "
                              f"(volumes are never recreated), got {','.join(self.recreate)!r}")
        for entry in self.analysis_allow:
            problem = analysis_allow_entry_error(entry)
            if problem:
                raise ConfigError(f"KEELSON_ANALYSIS_ALLOW: {problem}")
        for p in self.allowed_bind_paths:
            if not p.startswith("/"):
                raise ConfigError(f"KEELSON_ALLOWED_BIND_PATHS: {p!r} is not an absolute path")
        for name in self.adopt_instances:
            if not re.fullmatch(INSTANCE_RE, name):
                raise ConfigError(f"KEELSON_ADOPT_INSTANCES: {name!r} is not an instance name")
        if self.self_stack and not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", self.self_stack):
            raise ConfigError(f"KEELSON_SELF_STACK: {self.self_stack!r} is not a stack name")
        checked = dataclasses.replace(self, policy=self.policy if isinstance(
            self.policy, PolicyLevel) else PolicyLevel.parse(str(self.policy)))
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


def analysis_allow_entry_error(entry: str) -> Optional[str]:
    """Why ``entry`` is not a valid KEELSON_ANALYSIS_ALLOW entry, or None when it is.

    An entry is a host or ``host:port`` (no path), or an http(s) URL prefix; neither may carry
    credentials. The rules that match URLs against entries are in ``controller.policy.analysis``.
    """
    text = entry.strip()
    if not text:
        return "empty entry"
    probe = text if "://" in text else f"http://{text}"
    try:
        parts = urlsplit(probe)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"{entry!r}: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{entry!r} is neither a host[:port] nor an http(s) URL prefix"
    if parts.username is not None or parts.password is not None:
        return f"{entry!r}: credentials do not belong in an allow entry"
    if "://" not in text and (parts.path or parts.query):
        return f"{entry!r}: a host entry has no path (write a URL prefix: http://{text})"
    return None


def settings_table() -> Iterator[Tuple[dataclasses.Field, Setting]]:
    """Every Settings field with its Setting, in declaration order."""
    for f in dataclasses.fields(Settings):
        meta = f.metadata.get("setting")
        if meta is not None:
            yield f, meta


def settings_from_env(environ: Mapping[str, str] = os.environ) -> dict:
    """Read every ``KEELSON_*`` variable of the table as Settings keyword arguments.

    An empty variable means unset, except for settings where "" is a value (``empty_ok``:
    ``KEELSON_REGISTRY``, ``KEELSON_LISTEN``).

    Raises:
        ConfigError: a value that does not parse, naming its variable.
    """
    out: dict = {}
    for f, meta in settings_table():
        text = environ.get(meta.env)
        if text is None or (text.strip() == "" and not meta.empty_ok):
            continue
        out[f.name] = text if meta.empty_ok and text.strip() == "" else meta.parse(text)
    return out


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
