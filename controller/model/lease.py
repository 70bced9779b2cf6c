"""The writer lease (pure): who may write to the swarm for one Keelson instance.

Two Keelson tasks of one instance can run at once for a while (Swarm starts the new task before
the old one stops with ``order: start-first``; a partitioned manager keeps its task). Only the
holder of the instance's lease writes. The lease is a label-only Swarm config; a holder renews it
by updating its labels with the version index it read (compare-and-swap: swarmkit refuses an
update "out of sequence"), and a waiter takes it over once it has seen the same version for a
whole TTL by its *own* monotonic clock (after Kubernetes' leader election, which judges expiry by
observation, not by the holder's clock). Only on first sight, before any observation, the
holder's wall-clock renewal time estimates its age.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from typing import Optional, Sequence

LEASE_PREFIX = "keelson-lease."


def lease_name(instance: str, stacks: Sequence[str] = ()) -> str:
    """The lease config's name for ``instance`` and its stack selection (KEELSON_STACKS).

    Two tasks of one configuration share a lease (one writes); controllers deliberately given
    different stack selections of one repo (shards) get one lease each. Swarm config names are
    at most 64 characters and instance names up to 63, so the name carries a hash; the
    instance is also a label.
    """
    key = instance + "\n" + ",".join(sorted(stacks))
    return LEASE_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True)
class LeaseRecord:
    """The lease as read from Swarm.

    Attributes:
        holder: the holder's identity (hostname, pid and a random part).
        version: the config's ``Version.Index`` (the compare-and-swap token).
        renewed_at: the holder's wall clock at its last renewal (seconds since the epoch).
        object_id: the config's ID.
    """

    holder: str
    version: int
    renewed_at: float
    object_id: str


class LeaseAction(str, Enum):
    """What a contender does next with the lease."""

    CREATE = "create"        # no lease exists: create it (Swarm refuses a duplicate name)
    RENEW = "renew"          # we hold it and a renewal is due
    KEEP = "keep"            # we hold it, renewal not yet due
    TAKE_OVER = "take-over"  # another holder stopped renewing for a whole TTL
    WAIT = "wait"            # another holder is alive


def decide(record: Optional[LeaseRecord], me: str, *, seen_for_s: float, since_renewal_s: float,
           ttl_s: float) -> LeaseAction:
    """The next lease action.

    Args:
        record: the lease as read now, or None when there is none.
        me: this contender's holder identity.
        seen_for_s: seconds (own monotonic clock) this exact record version has been observed
            unchanged; on first sight, the record's wall-clock age (never negative).
        since_renewal_s: seconds since this contender last renewed (when it is the holder).
        ttl_s: lease duration in seconds; holders renew every third of it.
    Returns:
        LeaseAction.
    """
    if record is None:
        return LeaseAction.CREATE
    if record.holder == me:
        return LeaseAction.RENEW if since_renewal_s >= ttl_s / 3 else LeaseAction.KEEP
    return LeaseAction.TAKE_OVER if seen_for_s >= ttl_s else LeaseAction.WAIT
