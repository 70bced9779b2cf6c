"""SOPS detection and the loader's use of a decryptor (issue 9), pure.

The metadata samples are shaped as sops 3.11 writes them (YAML/JSON ``sops`` mapping, dotenv
``sops_*`` lines, binary as JSON ``data`` + ``sops``). The loader tests hand in a small
in-memory decryptor: the real sops runs in tests/integration/test_sops_*.py.
"""
import json

import pytest

from controller.errors import ManifestError
from controller.render.compose.encrypted import SopsFile, sops_metadata
from controller.render.compose.loader import load_stack
from controller.render.convert import to_desired

R1 = "age1g9zw7rdxu285auxveh6yzzttzu6ap0pxuul00gvh5fcttffxfdpsnvgkuu"
R2 = "age1f26knt67k9ydchx8xjm4vl56kcdlttn6mw5qpjn449hz454medkq4g8s0f"
ENC = "ENC[AES256_GCM,data:abc=,iv:x=,tag:y=,type:str]"


def yaml_sops(extra: str = "") -> bytes:
    return (f"password: {ENC}\nsops:\n    age:\n        - recipient: {R1}\n"
            f"          enc: |\n            -----BEGIN AGE ENCRYPTED FILE-----\n"
            f"            -----END AGE ENCRYPTED FILE-----\n{extra}"
            f"    mac: {ENC}\n    version: 3.11.0\n").encode()


def test_yaml_json_dotenv_binary_detected_with_recipients():
    assert sops_metadata(yaml_sops()) == SopsFile("yaml", (R1,))
    doc = {"a": ENC, "sops": {"age": [{"recipient": R1}, {"recipient": R2}], "mac": ENC}}
    assert sops_metadata(json.dumps(doc).encode()) == SopsFile("json", (R1, R2))
    binary = {"data": ENC, "sops": {"age": [{"recipient": R2}], "mac": ENC}}
    assert sops_metadata(json.dumps(binary).encode()) == SopsFile("binary", (R2,))
    dotenv = (f"API_KEY={ENC}\nsops_age__list_0__map_enc=x\n"
              f"sops_age__list_0__map_recipient={R1}\nsops_mac={ENC}\n").encode()
    assert sops_metadata(dotenv) == SopsFile("dotenv", (R1,))


@pytest.mark.parametrize("data", [
    b"password: hunter2\n", b'{"sops": "just a word", "mac": 1}', b"sops: {version: 1}\n",
    b"A=1\nsops_version=3\n", b"\xff\xfe binary", b"- a list\n- sops mac\n", b"",
])
def test_plain_files_are_not_sops(data):
    assert sops_metadata(data) is None


def test_key_services_are_named():
    meta = sops_metadata(yaml_sops("    kms:\n        - arn: arn:aws:kms:x\n"
                                   "    pgp:\n        - fp: ABC\n"))
    assert meta.remote_keys == ("kms", "pgp")
    dotenv = f"A={ENC}\nsops_hc_vault__list_0__map_vault_address=http://v\nsops_mac={ENC}\n"
    assert sops_metadata(dotenv.encode()).remote_keys == ("hc_vault",)
    grouped = {"data": ENC, "sops": {"key_groups": [{"gcp_kms": [{"resource_id": "r"}]}],
                                     "mac": ENC}}
    assert sops_metadata(json.dumps(grouped).encode()).remote_keys == ("gcp_kms",)


class Plain:
    """An in-memory decryptor: "decrypts" by looking the bytes up."""

    def __init__(self, table):
        self.table = table
        self.seen = []

    def decrypt(self, data, meta, shown):
        self.seen.append((meta.format, shown))
        return self.table[data]

    def version(self, plain):
        return "f" * 64 if plain == b"s3cret" else "e" * 64


STACK = """services:
  app:
    image: busybox:latest
    env_file: ./app.env
    environment:
      FROM_DOTENV: ${FROM_DOTENV}
    secrets: [token]
secrets:
  token:
    file: ./token.yaml
"""


def write_stack(tmp_path, token: bytes, env: bytes, dotenv: bytes):
    folder = tmp_path / "manifests" / "st"
    folder.mkdir(parents=True)
    (folder / "stack.yml").write_text(STACK)
    (folder / "token.yaml").write_bytes(token)
    (folder / "app.env").write_bytes(env)
    (folder / ".env").write_bytes(dotenv)
    return str(folder / "stack.yml"), str(tmp_path / "manifests")


def test_loader_decrypts_secret_env_file_and_dotenv_in_memory(tmp_path):
    token = yaml_sops()
    env = f"API_KEY={ENC}\nsops_age__list_0__map_recipient={R1}\nsops_mac={ENC}\n".encode()
    dotenv = env.replace(b"API_KEY", b"FROM_DOTENV")
    dec = Plain({token: b"s3cret", env: b"API_KEY=k1\n", dotenv: b"FROM_DOTENV=d1\n"})
    stack_file, root = write_stack(tmp_path, token, env, dotenv)
    m = load_stack("st", stack_file, root=root, decryptor=dec)
    assert sorted(dec.seen) == [("dotenv", "st/.env"), ("dotenv", "st/app.env"),
                                ("yaml", "st/token.yaml")]
    assert m.services["app"]["environment"] == {"API_KEY": "k1", "FROM_DOTENV": "d1"}
    desired = to_desired(m, {}, None)
    secret = next(iter(desired.secrets.values()))
    assert secret.data == b"s3cret"
    # named by the decryptor's keyed version, not by a plain hash of the value
    assert secret.name == "st_token-ffffffffff"
    # inputs hash the encrypted bytes (a re-encryption retries a stalled stack)
    assert "st/token.yaml" in m.inputs


def test_sops_file_without_a_key_or_with_a_key_service_fails_naming_the_file(tmp_path):
    token = yaml_sops()
    stack_file, root = write_stack(tmp_path, token, b"API_KEY=plain\n", b"FROM_DOTENV=x\n")
    with pytest.raises(ManifestError) as err:
        load_stack("st", stack_file, root=root)
    msg = str(err.value)
    assert "st/token.yaml is SOPS-encrypted" in msg and R1 in msg
    assert "KEELSON_SOPS_AGE_KEY_FILE" in msg and err.value.key == "secrets.token.file"

    (tmp_path / "manifests" / "st" / "token.yaml").write_bytes(
        yaml_sops("    azure_kv:\n        - vault_url: https://v\n"))
    with pytest.raises(ManifestError) as err:
        load_stack("st", stack_file, root=root, decryptor=Plain({}))
    assert "azure_kv" in str(err.value) and "age recipients only" in str(err.value)


def test_follow_tags_option():
    base = "services:\n  app:\n    image: busybox:latest\n"
    from controller.render.compose.loader import load_text
    assert load_text(base).options.follow_tags is True
    assert load_text("x-keelson:\n  follow_tags: false\n" + base).options.follow_tags is False
    with pytest.raises(ManifestError) as err:
        load_text("x-keelson:\n  follow_tags: sometimes\n" + base, filename="stack.yml")
    assert err.value.key == "x-keelson.follow_tags" and err.value.line == 2
