"""Label keys Keelson writes on the Swarm objects it owns.

``com.docker.stack.namespace`` is docker's own (``docker stack ls/ps/rm`` read it); the
``io.keelson.*`` keys are ours. Per-revision values go on *service* labels only, never on
container labels: changing a container label replaces every task.
"""

NAMESPACE = "com.docker.stack.namespace"
STACK_IMAGE = "com.docker.stack.image"  # docker stack deploy puts the compose image name here
MANAGED_BY = "io.keelson.managed-by"
MANAGED_BY_VALUE = "keelson"
SPEC_HASH = "io.keelson.spec-hash"  # sha256 of the desired spec, Keelson labels excluded
REVISION = "io.keelson.revision"  # git revision the object was last written at
SOURCE_HASH = "io.keelson.source-hash"  # hash of the stack folder's content at that revision
CONFIG_NAME = "io.keelson.config-name"  # logical (unversioned) name of a config/secret
# Which Keelson owns the object: several controllers (or a demo beside tests) may share a swarm,
# and one must never prune the stacks of another.
INSTANCE = "io.keelson.instance"

# The per-stack state record (a Swarm config named "<stack>_keelson-state"): what Keelson must
# remember across restarts lives in its labels, which Swarm lets us update in place.
STATE = "io.keelson.state"
APPLIED_REVISION = "io.keelson.applied-revision"
APPLIED_SOURCE_HASH = "io.keelson.applied-source-hash"
FAILED_REVISION = "io.keelson.failed-revision"
FAILED_SOURCE_HASH = "io.keelson.failed-source-hash"
FAILED_REASON = "io.keelson.failed-reason"
FAILED_MESSAGE = "io.keelson.failed-message"
# issue 13.3: per-stack controls. SUSPENDED is "suspend" (until `keelson resume`) or "rollback"
# (held until a commit changes the stack's folder, i.e. its tree id differs from HELD_SOURCE);
# PREVIOUS_REVISION is the revision applied before the current one (rollback's default target).
SUSPENDED = "io.keelson.suspended"
HELD_SOURCE = "io.keelson.held-source"
PREVIOUS_REVISION = "io.keelson.previous-revision"
ROLLBACK_REVISION = "io.keelson.rollback-revision"  # issue 10: a stack rollback in progress
ROLLBACK_SOURCE_HASH = "io.keelson.rollback-source-hash"

STATE_RECORD_SUFFIX = "keelson-state"


def owner_labels(stack: str) -> dict:
    """Labels that mark an object as part of ``stack`` and owned by Keelson."""
    return {NAMESPACE: stack, MANAGED_BY: MANAGED_BY_VALUE}


def owned_by(labels: dict, instance: str) -> bool:
    """True when an object's labels say Keelson ``instance`` owns it."""
    return labels.get(MANAGED_BY) == MANAGED_BY_VALUE and labels.get(INSTANCE) == instance


def state_record_name(stack: str) -> str:
    """Name of the Swarm config that holds ``stack``'s remembered state."""
    return f"{stack}_{STATE_RECORD_SUFFIX}"

# The writer lease (a label-only Swarm config per instance, model/lease.py)
LEASE = "io.keelson.lease"  # marks the config as a lease ("true")
LEASE_HOLDER = "io.keelson.lease.holder"
LEASE_RENEWED_AT = "io.keelson.lease.renewed-at"  # holder's wall clock, seconds since the epoch

# On a node: the label keys Keelson set from the nodes file (comma list), so it prunes only
# those; the node's ``io.keelson.instance`` says which Keelson wrote the list.
NODE_LABELS = "io.keelson.node-labels"
