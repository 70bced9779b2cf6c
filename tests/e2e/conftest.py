"""Fixtures for end-to-end tests: Keelson's own image, built from this checkout.

``keelson_image`` starts the dev environment (``scripts/dev-env.sh``), makes the local base image
(``scripts/base-images.sh``: nothing can be pulled here), then ``docker build``s the repo and
yields the tag ``keelson:test``.

pip inside the build container gets this machine's package settings, read at run time: pip's
index URL / extra index URLs / trusted hosts (``pip config list`` and ``PIP_*`` variables; local
``file://`` indexes and find-links are left out, the build container cannot see them), proxy
variables, and the CA bundle pip trusts (``PIP_CERT`` / pip's ``cert``). The CA bundle travels in
a throw-away copy of the build context as ``.build/pip-ca.crt``; only the builder stage reads it,
and the work tree is never written to.

Environment:
    KEELSON_E2E_IMAGE       use this image as is, build nothing (e.g. one built by CI earlier)
    KEELSON_E2E_TAG         tag to build (default ``keelson:test``)
    KEELSON_BUILD_NETWORK   ``docker build --network`` value (default: dockerd's bridge, which
                            reaches the package index on the dev machines)
    KEELSON_BASE_IMAGE      BASE_IMAGE build argument (default: the Dockerfile's)
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TAG = os.environ.get("KEELSON_E2E_TAG", "keelson:test")
CA_IN_CONTEXT = ".build/pip-ca.crt"
BUILD_TIMEOUT_S = 1200


def _pip_config() -> Dict[str, str]:
    """pip's effective settings as ``{name: value}`` (config files, then ``PIP_*`` variables)."""
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], check=True,
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    # precedence, lowest first: [global] < [install] in the config files < PIP_* variables
    sections: Dict[str, Dict[str, str]] = {"global": {}, "install": {}, ":env:": {}}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        section, _, name = key.rpartition(".")
        if sep and section in sections:
            sections[section][name] = value.strip().strip("'\"")
    files: Dict[str, str] = {}
    for section in sections.values():
        files.update(section)
    for name in ("index-url", "extra-index-url", "trusted-host", "cert"):
        var = "PIP_" + name.upper().replace("-", "_")
        if os.environ.get(var):
            files[name] = os.environ[var]
    return files


def _remote(urls: str) -> List[str]:
    """The http(s) URLs of a space/newline separated list (local file:// indexes are dropped)."""
    return [u for u in urls.split() if u.startswith(("http://", "https://"))]


def build_args() -> Dict[str, str]:
    """``--build-arg`` values this machine needs for pip inside the build (CA handled apart)."""
    cfg = _pip_config()
    args: Dict[str, str] = {}
    index = _remote(cfg.get("index-url", ""))
    if index:
        args["PIP_INDEX_URL"] = index[0]
    extra = _remote(cfg.get("extra-index-url", ""))
    if extra:
        args["PIP_EXTRA_INDEX_URL"] = " ".join(extra)
    if cfg.get("trusted-host"):
        args["PIP_TRUSTED_HOST"] = " ".join(cfg["trusted-host"].split())
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        if os.environ.get(var):
            args[var] = os.environ[var]
    if os.environ.get("KEELSON_BASE_IMAGE"):
        args["BASE_IMAGE"] = os.environ["KEELSON_BASE_IMAGE"]
    return args


def ca_bundle() -> str:
    """Path of the CA bundle pip on this machine trusts, or '' for the image's own store."""
    cfg = _pip_config()
    for candidate in (cfg.get("cert", ""), os.environ.get("REQUESTS_CA_BUNDLE", ""),
                      os.environ.get("SSL_CERT_FILE", "")):
        if candidate and os.path.isfile(candidate):
            return candidate
    return ""


def _context_files() -> List[str]:
    """Files of the work tree (tracked and untracked, not ignored) that still exist."""
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                             check=True, capture_output=True, text=True).stdout
        names = [n for n in out.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                 if p.is_file() and ".git" not in p.parts]
    return [n for n in names if (ROOT / n).is_file()]


def build_image(tag: str = TAG) -> str:
    """Build Keelson's image from a throw-away copy of the work tree; returns ``tag``."""
    ctx = pathlib.Path(tempfile.mkdtemp(prefix="keelson-build-"))
    try:
        for name in _context_files():
            dest = ctx / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest)
        args = build_args()
        ca = ca_bundle()
        if ca:
            (ctx / CA_IN_CONTEXT).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ca, ctx / CA_IN_CONTEXT)
            args["PIP_CERT_FILE"] = CA_IN_CONTEXT
        cmd = ["docker", "build", "-t", tag]
        if os.environ.get("KEELSON_BUILD_NETWORK"):
            cmd += ["--network", os.environ["KEELSON_BUILD_NETWORK"]]
        for key, value in sorted(args.items()):
            cmd += ["--build-arg", f"{key}={value}"]
        cmd.append(str(ctx))
        env = dict(os.environ, DOCKER_BUILDKIT="0")  # the legacy builder is what runs here
        started = time.monotonic()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT_S)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
            pytest.fail(f"docker build of {tag} failed ({proc.returncode}):\n{tail}", pytrace=False)
        print(f"[keelson_image] built {tag} in {time.monotonic() - started:.0f}s", file=sys.stderr)
        return tag
    finally:
        shutil.rmtree(ctx, ignore_errors=True)


@pytest.fixture(scope="session")
def keelson_image() -> str:
    """Tag of Keelson's image built from this checkout (``keelson:test``)."""
    if os.environ.get("KEELSON_E2E_IMAGE"):
        yield os.environ["KEELSON_E2E_IMAGE"]
        return
    subprocess.run(["bash", str(ROOT / "scripts" / "dev-env.sh")], check=True)
    subprocess.run(["bash", str(ROOT / "scripts" / "base-images.sh")], check=True)
    yield build_image(TAG)
