"""Settings: every knob Keelson has, with its unit, default and environment variable.

Each field maps to a command-line option and an environment variable (``KEELSON_<NAME>``);
the option wins over the variable, the variable over the default.
"""
from __future__ import annotations

import dataclasses
import hashlib
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
    webhook_secret: str = ""
    prune: bool = True
    instance: str = ""
    extra_env: Mapping[str, str] = field(default_factory=dict)
    # issue 12 / 8 (core at scale, prune guard)
    workers: int = 4
    image_poll_interval_s: float = 300.0
    watch_interval_s: float = 0.5
    prune_max_stacks: int = 5
    prune_max_ratio: float = 0.5
    allow_mass_prune: bool = False
    # -- issue 8 (drift and changes Swarm cannot apply in place) --
    drift: str = "heal"  # heal | report (KEELSON_DRIFT)
    recreate: Tuple[str, ...] = ()  # object kinds to recreate, e.g. ("networks",) (KEELSON_RECREATE)

    def validated(self) -> "Settings":
        """Return self after checking the values; raises ConfigError naming the bad setting."""
        if not self.repo:
            raise ConfigError("--repo (KEELSON_REPO) is required: a git URL, a local repo or a folder")
        if self.interval_s <= 0:
            raise ConfigError(f"--interval must be > 0 seconds, got {self.interval_s}")
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
        if self.listen and ":" not in self.listen:
            raise ConfigError(f"--listen takes host:port, got {self.listen!r}")
        if self.drift not in ("heal", "report"):
            raise ConfigError(f"KEELSON_DRIFT must be heal or report, got {self.drift!r}")
        if any(k != "networks" for k in self.recreate):
            raise ConfigError(f"KEELSON_RECREATE takes a comma list of: networks "
                              f"(volumes are never recreated), got {','.join(self.recreate)!r}")
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
        if t and t[-1] in units:
            return float(t[:-1]) * units[t[-1]]
        return float(t)
    except ValueError:
        raise ConfigError(f"{setting}: not a duration: {text!r}") from None


def env_bool(value: Optional[str], default: bool) -> bool:
    """Read a boolean environment value (1/0, true/false, yes/no); None gives ``default``."""
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


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
    if "KEELSON_PRUNE" in e:
        out["prune"] = env_bool(e["KEELSON_PRUNE"], True)
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
    # -- issue 8 --
    if e.get("KEELSON_DRIFT"):
        out["drift"] = e["KEELSON_DRIFT"].strip().lower()
    if e.get("KEELSON_RECREATE"):
        out["recreate"] = tuple(k.strip() for k in e["KEELSON_RECREATE"].split(",") if k.strip())
    return out


def env_int(text: str, setting: str) -> int:
    """Parse a whole number; raises ConfigError naming ``setting``."""
    try:
        return int(str(text).strip())
    except ValueError:
        raise ConfigError(f"{setting}: not a whole number: {text!r}") from None
