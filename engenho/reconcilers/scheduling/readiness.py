"""When a node counts as ready: its ``Ready`` condition is True and, if it has a Lease in
``kube-node-lease``, the Lease is fresh.

A Lease is fresh until ``spec.renewTime + spec.leaseDurationSeconds + grace_seconds``, judged
against the scheduler's clock at each decision (a Lease goes stale without any event, so
freshness cannot be decided when the Lease is written). The kubelet renews every 10 s with a
40 s duration, so a node whose kubelet stops is refused 40 s later (plus the grace); upstream's
node lifecycle controller waits its ``node-monitor-grace-period`` (40-50 s) before tainting
the node unreachable, measured from when it last saw a renewal.

- A node without a Lease is judged by its Ready condition alone (so tests and tools that
  write Nodes directly work; a kubelet always keeps a Lease).
- A Lease without ``renewTime`` (never renewed) or with one that does not parse is stale.
- ``leaseDurationSeconds`` missing or not positive counts as ``default_duration_seconds``.
- ``use_leases=False`` ignores Leases entirely.

A node that is not ready is refused by the ``NodeReady`` filter (see :mod:`.filters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from attrs import frozen

__all__ = ["NODE_LEASE_NAMESPACE", "STALE", "NodeReadiness"]

NODE_LEASE_NAMESPACE = "kube-node-lease"
STALE = float("-inf")
"""The expiry of a Lease that was never (readably) renewed."""


@frozen
class NodeReadiness:
    use_leases: bool = True
    grace_seconds: float = 0.0
    """Extra time a Lease stays fresh after it runs out (clock skew, a slow renewal)."""
    default_duration_seconds: int = 40
    lease_namespace: str = NODE_LEASE_NAMESPACE

    def lease_expiry(self, lease: Mapping[str, Any]) -> float:
        """When the Lease stops making its node ready (seconds since the epoch)."""
        spec = lease.get("spec") or {}
        renewed = spec.get("renewTime")
        if not isinstance(renewed, str):
            return STALE
        try:
            at = datetime.fromisoformat(renewed)
        except ValueError:
            return STALE
        if at.tzinfo is None:
            return STALE
        duration = spec.get("leaseDurationSeconds")
        if not isinstance(duration, int) or duration <= 0:
            duration = self.default_duration_seconds
        return at.timestamp() + duration + self.grace_seconds
