"""The key a stack's outcome is remembered under: a hash of every input it reads (issue 8).

A failed stack is Stalled "until an input changes". The key is
``controller.render.inputs.inputs_hash`` over the loaded stack (stack files and overrides,
``.env``, env_files, config/secret files, build contexts and Dockerfiles, even outside the stack
folder, and the interpolation variables) plus the digests its image tags resolve to now, so a
fix anywhere it reads, or a tag re-pushed to the registry, retries the stack.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping, Optional

from controller.errors import KeelsonError
from controller.model import Checkout, LiveStack, StackManifest
from controller.reconcile.stack_images import StackImages, resolve_pulled_images
from controller.render.inputs import inputs_hash
from controller.render.loader import load_stack

log = logging.getLogger("keelson.reconcile")


@dataclass(frozen=True)
class StackInputs:
    """A stack loaded for its inputs key, so the pass can reuse what it already did.

    Attributes:
        key: ``inputs-<40 hex>`` (``controller.render.inputs.inputs_hash``).
        manifest: the loaded stack (the pass converts this one instead of loading again).
        pulled: the image-only services' resolved references (``stack_images`` would resolve
            the same tags again).
    """

    key: str
    manifest: StackManifest
    pulled: StackImages


def stack_inputs(name: str, stack_file: str, checkout: Checkout, live: Optional[LiveStack],
                 *, environ: Mapping[str, str], engine,
                 options: Optional[Mapping[str, str]] = None) -> StackInputs:
    """Load the stack, resolve its image tags (no build, no push) and hash its inputs.

    Args:
        name: stack name. stack_file: the path ``find_stacks`` gave for it.
        checkout: the fetched revision (its ``root`` bounds every path the stack reads).
        live: the stack's live objects (a tag the registry cannot resolve keeps its live digest).
        environ: interpolation variables, as the pass loads the stack with.
        engine: swarm.engine_images.ImageEngine (asks the registry for digests).
        options: operator settings the render depends on (``KEELSON_BIND_ROOT``,
            ``KEELSON_REGISTRY`` -> value); changing one retries a stalled stack.
    Returns:
        StackInputs.
    Raises:
        ManifestError: the stack does not load (report it as the pass does a load error).
    """
    manifest = load_stack(name, stack_file, environ, root=checkout.root)
    pulled = resolve_pulled_images(manifest, live, engine=engine)
    return StackInputs(inputs_hash(manifest, pulled.refs, options), manifest, pulled)


def stack_inputs_key(name: str, stack_file: str, checkout: Checkout, live: Optional[LiveStack],
                     *, environ: Mapping[str, str], engine,
                     options: Optional[Mapping[str, str]] = None) -> str:
    """The inputs key of a stack (see :func:`stack_inputs`), or "" when it does not load.

    Args:
        as :func:`stack_inputs`.
    Returns:
        str: ``inputs-<40 hex>``; "" when the stack does not load (the pass then reports the
        load error as usual, and nothing is remembered for it).
    Raises:
        nothing: any Keelson error gives "".
    """
    try:
        return stack_inputs(name, stack_file, checkout, live, environ=environ, engine=engine,
                            options=options).key
    except KeelsonError as exc:
        log.debug("stack %s: no inputs key (%s)", name, exc)
        return ""
