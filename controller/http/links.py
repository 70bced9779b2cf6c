"""Web links to the manifests repo's commits, for the page (never with credentials)."""
from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@([A-Za-z0-9.-]+):(?!/)([A-Za-z0-9._~/-]+)$")


def repo_web_url(repo: str) -> str:
    """The web address of a git remote, to which ``/commit/<sha>`` is appended.

    GitHub, GitLab, Gitea/Forgejo and Bitbucket Server-like forges serve a repo's web page at its
    clone URL without ``.git``, and a commit at ``<that>/commit/<sha>`` (GitLab redirects it to
    ``/-/commit/``).

    Args:
        repo: the configured repo (``https://user:token@host/org/repo.git``,
            ``git@host:org/repo.git``, ``ssh://git@host/org/repo``, a local path...).
    Returns:
        str: ``https://host/org/repo`` with any user, password, query and fragment removed;
        http(s) URLs keep their scheme and port; SSH URLs become https on the same host
        (no port). "" for local paths, ``file://`` and anything else.
    """
    text = repo.strip()
    scp = _SCP_LIKE.match(text)
    if scp:
        host, path = scp.group(1), scp.group(2)
        scheme, netloc = "https", host
    else:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https", "ssh") or not parts.hostname:
            return ""
        host = parts.hostname
        scheme = parts.scheme if parts.scheme != "ssh" else "https"
        netloc = host if (parts.port is None or parts.scheme == "ssh") else f"{host}:{parts.port}"
        if ":" in host:  # an IPv6 literal
            netloc = f"[{host}]" + netloc[len(host):]
        path = parts.path
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    if not path:
        return ""
    return urlunsplit((scheme, netloc, "/" + path, "", ""))
