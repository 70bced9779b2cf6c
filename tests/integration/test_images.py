"""Image builds, pushes and digest resolution against the real engine and registry."""
from __future__ import annotations

import uuid

import pytest

from controller.errors import ImageBuildError, ImagePushError, ImageResolveError
from controller.images.build import ImageBuilder
from controller.images.resolve import resolve_image
from controller.model import labels as L
from controller.model.manifest import BuildSpec, ImageRef
from controller.swarm.client import SwarmClient
from controller.swarm.engine_images import ImageEngine

pytestmark = pytest.mark.integration

DEAD_REGISTRY = "127.0.0.1:5999"  # nothing listens here


class Recorder:
    """Observer that records (event, stack, service, result) tuples."""

    def __init__(self):
        self.events = []

    def image_build(self, stack, service, result, duration_s):
        assert duration_s >= 0
        self.events.append(("build", stack, service, result))

    def image_push(self, stack, service, result, duration_s):
        assert duration_s >= 0
        self.events.append(("push", stack, service, result))


@pytest.fixture
def images(engine):
    client = SwarmClient(engine)
    made = []
    eng = ImageEngine(client)
    eng.made = made  # references to remove afterwards
    yield eng
    for ref in made:
        try:
            engine.api.remove_image(ref, force=True)
        except Exception:  # already gone
            pass
    client.close()


def context(tmp_path, body: str = "RUN echo hello > /hello") -> str:
    d = tmp_path / f"ctx{uuid.uuid4().hex[:6]}"
    d.mkdir()
    (d / "Dockerfile").write_text(
        f"FROM busybox:latest\nARG KEELSON_REVISION\nRUN echo $KEELSON_REVISION > /rev\n{body}\n")
    return str(d)


def rev() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex[:8]  # 40 hex, like a git sha


def test_ensure_builds_pushes_then_reuses(images, registry, tmp_path):
    stack, recorder = f"im{uuid.uuid4().hex[:6]}", Recorder()
    builder = ImageBuilder(images, registry, observer=recorder)
    build = BuildSpec(context=context(tmp_path))
    ctx_rev, revision = rev(), rev()
    ref = builder.ensure(stack, "web", build, ctx_rev, revision)
    images.made.append(f"{ref.repository}:{ref.tag}")
    assert ref.repository == f"{registry}/{stack}_web" and ref.tag == ctx_rev[:12]
    assert ref.digest.startswith("sha256:") and len(ref.digest) == 71
    assert images.registry_digest(f"{ref.repository}:{ref.tag}") == ref.digest
    local = images.local_image(f"{ref.repository}:{ref.tag}")
    assert local["Config"]["Labels"][L.REVISION] == revision
    assert recorder.events == [("build", stack, "web", "success"),
                               ("push", stack, "web", "success")]

    # same context revision: the registry has the tag, nothing is built or pushed
    again = builder.ensure(stack, "web", build, ctx_rev, rev())
    assert again == ref and len(recorder.events) == 2


def test_ensure_uses_image_name_and_option_tag(images, registry, tmp_path):
    repo = f"team{uuid.uuid4().hex[:6]}/api"
    build = BuildSpec(context=context(tmp_path), args={"X": "1"}, image=f"{repo}:ignored",
                      labels={"team": "shop"})
    ctx_rev = rev()
    ref = ImageBuilder(images, registry).ensure("s", "api", build, ctx_rev, ctx_rev)
    images.made.append(f"{ref.repository}:{ref.tag}")
    assert ref.repository == f"{registry}/{repo}"
    assert ref.tag.startswith(ctx_rev[:12] + "-") and len(ref.tag) == 21
    labels = images.local_image(f"{ref.repository}:{ref.tag}")["Config"]["Labels"]
    assert labels["team"] == "shop" and labels[L.REVISION] == ctx_rev


def test_build_error_carries_log_tail(images, registry, tmp_path):
    recorder = Recorder()
    builder = ImageBuilder(images, registry, observer=recorder)
    build = BuildSpec(context=context(tmp_path, "RUN echo about-to-fail && false"))
    with pytest.raises(ImageBuildError) as err:
        builder.ensure("bad", "web", build, rev(), rev())
    assert "returned a non-zero code" in str(err.value)
    assert "about-to-fail" in err.value.log_tail
    assert recorder.events == [("build", "bad", "web", "error")]


def test_missing_dockerfile_is_build_error(images, registry, tmp_path):
    build = BuildSpec(context=context(tmp_path), dockerfile="Nope.Dockerfile")
    with pytest.raises(ImageBuildError):
        ImageBuilder(images, registry).ensure("bad", "web", build, rev(), rev())


def test_push_to_dead_registry_is_push_error(images, engine, tmp_path):
    repo = f"{DEAD_REGISTRY}/dead{uuid.uuid4().hex[:6]}"
    images.build(context(tmp_path), "Dockerfile", f"{repo}:t1", {}, None, {})
    images.made.append(f"{repo}:t1")
    with pytest.raises(ImagePushError) as err:
        images.push(repo, "t1")
    assert "connection refused" in str(err.value)


def test_registry_digest_missing_and_unreachable(images, registry):
    assert images.registry_digest(f"{registry}/nosuch{uuid.uuid4().hex[:6]}:x") is None
    with pytest.raises(ImageResolveError):
        images.registry_digest(f"{DEAD_REGISTRY}/x:y")
    assert images.local_image(f"{registry}/nosuch{uuid.uuid4().hex[:6]}:x") is None


def test_c02_same_tag_repushed_resolves_new_digest(images, registry, tmp_path):
    repo = f"{registry}/team{uuid.uuid4().hex[:6]}/api"
    images.made.append(f"{repo}:main")
    images.build(context(tmp_path, "RUN echo one > /v"), "Dockerfile", f"{repo}:main", {}, None, {})
    first = images.push(repo, "main")
    got = resolve_image(images, f"{repo}:main")
    assert got.reference == ImageRef(repo, "main", first).reference
    assert got.platforms and got.platforms[0][0] == "linux"  # pinned like --resolve-image always

    images.build(context(tmp_path, "RUN echo two > /v"), "Dockerfile", f"{repo}:main", {}, None, {})
    second = images.push(repo, "main")
    assert second != first
    assert resolve_image(images, f"{repo}:main").reference == ImageRef(repo, "main", second).reference

    pinned = f"{repo}:main@{first}"
    assert resolve_image(images, pinned).reference == pinned  # pinned: not asked again
    with pytest.raises(ImageResolveError):
        resolve_image(images, f"{repo}:nosuchtag")
    with pytest.raises(ImageResolveError):
        resolve_image(images, f"{DEAD_REGISTRY}/team/api:main")


def test_dockerfile_outside_the_context_but_inside_the_tree_is_sent_as_content(images, registry,
                                                                               tmp_path):
    """Compose allows ``dockerfile: ../Dockerfile.shared``: read through the sandbox and sent in
    the context archive (as the SDK does); ``.dockerignore`` is read through it too."""
    root = tmp_path / "tree"
    (root / "site").mkdir(parents=True)
    (root / "site" / "keep.txt").write_text("kept\n")
    (root / "site" / "drop.txt").write_text("dropped\n")
    (root / "site" / ".dockerignore").write_text("# comment\ndrop.txt\n")
    (root / "Dockerfile.shared").write_text(
        "FROM busybox:latest\nCOPY . /ctx/\nRUN test -f /ctx/keep.txt && test ! -e /ctx/drop.txt\n")
    build = BuildSpec(context=str(root / "site"), dockerfile="../Dockerfile.shared", root=str(root))
    ref = ImageBuilder(images, registry).ensure("outside", "web", build, rev(), rev())
    images.made.append(f"{ref.repository}:{ref.tag}")
    assert ref.digest.startswith("sha256:")
