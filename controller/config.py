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
from typing import Mapping, Optional, Tuple

from controller.errors import ConfigError


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
        bind_root: absolute folder, present on every node, that relative bind mount sources
            resolve against as ``<bind_root>/<stack>/<source>`` (KEELSON_BIND_ROOT); empty
            (the default) refuses relative bind sources with a hint.
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
    webhook_secret: str = ""
    prune: bool = True
    instance: str = ""
    extra_env: Mapping[str, str] = field(default_factory=dict)
    # --- issue 8 (relative bind mounts) ---
    bind_root: str = ""  # KEELSON_BIND_ROOT: absolute folder on every node; "" refuses them

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
        if self.bind_root and not os.path.isabs(self.bind_root):  # issue 8
            raise ConfigError(f"KEELSON_BIND_ROOT must be an absolute path, got {self.bind_root!r}")
        if self.listen and ":" not in self.listen:
            raise ConfigError(f"--listen takes host:port, got {self.listen!r}")
        if not self.instance:
            digest = hashlib.sha256(f"{self.repo}#{self.path}".encode()).hexdigest()[:10]
            return dataclasses.replace(self, instance=f"keelson-{digest}")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", self.instance):
            raise ConfigError(f"KEELSON_INSTANCE: letters, digits, . _ - only, got {self.instance!r}")
        return self


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
    return out
