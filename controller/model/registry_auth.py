"""Registry credentials (issue 9): which login goes with which image, as docker picks it.

Pure: the operator's files are read by ``config.py`` (``*_FILE`` settings are Docker secrets);
this module parses their text, and answers "which credential does this image's registry
need" for digest resolution, builds, pushes and service create/update (``X-Registry-Auth``,
like ``docker stack deploy --with-registry-auth``).

Lookup follows docker: the registry of an image is the first path component when it looks
like a host (docker/distribution ``reference.splitDockerDomain``), else Docker Hub. A
``config.json`` key is reduced to its host as docker/cli ``credentials.ConvertToHostname``
does (scheme and path dropped), Docker Hub's names (``docker.io``, ``index.docker.io``,
``registry-1.docker.io``, ``https://index.docker.io/v1/``) are one registry, and any other
``host:port`` must match exactly.

Secrets never appear in ``repr``/``str`` of these objects; callers must not log the dicts
:meth:`RegistryCredential.auth_config` returns.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple

from controller.errors import ConfigError

DOCKER_HUB = "docker.io"
# the server address docker/cli sends for Docker Hub (registry.IndexServer)
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def registry_host(image: str) -> str:
    """The registry an image reference names, in canonical form.

    Rule from docker/distribution ``reference.splitDockerDomain``: the part before the first
    ``/`` is a host when it contains ``.`` or ``:``, is ``localhost``, or has upper case;
    otherwise the image is on Docker Hub.

    Args:
        image: ``[host[:port]/]path[:tag][@digest]``.
    Returns:
        str: ``host[:port]`` lower-cased, or ``docker.io`` for Docker Hub (and its aliases).
    """
    name = image.split("@", 1)[0]
    if "/" not in name:
        return DOCKER_HUB
    first = name.split("/", 1)[0]
    return canonical_host(first) if is_host(first) else DOCKER_HUB


def is_host(first: str) -> bool:
    """True when an image name's first path component is a registry host (contains ``.`` or
    ``:``, is ``localhost``, or has upper case: docker/distribution ``splitDockerDomain``)."""
    return "." in first or ":" in first or first == "localhost" or first.lower() != first


def canonical_host(key: str) -> str:
    """A registry name as a lookup key: scheme and path dropped (docker/cli
    ``ConvertToHostname``), lower case, Docker Hub's aliases folded into ``docker.io``.

    Args:
        key: a ``config.json`` ``auths`` key, a ``host:port``, or a URL.
    Returns:
        str: e.g. ``registry.example.com:5000`` or ``docker.io``.
    """
    text = key.strip()
    for scheme in ("https://", "http://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme):]
            break
    host = text.split("/", 1)[0].lower()
    return DOCKER_HUB if host in _HUB_ALIASES else host


@dataclass(frozen=True)
class RegistryCredential:
    """One registry login. Secret fields are left out of ``repr``.

    Attributes:
        username: the login name ("" with an identity token only).
        password: the password or access token.
        identitytoken: an OAuth refresh token ``docker login`` stored instead of a password.
        registrytoken: a bearer token sent as is.
        source: where it came from (a file's setting name and key), for messages.
    """

    username: str = ""
    password: str = field(default="", repr=False)
    identitytoken: str = field(default="", repr=False)
    registrytoken: str = field(default="", repr=False)
    source: str = ""

    def auth_config(self, host: str) -> Dict[str, str]:
        """The Engine's AuthConfig JSON for ``host`` (``X-Registry-Auth`` before encoding).

        Args:
            host: canonical registry host (``docker.io`` becomes Docker Hub's server address).
        Returns:
            dict with ``username``, ``password``, ``identitytoken``, ``registrytoken`` where
            set, and ``serveraddress``. Contains the secret: never log it.
        Source: Engine API ``AuthConfig`` (api/types/registry/authconfig.go).
        """
        out = {"serveraddress": DOCKER_HUB_SERVER if host == DOCKER_HUB else host}
        for key in ("username", "password", "identitytoken", "registrytoken"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out

    def secrets(self) -> Tuple[str, ...]:
        """The secret values this credential holds (for scrubbing tests and callers)."""
        return tuple(v for v in (self.password, self.identitytoken, self.registrytoken) if v)


@dataclass(frozen=True)
class RegistryAuth:
    """Every registry login Keelson knows, keyed by canonical host.

    Attributes:
        logins: ((host, RegistryCredential), ...) sorted by host; one entry per host.
    """

    logins: Tuple[Tuple[str, RegistryCredential], ...] = ()

    @property
    def hosts(self) -> Tuple[str, ...]:
        """The registries there is a login for (safe to log)."""
        return tuple(h for h, _ in self.logins)

    def for_host(self, host: str) -> Optional[RegistryCredential]:
        """The login for a registry (any spelling :func:`canonical_host` accepts), or None."""
        want = canonical_host(host)
        for h, cred in self.logins:
            if h == want:
                return cred
        return None

    def for_image(self, image: str) -> Optional[Dict[str, str]]:
        """The AuthConfig dict for the registry ``image`` lives on, or None when there is no
        login for it (the request then goes anonymous, as docker's does).

        Args:
            image: any image reference (``repo:tag@sha256:...`` included).
        Returns:
            dict (see :meth:`RegistryCredential.auth_config`) or None. Never log it.
        """
        host = registry_host(image)
        cred = self.for_host(host)
        return cred.auth_config(host) if cred is not None else None

    def build_config(self) -> Dict[str, Dict[str, str]]:
        """Every login as the build endpoint's ``X-Registry-Config`` map (server address ->
        AuthConfig), so a ``FROM`` on any of these registries can be pulled.

        Source: Engine API ``POST /build`` (header ``X-Registry-Config``).
        """
        out = {}
        for host, cred in self.logins:
            conf = cred.auth_config(host)
            out[conf["serveraddress"]] = conf
        return out

    def with_login(self, host: str, cred: RegistryCredential) -> "RegistryAuth":
        """A copy where ``host``'s login is ``cred`` (replacing one the config file gave)."""
        key = canonical_host(host)
        rest = [(h, c) for h, c in self.logins if h != key]
        return RegistryAuth(tuple(sorted(rest + [(key, cred)], key=lambda hc: hc[0])))

    def secrets(self) -> Tuple[str, ...]:
        """Every secret value held (never log them; tests check they never show)."""
        return tuple(s for _, c in self.logins for s in c.secrets())


def parse_docker_config(text: str, setting: str = "KEELSON_REGISTRY_AUTH_FILE") -> RegistryAuth:
    """Read the logins of a Docker ``config.json`` (what ``docker login`` writes).

    Each ``auths`` entry may hold ``auth`` (base64 of ``user:password``), or ``username`` and
    ``password``, and optionally ``identitytoken`` / ``registrytoken``. Entries with nothing
    usable (a ``credsStore`` or ``credHelpers`` keeps the secret elsewhere, which Keelson
    cannot call) are skipped; :func:`unusable_entries` names them. Two keys for one registry
    (``docker.io`` and ``https://index.docker.io/v1/``): the first in file order wins.

    Args:
        text: the file's content. setting: the variable named in errors.
    Returns:
        RegistryAuth.
    Raises:
        ConfigError: not JSON, ``auths`` not an object, or an ``auth`` value that is not
            base64 ``user:password``; the message names the key, never a value.
    """
    logins: Dict[str, RegistryCredential] = {}
    for key, entry in _auths(text, setting).items():
        cred = _credential(key, entry, setting)
        host = canonical_host(key)
        if cred is not None and host and host not in logins:
            logins[host] = cred
    return RegistryAuth(tuple(sorted(logins.items())))


def unusable_entries(text: str, setting: str = "KEELSON_REGISTRY_AUTH_FILE") -> Tuple[str, ...]:
    """The ``auths`` keys of a config.json that hold no credential (e.g. the secret is in a
    ``credsStore``), plus ``credsStore``/``credHelpers`` when present: worth a warning.

    Raises:
        ConfigError: as :func:`parse_docker_config`.
    """
    out = [k for k, e in _auths(text, setting).items() if _credential(k, e, setting) is None]
    doc = json.loads(text)
    out += [k for k in ("credsStore", "credHelpers") if doc.get(k)]
    return tuple(out)


def _auths(text: str, setting: str) -> Mapping[str, object]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{setting}: not a Docker config.json (JSON error at line "
                          f"{getattr(exc, 'lineno', '?')})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{setting}: not a Docker config.json (not a JSON object)")
    auths = doc.get("auths")
    auths = {} if auths is None else auths
    if not isinstance(auths, dict):
        raise ConfigError(f"{setting}: key auths must be an object of registry -> login")
    return auths


def _credential(key: str, entry: object, setting: str) -> Optional[RegistryCredential]:
    where = f"{setting}: auths.{key}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be an object")
    fields = {k: entry.get(k) for k in ("username", "password", "identitytoken", "registrytoken")}
    for k, v in fields.items():
        if v is not None and not isinstance(v, str):
            raise ConfigError(f"{where}.{k}: must be a string")
    username, password = fields["username"] or "", fields["password"] or ""
    encoded = entry.get("auth")
    if encoded:
        if not isinstance(encoded, str):
            raise ConfigError(f"{where}.auth: must be a base64 string")
        try:
            plain = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise ConfigError(f"{where}.auth: not base64 of user:password") from None
        if ":" not in plain:
            raise ConfigError(f"{where}.auth: not base64 of user:password")
        username, password = plain.split(":", 1)
    cred = RegistryCredential(username=username, password=password,
                              identitytoken=fields["identitytoken"] or "",
                              registrytoken=fields["registrytoken"] or "",
                              source=f"{setting} auths.{key}")
    return cred if cred.secrets() else None


def registry_auth(config_text: str = "", *, registry: str = "", username: str = "",
                  password: str = "") -> RegistryAuth:
    """Every login from the operator's settings.

    Args:
        config_text: KEELSON_REGISTRY_AUTH_FILE's content ("" when unset).
        registry: KEELSON_REGISTRY (``host:port`` images are pushed to).
        username, password: KEELSON_REGISTRY_USERNAME_FILE / KEELSON_REGISTRY_PASSWORD_FILE
            content: the login for ``registry``; it wins over the config file's entry.
    Returns:
        RegistryAuth.
    Raises:
        ConfigError: a bad config file, only one of username/password, or a username and
            password without KEELSON_REGISTRY.
    """
    auth = parse_docker_config(config_text) if config_text else RegistryAuth()
    if bool(username) != bool(password):
        raise ConfigError("KEELSON_REGISTRY_USERNAME_FILE and KEELSON_REGISTRY_PASSWORD_FILE "
                          "go together: set both or neither")
    if username:
        if not registry:
            raise ConfigError("KEELSON_REGISTRY_USERNAME_FILE/KEELSON_REGISTRY_PASSWORD_FILE "
                              "are the login for KEELSON_REGISTRY, which is not set (use "
                              "KEELSON_REGISTRY_AUTH_FILE for other registries)")
        auth = auth.with_login(registry, RegistryCredential(
            username=username, password=password, source="KEELSON_REGISTRY_PASSWORD_FILE"))
    return auth
