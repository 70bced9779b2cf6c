"""SOPS-encrypted files in a stack (pure): detection, and the decryptor a loader is handed.

A file a stack reads (a ``secrets:``/``configs:`` ``file:``, an ``env_file``, the ``.env``) is
SOPS-encrypted when it carries SOPS metadata (https://github.com/getsops/sops, "Encrypted file
format"):

- YAML / JSON: a top-level ``sops`` mapping holding ``mac``;
- dotenv: a ``sops_mac=`` line (the metadata is flattened into ``sops_*`` keys);
- binary: JSON whose only top-level keys are ``data`` and ``sops``.

Only age recipients are accepted: a file whose metadata names a KMS, GCP KMS, Azure Key Vault,
HashiCorp Vault or PGP key is refused (decrypting it would make sops reach out). Decryption is
I/O (a subprocess), so it is not done here: the reconcile layer passes a :class:`Decryptor`
(``controller.secrets.sops.SopsDecryptor``) into the loader.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, List, Optional, Protocol, Tuple

import yaml

from controller.errors import ManifestError

# metadata keys naming a key service sops would have to call (only age is allowed)
REMOTE_KEY_KINDS = ("kms", "gcp_kms", "azure_kv", "hc_vault", "pgp")
_DOTENV_MAC = re.compile(rb"^sops_mac=", re.M)
_DOTENV_RECIPIENT = re.compile(r"^sops_(?:\S*__)?age__list_\d+__map_recipient=(\S+)$", re.M)
_DOTENV_REMOTE = re.compile(r"^sops_(?:\S*__)?(" + "|".join(REMOTE_KEY_KINDS) + r")__", re.M)


@dataclass(frozen=True)
class SopsFile:
    """What a SOPS-encrypted file says of itself (never its content).

    Attributes:
        format: sops's ``--input-type``: ``yaml``, ``json``, ``dotenv`` or ``binary``.
        recipients: the age recipients (``age1...``) it is encrypted for.
        remote_keys: key kinds other than age it names (``kms``, ``pgp``...): refused.
    """

    format: str
    recipients: Tuple[str, ...] = ()
    remote_keys: Tuple[str, ...] = ()


class Decryptor(Protocol):
    """Turns a SOPS-encrypted file's bytes into its plaintext, in memory."""

    def decrypt(self, data: bytes, meta: SopsFile, shown: str) -> bytes:
        """Decrypt ``data`` (the file's bytes, already read through the sandbox).

        Args:
            data: the encrypted file. meta: its metadata (:func:`sops_metadata`).
            shown: the file's path relative to the repo (for errors; never its content).
        Returns:
            the plaintext bytes, in sops's ``--output-type`` equal to ``meta.format``.
        Raises:
            ManifestError: it cannot be decrypted (naming the file and its recipients).
        """

    def version(self, plain: bytes) -> str:
        """A version id for decrypted content: hex of a hash keyed with a secret the repo does
        not hold, so equal plaintexts get equal ids but an id reveals nothing of a (possibly
        short, guessable) value. Names the versioned Swarm secret/config."""


def sops_metadata(data: bytes) -> Optional[SopsFile]:
    """The SOPS metadata of a file's bytes, or None when it is not SOPS-encrypted.

    Args:
        data: the file's bytes.
    Returns:
        SopsFile, or None (a plain file, or one that does not parse as YAML/JSON/dotenv).
    """
    if _DOTENV_MAC.search(data):
        text = data.decode("utf-8", "replace")
        return SopsFile("dotenv", tuple(_DOTENV_RECIPIENT.findall(text)),
                        tuple(sorted(set(_DOTENV_REMOTE.findall(text)))))
    if b"sops" not in data or b"mac" not in data:
        return None
    doc: Any = None
    fmt = "json"
    try:
        doc = json.loads(data)
    except ValueError:
        fmt = "yaml"
        try:
            doc = yaml.safe_load(data)
        except yaml.YAMLError:
            return None
    if not isinstance(doc, dict):
        return None
    meta = doc.get("sops")
    if not isinstance(meta, dict) or "mac" not in meta:
        return None
    if fmt == "json" and set(doc) == {"data", "sops"}:
        fmt = "binary"
    recipients: List[str] = []
    remote: List[str] = []
    for group in [meta, *[g for g in meta.get("key_groups") or [] if isinstance(g, dict)]]:
        for entry in group.get("age") or []:
            if isinstance(entry, dict) and entry.get("recipient"):
                recipients.append(str(entry["recipient"]))
        remote += [kind for kind in REMOTE_KEY_KINDS if group.get(kind)]
    return SopsFile(fmt, tuple(recipients), tuple(sorted(set(remote))))


def decrypt_if_encrypted(data: bytes, shown: str, decryptor: Optional[Decryptor]
                         ) -> Optional[bytes]:
    """The plaintext of a file a stack reads, when it is SOPS-encrypted (age only), in memory.

    Args:
        data: the file's bytes (read through the sandbox). shown: its path relative to the repo
            (for errors). decryptor: what decrypts (None: Keelson holds no age key).
    Returns:
        the plaintext bytes, or None when ``data`` is not SOPS-encrypted (use it as is).
    Raises:
        ManifestError: it names a key service other than age, Keelson holds no age key, or it
            cannot be decrypted; naming the file and its recipients, never content.
    """
    meta = sops_metadata(data)
    if meta is None:
        return None
    if meta.remote_keys:
        raise ManifestError(f"{shown} is SOPS-encrypted with {', '.join(meta.remote_keys)} "
                            "keys: Keelson decrypts age recipients only (sops must not call "
                            "a key service)")
    if decryptor is None:
        raise ManifestError(f"{shown} is SOPS-encrypted (age recipients: "
                            f"{', '.join(meta.recipients) or 'none'}) but Keelson holds no "
                            "age key: set KEELSON_SOPS_AGE_KEY_FILE")
    return decryptor.decrypt(data, meta, shown)
