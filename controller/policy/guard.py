"""The two admission checks a pass runs for each stack, built once from Settings.

Both run right after a stack is loaded, before any build, registry request or write:
``check_owner`` on the loaded manifest and the live stack, ``check_admission`` on the specs
converted with :func:`placeholder_refs` standing in for images still to be built (the policy
never looks at images). Both raise, so a refused stack stops there and every other stack goes
on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Set

from controller.config import Settings
from controller.errors import ManifestError, OwnershipError, PolicyError
from controller.model.desired import DesiredStack
from controller.model.identity import ControllerIdentity
from controller.model.live import LiveStack
from controller.model.manifest import ImageRef, StackManifest
from controller.policy.admission import AdmissionPolicy, Violation, check
from controller.policy.ownership import OwnershipRules, may_prune, ownership_problem, stack_adopts
from controller.policy.protected import ProtectedNames


DEFAULT_SELF_STACK = "keelson"  # README: docker stack deploy -c stack.yml keelson


def placeholder_refs(manifest: StackManifest) -> Dict[str, ImageRef]:
    """Stand-in images for the services ``manifest`` builds, so it converts before any build.

    Returns:
        service name -> ``registry.invalid/<stack>_<service>:unbuilt`` (an image-only service
        converts from its ``image:`` as written).
    """
    return {svc: ImageRef(f"registry.invalid/{manifest.name}_{svc}", "unbuilt")
            for svc in manifest.builds}


def wanted_objects(desired: DesiredStack) -> Set[str]:
    """``kind name`` of every object a stack asks for (as ``foreign_objects`` spells them)."""
    return ({f"service {n}" for n in desired.services}
            | {f"network {n}" for n, net in desired.networks.items() if not net.external}
            | {f"config {n}" for n, c in desired.configs.items() if not c.external}
            | {f"secret {n}" for n, c in desired.secrets.items() if not c.external})


@dataclass(frozen=True)
class Guard:
    """Ownership rules and admission policy of one Keelson.

    Attributes:
        ownership: OwnershipRules (instance, takeovers, own stack).
        admission: AdmissionPolicy (level, protected names, allowed bind paths).
    """

    ownership: OwnershipRules
    admission: AdmissionPolicy

    @staticmethod
    def from_settings(settings: Settings,
                      identity: Optional[ControllerIdentity] = None) -> "Guard":
        """The guard for validated ``settings`` and Keelson's detected ``identity``.

        Keelson's own stack: KEELSON_SELF_STACK, else the detected stack, else
        :data:`DEFAULT_SELF_STACK` (the name the install guide deploys Keelson as), so that a
        repo stack named ``keelson`` can never adopt Keelson when detection finds nothing.
        """
        identity = identity or ControllerIdentity()
        return Guard(
            OwnershipRules(instance=settings.instance,
                           adopt_instances=frozenset(settings.adopt_instances),
                           adopt_all=settings.adopt,
                           self_stack=settings.self_stack or identity.stack or DEFAULT_SELF_STACK),
            AdmissionPolicy(level=settings.policy,
                            protected=ProtectedNames.of(identity, settings.protected_names),
                            # the operator's KEELSON_BIND_ROOT is a place meant for binds
                            allowed_bind_paths=tuple(settings.allowed_bind_paths)
                            + ((settings.bind_root,) if settings.bind_root else ())))

    def check_owner(self, manifest: StackManifest, live: Optional[LiveStack],
                    wanted: Optional[Set[str]] = None) -> None:
        """Refuse a stack this Keelson does not own (see ``policy.ownership``).

        Args:
            manifest: the loaded stack (for ``x-keelson.adopt``). live: its objects, or None.
            wanted: ``kind name`` of every object the stack asks for (see
                :func:`wanted_objects`); in a stack this Keelson owns, only those count.
        Raises:
            OwnershipError: the owner(s) found and how to adopt; nothing may be written (also
                when ``x-keelson.adopt`` is malformed in a stack with another owner, so that
                no failure record lands in someone else's stack).
            ManifestError: ``x-keelson.adopt`` is not a boolean in a stack Keelson owns.
        """
        problem = ownership_problem(manifest.name, live, self.ownership, adopt=False,
                                    wanted=wanted)
        try:
            adopt = stack_adopts(manifest)
        except ManifestError as exc:
            if problem:
                raise OwnershipError(f"{problem}; also {exc}") from exc
            raise
        if problem and adopt:
            problem = ownership_problem(manifest.name, live, self.ownership, adopt=True,
                                        wanted=wanted)
        if problem:
            raise OwnershipError(problem)

    def violations(self, manifest: Optional[StackManifest],
                   desired: DesiredStack) -> List[Violation]:
        """What the admission policy refuses in ``desired`` (empty when admitted)."""
        return check(desired, self.admission, manifest)

    def check_admission(self, manifest: Optional[StackManifest], desired: DesiredStack) -> None:
        """Refuse a stack that asks for what the admission policy forbids.

        Raises:
            PolicyError: reason PolicyDenied; its message lists each violation with stack,
                service, key, line and rule; ``violations`` holds them.
        """
        found = self.violations(manifest, desired)
        if found:
            raise PolicyError("; ".join(str(v) for v in found), found)

    def may_prune(self, stack: str, live: LiveStack) -> bool:
        """True when ``stack`` (gone from the repo) may be pruned (see ``ownership.may_prune``)."""
        return may_prune(stack, live, self.ownership)
