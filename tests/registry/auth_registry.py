"""A registry that needs a login (htpasswd + TLS from a test CA), for the registry-credential
tests (issue 9). Wraps ``auth_registry.sh``, which makes the CA, certificate and htpasswd file,
starts Debian's docker-registry and makes every dockerd on this machine trust the CA through
``/etc/docker/certs.d/<host:port>/ca.crt``; ``stop`` removes all of it again."""
from __future__ import annotations

import base64
import json
import pathlib
import secrets
import subprocess

SCRIPT = pathlib.Path(__file__).resolve().parent / "auth_registry.sh"
USER = "keelson-ci"


class AuthRegistry:
    """One registry on ``host:port`` whose state lives in ``state`` (a folder of its own).

    Attributes:
        addr: ``host:port``. user / password: the only login it accepts (a fresh random
            password each time, so tests can look for it in every output).
    """

    def __init__(self, state: pathlib.Path, host: str, port: int):
        self.state = pathlib.Path(state)
        self.host, self.port = host, port
        self.addr = f"{host}:{port}"
        self.user = USER
        self.password = "pw-" + secrets.token_hex(12)

    def start(self) -> "AuthRegistry":
        """(Re)start it (idempotent); raises RuntimeError when it does not come up."""
        pwfile = self.state.parent / f".{self.state.name}.pw"
        pwfile.parent.mkdir(parents=True, exist_ok=True)
        pwfile.write_text(self.password)
        try:
            self._run("up", str(self.state), self.host, str(self.port), self.user, str(pwfile))
        finally:
            pwfile.unlink(missing_ok=True)
        return self

    def stop(self) -> None:
        """Stop it and remove its state and its certs.d entry."""
        self._run("down", str(self.state), self.host, str(self.port))

    def config_json(self, password: str = "") -> str:
        """A Docker config.json whose ``auths`` holds the login (``auth`` base64 form)."""
        token = base64.b64encode(f"{self.user}:{password or self.password}".encode()).decode()
        return json.dumps({"auths": {self.addr: {"auth": token}}})

    def _run(self, *args: str) -> None:
        proc = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                              timeout=180)
        if proc.returncode != 0:
            raise RuntimeError(f"auth_registry.sh {args[0]} failed: {proc.stderr[-2000:]}")
