"""Tags that moved at the registry, and digests kept for ``follow_tags: false`` (issue 9), pure."""
from controller.images.stack import TagMove, live_pinned_images, tag_moves
from controller.model import ImageRef, LiveStack
from controller.model.live import LiveService
from controller.render.compose.loader import load_text

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
STACK = """services:
  app:
    image: reg:5000/team/app:stable
  db:
    image: reg:5000/team/db
  fixed:
    image: reg:5000/team/x@sha256:""" + "c" * 64 + "\n"


def live(images):
    services = {f"test_{svc}": LiveService(
        id=svc, name=f"test_{svc}", version=1, labels={},
        spec={"TaskTemplate": {"ContainerSpec": {"Image": image},
                               "Placement": {"Platforms": [{"OS": "linux",
                                                            "Architecture": "amd64"}]}}})
        for svc, image in images.items()}
    return LiveStack("test", services=services)


def test_moves_are_same_repo_and_tag_with_another_digest():
    m = load_text(STACK)
    now = live({"app": f"reg:5000/team/app:stable@{OLD}", "db": f"reg:5000/team/db:latest@{OLD}"})
    refs = {"app": ImageRef("reg:5000/team/app", "stable", NEW),
            "db": ImageRef("reg:5000/team/db", "latest", OLD),  # unchanged
            "fixed": ImageRef("reg:5000/team/x", "", "sha256:" + "c" * 64)}
    assert tag_moves(m, now, refs) == [TagMove("app", "reg:5000/team/app:stable", OLD, NEW)]
    # another tag is a change in git, not a tag that moved
    refs["app"] = ImageRef("reg:5000/team/app", "v2", NEW)
    assert tag_moves(m, now, refs) == []
    assert tag_moves(m, None, refs) == []


def test_live_pins_kept_only_when_every_tagged_service_runs_pinned():
    m = load_text(STACK)
    now = live({"app": f"reg:5000/team/app:stable@{OLD}", "db": f"reg:5000/team/db@{OLD}"})
    kept = live_pinned_images(m, now)
    assert kept.refs["app"] == ImageRef("reg:5000/team/app", "stable", OLD,
                                        (("linux", "amd64"),))
    assert kept.refs["db"].tag == "latest" and kept.refs["db"].digest == OLD
    assert kept.refs["fixed"].digest == "sha256:" + "c" * 64
    # a service that does not run yet (or runs another tag): the registry must be asked
    assert live_pinned_images(m, live({"app": f"reg:5000/team/app:stable@{OLD}"})) is None
    assert live_pinned_images(m, live({"app": f"reg:5000/team/app:v1@{OLD}",
                                       "db": f"reg:5000/team/db@{OLD}"})) is None
