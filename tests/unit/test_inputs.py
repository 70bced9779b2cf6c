"""The inputs key: every file and variable a stack reads, and the digests its tags resolve to."""
from __future__ import annotations

from controller.images.naming import build_tag
from controller.model.manifest import BuildSpec, ImageRef
from controller.render.compose.inputs import inputs_hash
from controller.render.compose.loader import load_stack

STACK = """services:
  api:
    build: {context: ../shared/app, dockerfile: ../../docker/api.Dockerfile}
    env_file: ../shared/app.env
    environment: {LEVEL: "${LEVEL:-info}"}
  web:
    image: reg/web:1
    configs: [site]
configs:
  site: {file: ../shared/site.conf}
"""


def make(tmp_path):
    m = tmp_path / "manifests"
    for rel, text in {"s/stack.yml": STACK, "s/.env": "X=1\n", "shared/app/main.sh": "echo\n",
                      "shared/app.env": "A=1\n", "shared/site.conf": "conf\n",
                      "docker/api.Dockerfile": "FROM busybox\n"}.items():
        (m / rel).parent.mkdir(parents=True, exist_ok=True)
        (m / rel).write_text(text)
    return m


def load(m, environ=None):
    return load_stack("s", str(m / "s" / "stack.yml"), environ or {}, root=str(m))


def test_every_input_is_recorded(tmp_path):
    m = make(tmp_path)
    man = load(m)
    assert set(man.inputs) == {"s/stack.yml", "s/.env", "shared/app", "shared/app.env",
                               "shared/site.conf", "docker/api.Dockerfile", "variable LEVEL"}
    assert man.builds["api"].dockerfile_outside


def test_a_change_anywhere_changes_the_key(tmp_path):
    m = make(tmp_path)
    refs = {"web": ImageRef("reg/web", "1", "sha256:" + "a" * 64)}
    key = inputs_hash(load(m), refs)
    assert key.startswith("inputs-") and key == inputs_hash(load(m), refs)
    for rel in ("shared/app/main.sh", "shared/app.env", "shared/site.conf",
                "docker/api.Dockerfile", "s/.env"):
        before = (m / rel).read_text()
        (m / rel).write_text(before + "# changed\n")
        assert inputs_hash(load(m), refs) != key, rel
        (m / rel).write_text(before)
    assert inputs_hash(load(m), refs) == key
    assert inputs_hash(load(m, {"LEVEL": "debug"}), refs) != key  # a variable it reads
    assert inputs_hash(load(m, {"UNUSED": "x"}), refs) == key  # one it does not
    repushed = {"web": ImageRef("reg/web", "1", "sha256:" + "b" * 64)}
    assert inputs_hash(load(m), repushed) != key  # the tag now resolves elsewhere
    built = dict(refs, api=ImageRef("reg/api", "t", "sha256:" + "c" * 64))
    assert inputs_hash(load(m), built) == key  # built images are covered by their files


def test_dockerfile_outside_the_context_changes_the_tag():
    b = BuildSpec(context="/r/app", dockerfile="../docker/Dockerfile")
    assert b.dockerfile_outside and not BuildSpec(context="/r/app").dockerfile_outside
    t1 = build_tag("a" * 40, b, "1" * 40)
    t2 = build_tag("a" * 40, b, "2" * 40)
    assert t1.startswith("a" * 12 + "-") and t1 != t2
    assert build_tag("a" * 40, BuildSpec(context="/r/app")) == "a" * 12
