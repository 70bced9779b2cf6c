"""Credentials for the manifests remote: HTTPS token or URL userinfo, SSH key and known hosts.

Secrets never reach git's command line: they travel in ``GIT_CONFIG_*`` environment variables
(or ``GIT_SSH_COMMAND``) and are redacted from every message by :meth:`GitCredentials.redact`.
"""
from __future__ import annotations

import base64
import os
import re
import shlex
import stat
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import unquote, urlsplit, urlunsplit

from controller.errors import GitFetchError


def split_credentials(url: str) -> Tuple[str, Optional[Tuple[str, str]]]:
    """Take ``user:password@`` out of an http(s) URL so it never reaches a command line.

    Args:
        url: the repo URL or local path as configured.
    Returns:
        (url without userinfo, (user, password) URL-decoded, or None when the URL is not
        http(s) or carries no userinfo).
    """
    if not url.startswith(("https://", "http://")):
        return url, None
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), (unquote(user), unquote(password))


class GitCredentials:
    """The credentials of one git source, read again from ``environ`` on every ``git_env()``.

    Args:
        url_credentials: (user, password) taken out of the URL by :func:`split_credentials`,
            or None; they win over ``KEELSON_GIT_TOKEN``.
        environ: ``KEELSON_GIT_TOKEN`` or ``KEELSON_GIT_TOKEN_FILE`` (HTTPS; optional
            ``KEELSON_GIT_USERNAME``, default ``x-access-token``), ``KEELSON_GIT_SSH_KEY_FILE``
            and ``KEELSON_GIT_KNOWN_HOSTS_FILE`` (SSH).
        workdir: absolute path of Keelson's folder; a private copy of a group/world-readable
            SSH key goes in ``<workdir>/.ssh``.
    """

    def __init__(self, url_credentials: Optional[Tuple[str, str]], environ: Mapping[str, str],
                 workdir: str):
        self._url_credentials = url_credentials
        self._environ = environ
        self._workdir = workdir
        self._secrets: List[str] = []

    def git_env(self, url: str) -> Dict[str, str]:
        """Environment for one git command: no prompts, credentials as config variables.

        Args:
            url: the repo URL without userinfo; a Basic header is only set for http(s), scoped
                to its scheme and host so a redirect elsewhere does not receive it.
        Returns:
            dict: variables added to the process environment. Secrets it carries are also
            recorded so :meth:`redact` can strip them from messages.
        Raises:
            GitFetchError: ``KEELSON_GIT_TOKEN_FILE`` or ``KEELSON_GIT_SSH_KEY_FILE`` cannot be
                read, or the key cannot be copied.
        """
        env = {"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never"}
        config: List[Tuple[str, str]] = [("http.lowSpeedLimit", "1000"),
                                         ("http.lowSpeedTime", "60")]
        secrets: List[str] = []
        basic = self._basic_credentials()
        if basic is not None and url.startswith(("https://", "http://")):
            user, password = basic
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            parts = urlsplit(url)
            # scoped to the repo's host so a redirect elsewhere does not receive it
            config.append((f"http.{parts.scheme}://{parts.netloc}/.extraHeader",
                           f"Authorization: Basic {token}"))
            secrets += [password, token]
        ssh = self._ssh_command()
        if ssh:
            env["GIT_SSH_COMMAND"] = ssh
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for i, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
        self._secrets = [s for s in secrets if s]
        return env

    def redact(self, text: str) -> str:
        """Replace every secret this source knows (and any URL userinfo) with ``***``.

        Args:
            text: a message that may quote a command, a URL or git's stderr.
        Returns:
            str: ``text`` with the last ``git_env()`` secrets, the URL password and the
            ``user:pass@`` part of any http(s) URL replaced by ``***``.
        """
        for secret in self._secrets:
            text = text.replace(secret, "***")
        if self._url_credentials is not None and self._url_credentials[1]:
            text = text.replace(self._url_credentials[1], "***")
        return re.sub(r"(https?://)[^/@\s]+@", r"\1***@", text)

    def _basic_credentials(self) -> Optional[Tuple[str, str]]:
        """(user, token) from the URL, KEELSON_GIT_TOKEN or KEELSON_GIT_TOKEN_FILE, or None."""
        if self._url_credentials is not None:
            return self._url_credentials
        e = self._environ
        token = e.get("KEELSON_GIT_TOKEN", "")
        if not token and e.get("KEELSON_GIT_TOKEN_FILE"):
            try:
                with open(e["KEELSON_GIT_TOKEN_FILE"], encoding="utf-8") as fh:
                    token = fh.read().strip()
            except OSError as exc:
                raise GitFetchError(f"KEELSON_GIT_TOKEN_FILE: cannot read "
                                    f"{e['KEELSON_GIT_TOKEN_FILE']}: {exc.strerror}") from exc
        if not token:
            return None
        return e.get("KEELSON_GIT_USERNAME") or "x-access-token", token

    def _ssh_command(self) -> Optional[str]:
        """GIT_SSH_COMMAND using KEELSON_GIT_SSH_KEY_FILE / KEELSON_GIT_KNOWN_HOSTS_FILE."""
        key = self._environ.get("KEELSON_GIT_SSH_KEY_FILE")
        known = self._environ.get("KEELSON_GIT_KNOWN_HOSTS_FILE")
        if not key and not known:
            return None
        cmd = ["ssh", "-o", "BatchMode=yes"]
        if key:
            cmd += ["-i", self._private_key_copy(key), "-o", "IdentitiesOnly=yes"]
        if known:
            cmd += ["-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes"]
        return " ".join(shlex.quote(c) for c in cmd)

    def _private_key_copy(self, key: str) -> str:
        """The key file itself, or a 0600 copy in the workdir when others may read it.

        ssh refuses a key readable by group/others, and Docker secrets are mounted 0444.
        """
        try:
            mode = os.stat(key).st_mode
            if not mode & (stat.S_IRWXG | stat.S_IRWXO):
                return key
            ssh_dir = os.path.join(self._workdir, ".ssh")
            os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
            copy = os.path.join(ssh_dir, "id_keelson")
            fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(key, "rb") as src, os.fdopen(fd, "wb") as dst:
                dst.write(src.read())
            os.chmod(copy, 0o600)
            return copy
        except OSError as exc:
            raise GitFetchError(f"KEELSON_GIT_SSH_KEY_FILE: cannot read {key}: "
                                f"{exc.strerror}") from exc
