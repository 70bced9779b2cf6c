"""SopsDecryptor with the real sops and age (issue 9): every format, the wrong key, a tampered
file, a hung sops, and the environment sops runs with. No Docker needed."""
from __future__ import annotations

import os
import subprocess

import pytest

from controller.errors import ConfigError, DecryptError
from controller.render.compose.encrypted import sops_metadata
from controller.secrets.sops import SopsDecryptor, find_sops

pytestmark = pytest.mark.integration

VALUE = "kso-decryptor-value-42"


def keygen(path) -> str:
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    return subprocess.run(["age-keygen", "-y", str(path)], check=True, capture_output=True,
                          text=True).stdout.strip()


def encrypt(recipient: str, plain: bytes, fmt: str) -> bytes:
    return subprocess.run([find_sops(), "--encrypt", "--age", recipient, "--input-type", fmt,
                           "--output-type", fmt, "/dev/stdin"], input=plain,
                          capture_output=True, check=True, env={"PATH": "/usr/bin:/bin"}).stdout


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "key.txt"
    return path, keygen(path)


@pytest.mark.parametrize("fmt, plain", [
    ("yaml", f"password: {VALUE}\n".encode()),
    ("json", b'{\n\t"password": "' + VALUE.encode() + b'"\n}'),
    ("dotenv", f"PASSWORD={VALUE}\n".encode()),
    ("binary", VALUE.encode() + b"\x00\x01raw"),
])
def test_every_format_round_trips(key, fmt, plain):
    path, recipient = key
    data = encrypt(recipient, plain, fmt)
    assert VALUE.encode() not in data
    meta = sops_metadata(data)
    assert meta.format == fmt and meta.recipients == (recipient,)
    assert SopsDecryptor(str(path)).decrypt(data, meta, "st/x").strip() == plain.strip()


def test_another_recipient_is_named(key, tmp_path):
    path, _ = key
    theirs = keygen(tmp_path / "other.txt")
    data = encrypt(theirs, b"A=1\n", "dotenv")
    with pytest.raises(DecryptError) as err:  # the key file names its public key
        SopsDecryptor(str(path)).decrypt(data, sops_metadata(data), "st/app.env")
    assert "st/app.env" in str(err.value) and theirs in str(err.value)
    assert err.value.reason == "DecryptFailed"
    # a key file without age-keygen's comment: sops itself finds no key
    bare = tmp_path / "bare.txt"
    bare.write_text("".join(line for line in path.read_text().splitlines(True)
                            if not line.startswith("#")))
    with pytest.raises(DecryptError) as err:
        SopsDecryptor(str(bare)).decrypt(data, sops_metadata(data), "st/app.env")
    assert "st/app.env" in str(err.value) and theirs in str(err.value)


def test_tampered_file_fails_without_its_content(key):
    path, recipient = key
    data = encrypt(recipient, f"password: {VALUE}\nother: x\n".encode(), "yaml")
    lines = data.decode().splitlines(True)
    lines[1] = "other: ENC[AES256_GCM,data:AAAA,iv:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]\n"
    bad = "".join(lines).encode()
    with pytest.raises(DecryptError) as err:
        SopsDecryptor(str(path)).decrypt(bad, sops_metadata(bad), "st/s.yaml")
    assert "st/s.yaml" in str(err.value) and VALUE not in str(err.value)


def test_sops_sees_only_its_key_and_path_and_is_timed_out(key, tmp_path, monkeypatch):
    path, _ = key
    monkeypatch.setenv("KSO_CONTROLLER_SECRET", "must-not-leak")
    show_env = tmp_path / "show-env"
    show_env.write_text("#!/bin/sh\ncat >/dev/null\nexec /usr/bin/env\n")
    show_env.chmod(0o755)
    meta = sops_metadata(encrypt(keygen(tmp_path / "k2.txt"), b"A=1\n", "dotenv"))
    meta = type(meta)(meta.format, ())  # no recipients named: sops is asked
    out = SopsDecryptor(str(path), binary=str(show_env)).decrypt(b"x", meta, "st/a.env")
    names = {line.split("=", 1)[0] for line in out.decode().splitlines()}
    assert {"SOPS_AGE_KEY_FILE", "PATH"} <= names <= {"SOPS_AGE_KEY_FILE", "PATH", "PWD"}
    assert b"must-not-leak" not in out
    hang = tmp_path / "hang"
    hang.write_text("#!/bin/sh\nsleep 30\n")
    hang.chmod(0o755)
    with pytest.raises(DecryptError) as err:
        SopsDecryptor(str(path), binary=str(hang), timeout_s=0.5).decrypt(b"x", meta, "st/a.env")
    assert "did not finish" in str(err.value)


def test_unreadable_key_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        SopsDecryptor(str(tmp_path / "missing.txt"))
    assert os.path.isabs(find_sops())
