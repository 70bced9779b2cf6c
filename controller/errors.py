"""Keelson's error tree.

Every error carries its handling policy (after Flux): ``reason`` is the condition reason shown in
status and metrics, ``retryable`` says whether the loop should try the same input again with
backoff. Third-party exceptions are wrapped with ``raise ... from exc``.
"""
from __future__ import annotations

from enum import Enum
from typing import Optional


class KeelsonError(Exception):
    """Base of every error Keelson raises on purpose.

    Attributes:
        reason: short CamelCase condition reason (e.g. ``RenderFailed``).
        retryable: True when the same input may succeed later (network, registry, conflicts).
    """

    reason = "Failed"
    retryable = False


class ConfigError(KeelsonError):
    """Bad settings or command-line usage; the CLI exits with status 2."""

    reason = "ConfigInvalid"


class SourceError(KeelsonError):
    """The manifests source could not be read."""

    reason = "FetchFailed"
    retryable = True


class GitFetchError(SourceError):
    """``git fetch``/clone of the manifests repo failed (network, auth, missing branch)."""


class RenderError(KeelsonError):
    """A stack could not be loaded or converted."""

    reason = "RenderFailed"


class ManifestError(RenderError):
    """A problem in one stack's files, located as precisely as the input allows.

    Args:
        message: what is wrong, in the user's terms.
        stack: the stack name (its folder name).
        file: path of the file at fault, relative to the manifests root where known.
        line: 1-based line number in ``file``, or None.
        key: dotted key path inside the file (``services.web.deploy.replicas``), or None.
    """

    def __init__(self, message: str, *, stack: Optional[str] = None, file: Optional[str] = None,
                 line: Optional[int] = None, key: Optional[str] = None):
        self.message = message
        self.stack = stack
        self.file = file
        self.line = line
        self.key = key
        super().__init__(self.describe())

    def describe(self) -> str:
        """Return ``stack S: FILE:LINE: key K: message`` with the parts that are known."""
        where = []
        if self.stack:
            where.append(f"stack {self.stack}")
        if self.file:
            where.append(f"{self.file}:{self.line}" if self.line else str(self.file))
        if self.key:
            where.append(f"key {self.key}")
        return (": ".join(where) + ": " if where else "") + self.message

    def located(self, *, stack: Optional[str] = None, file: Optional[str] = None) -> "ManifestError":
        """Fill in the stack and file where the raiser did not know them; returns self."""
        self.stack = self.stack or stack
        self.file = self.file or file
        self.args = (self.describe(),)
        return self

    def at(self, *, key: Optional[str] = None, line: Optional[int] = None) -> "ManifestError":
        """Fill in the key path and line where the raiser did not know them; returns self."""
        self.key = self.key or key
        self.line = self.line or line
        self.args = (self.describe(),)
        return self


class RepoAccessError(ManifestError):
    """A read the repo asked for was refused by the sandbox (issue 7): a path that leaves the
    exported tree (absolute, ``~``, ``..``, or a symlink pointing out), a file that is not a
    regular file, or a file over its size cap.

    Args:
        message: what was refused, naming the path as written in the repo (never its content).
        rule: the rule that refused it: ``absolute-path``, ``home-path``, ``outside-repo``,
            ``symlink-outside``, ``not-a-regular-file``, ``size-cap``.
        stack, file, line, key: as :class:`ManifestError`.
    """

    reason = "PolicyDenied"

    def __init__(self, message: str, *, rule: str, stack: Optional[str] = None,
                 file: Optional[str] = None, line: Optional[int] = None,
                 key: Optional[str] = None):
        self.rule = rule
        super().__init__(f"{message} (refused: rule {rule})", stack=stack, file=file, line=line,
                         key=key)


class DecryptError(ManifestError):
    """A SOPS-encrypted file Keelson cannot decrypt: not for its age key, a key service named,
    or sops failed (issue 9). Names the file and recipients, never the content."""

    reason = "DecryptFailed"
class RegistryFault(str, Enum):
    """What a registry answered when an image request failed; the value is the condition
    reason the error then carries (issue 9), so status and metrics tell them apart.

    UNAUTHORIZED: 401/403, "unauthorized", "no basic auth credentials", "denied" (no or wrong
    credentials). NOT_FOUND: 404, "manifest unknown" (no such repository or tag).
    UNREACHABLE: connection refused, no such host, timeouts (registry down).
    UNTRUSTED: the registry's TLS certificate is not trusted (x509), or it speaks plain HTTP.
    """

    UNAUTHORIZED = "RegistryUnauthorized"
    NOT_FOUND = "ImageNotFound"
    UNREACHABLE = "RegistryUnreachable"
    UNTRUSTED = "RegistryUntrusted"


class ImageError(KeelsonError):
    """An image could not be built, pushed or resolved.

    Args:
        message: what failed, naming the image.
        fault: what the registry answered, when known; its value replaces ``reason``, and a
            registry that refused, was down or untrusted makes the error retryable.
    """

    reason = "ImageFailed"
    retryable = True

    def __init__(self, message: str = "", fault: Optional[RegistryFault] = None):
        super().__init__(message)
        self.fault = fault
        if fault is not None:
            self.reason = fault.value
            # the registry's side may be fixed without a commit (a login, a restart)
            self.retryable = self.retryable or fault != RegistryFault.NOT_FOUND


class ImageBuildError(ImageError):
    """``docker build`` failed. ``log_tail`` holds the last lines of the build output."""

    reason = "ImageBuildFailed"
    retryable = False

    def __init__(self, message: str, log_tail: str = "", fault: Optional[RegistryFault] = None):
        super().__init__(message + (f"\n{log_tail}" if log_tail else ""), fault)
        self.log_tail = log_tail


class ImagePushError(ImageError):
    """The registry refused or could not be reached for a push (errors arrive in-band)."""

    reason = "ImagePushFailed"


class ImageResolveError(ImageError):
    """A tag could not be resolved to a digest (registry down, no such tag, refused); ``fault``
    says which."""

    reason = "ImageResolveFailed"


class SwarmError(KeelsonError):
    """The Docker Engine refused or failed a request."""

    reason = "SwarmError"
    retryable = True


class SpecConflictError(SwarmError):
    """``update out of sequence``: the object changed between inspect and update."""

    reason = "SpecConflict"


class ApplyError(KeelsonError):
    """Creating, updating or removing a Swarm object failed."""

    reason = "ApplyFailed"
    retryable = True


class ImmutableChangeError(ApplyError):
    """A change Swarm cannot apply in place (a network's or volume's driver, options, IPAM...)
    that the stack does not allow Keelson to carry out by recreating the object (issue 8.3).
    Not retried until the stack changes."""

    reason = "ImmutableChange"
    retryable = False


class PreflightError(KeelsonError):
    """A stack fails a check that must pass before the first write to Docker."""

    reason = "PreflightFailed"


class PolicyError(KeelsonError):
    """A stack asks for something the operator's admission policy (KEELSON_POLICY) refuses.

    Retryable, and nothing is recorded for the stack: the check runs before any build or
    registry request (cheap to repeat), so a policy the operator relaxes applies on the next
    pass, and a refused stack leaves no state record behind.

    Args:
        message: every refusal, each naming stack, service, key and rule.
        violations: the refusals as ``controller.policy`` Violation objects (may be empty).
    """

    reason = "PolicyDenied"
    retryable = True

    def __init__(self, message: str, violations: tuple = ()):
        super().__init__(message)
        self.violations = tuple(violations)


class OwnershipError(PolicyError):
    """A stack's name is taken by objects this Keelson does not own (another Keelson instance,
    a hand-deployed or ``docker stack deploy`` stack, or the stack Keelson itself runs in).

    Retryable: nothing is written for the stack (not even a failure record, which would put a
    Keelson object into someone else's stack); the stack syncs once the owner is gone or the
    stack opts in to adoption.
    """

    reason = "NotOwned"




class ControlError(KeelsonError):
    """A per-stack control (``keelson sync --now | suspend | resume | rollback | diff``, issue
    13.3) cannot be done: a revision that is not on the followed branch, a rollback on a plain
    folder source, a stack that does not exist at the revision asked for. HTTP 409."""

    reason = "ControlRefused"


class StackNotFoundError(ControlError):
    """A control named a stack this Keelson does not reconcile. HTTP 404."""

    reason = "StackNotFound"


class RemoteError(KeelsonError):
    """The remote CLI's request to a running Keelson failed (not reachable, refused, 4xx/5xx).

    Attributes:
        status: the HTTP status (0 when the server could not be reached).
    """

    reason = "RemoteFailed"

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status
class LeaseLostError(SwarmError):
    """This Keelson does not hold its instance's writer lease (another task of the same
    instance writes): nothing is written (reconcile/lease.py)."""

    reason = "LeaseLost"
    retryable = True
