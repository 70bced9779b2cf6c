"""How a call to the Docker Engine fails: docker/HTTP exceptions mapped to Keelson errors.

Shared by SwarmClient, its config/secret methods (``blobs.py``) and ImageEngine.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import docker.errors
import requests.exceptions

from controller.errors import SpecConflictError, SwarmError


def is_out_of_sequence(exc: BaseException) -> bool:
    """True for swarmkit's optimistic-concurrency refusal ("update out of sequence")."""
    return "out of sequence" in str(getattr(exc, "explanation", "") or exc).lower()


def is_not_found(exc: BaseException) -> bool:
    """True when the Engine says the object does not exist.

    A 404, or a 500 whose message ends in "not found": dockerd 20.10 answers that way when a
    removed overlay network still lingers in the local list while its last task detaches.
    """
    if isinstance(exc, docker.errors.NotFound) or getattr(exc, "status_code", None) == 404:
        return True
    explanation = str(getattr(exc, "explanation", "") or "").lower()
    return explanation.endswith("not found")


@contextlib.contextmanager
def engine_call(what: str) -> Iterator[None]:
    """Wrap docker/HTTP exceptions raised inside the block as Keelson errors.

    Args:
        what: short description of the request, used as the message prefix.
    Raises:
        SpecConflictError: the Engine said "update out of sequence".
        SwarmError: any other docker.errors.DockerException or requests exception.
    """
    try:
        yield
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        msg = getattr(exc, "explanation", None) or str(exc)
        if is_out_of_sequence(exc):
            raise SpecConflictError(f"{what}: {msg}") from exc
        raise SwarmError(f"{what}: {msg}") from exc
