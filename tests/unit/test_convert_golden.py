"""Goldens: stack file -> the Swarm objects to_desired() gives (Engine API JSON shapes).

Each folder under fixtures/convert holds ``stack.yml`` and ``expected.json``. Regenerate after a
deliberate change with ``KEELSON_REGOLD=1 python -m pytest tests/unit/test_convert_golden.py``
and review the diff: every golden is a claim about what Swarm will be sent.
"""
from __future__ import annotations

import json
import os
import pathlib

import pytest
import yaml

from controller.model.labels import SPEC_HASH
from controller.model.manifest import ImageRef, StackManifest
from controller.render.convert import to_desired

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "convert"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "stack.yml").exists())
# what the image stage would hand over for the build-only service in "objects"
IMAGES = {"api": ImageRef("127.0.0.1:5000/objects_api", "0123456789ab", "sha256:" + "a" * 64)}
ENVIRON = {"API_TOKEN": "from-the-environment"}
BIND_ROOT = "/srv/binds"  # KEELSON_BIND_ROOT: ./rel becomes /srv/binds/<stack>/rel


def load_fixture(case: str, stack: str = "s") -> StackManifest:
    """What the loader hands over for these files: YAML with config/secret files made absolute."""
    folder = FIXTURES / case
    compose = yaml.safe_load((folder / "stack.yml").read_text())
    for section in ("configs", "secrets"):
        for obj in (compose.get(section) or {}).values():
            if obj.get("file"):
                obj["file"] = str((folder / obj["file"]).resolve())
    return StackManifest(name=stack, file=str(folder / "stack.yml"), directory="/stacks/s",
                         compose=compose)


def snapshot(case: str) -> dict:
    """to_desired() output as plain JSON (spec-hash labels dropped: tested on their own)."""
    d = to_desired(load_fixture(case), IMAGES, environ=ENVIRON, bind_root=BIND_ROOT)
    services = {}
    for name, svc in d.services.items():
        spec = json.loads(json.dumps(svc.spec))
        spec["Labels"].pop(SPEC_HASH)
        services[name] = spec
    objs = lambda m: {n: {"logical_name": c.logical_name, "data": c.data.decode(),
                          "labels": c.labels, "template_driver": c.template_driver,
                          "external": c.external} for n, c in m.items()}
    return {"services": services,
            "networks": {n: {"spec": v.spec, "external": v.external} for n, v in d.networks.items()},
            "configs": objs(d.configs), "secrets": objs(d.secrets), "volumes": d.volumes,
            "warnings": d.warnings}


@pytest.mark.parametrize("case", CASES)
def test_golden(case):
    got = snapshot(case)
    expected_file = FIXTURES / case / "expected.json"
    if os.environ.get("KEELSON_REGOLD"):
        expected_file.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(expected_file.read_text())
