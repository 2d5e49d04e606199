"""Node IPAM: every Node gets a slice of the cluster's pod range as ``spec.podCIDR``.

Each node without ``spec.podCIDR`` gets the lowest block of the configured size (a /24 of
10.42.0.0/16 unless configured) that overlaps no pod CIDR any node holds, written as
``spec.podCIDR`` and ``spec.podCIDRs`` (upstream's range allocator, except that it hands out
the lowest free block rather than the next one round the range, so the result is a function of
the state alone). The choice is made before proposing, from the claims index (the
``nodes/podCIDR/`` claims every node version holds), and uniqueness is the apply step's: two
allocators that chose the same block for two nodes cannot both win, because the loser's
command names a claim the winner holds. The loser's write is refused, and it chooses again.

Allocators that all want the lowest free block contend for it: each lost race is another
node's win, so a node tries again at once, and after ``attempts`` losses in a row goes to the
back of the queue. A range with no block left: the node stays without one, a
``CIDRNotAvailable`` event says so (upstream's reason and wording), and it is tried again when
a node that held a block goes, or after ``retry_after`` seconds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from engenho.projections import StoredObject
from engenho.reconcilers.controller import Controller, Requeue, kube_system_identity
from engenho.reconcilers.events import Reference
from engenho.reconcilers.informer import Informer
from engenho.registry import InvalidError, NotFoundError
from engenho.registry.allocation import POD_CIDR
from engenho.schema import CATALOGUE

__all__ = ["NodeIpamController", "lowest_free_cidr"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse(text: str) -> _Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def lowest_free_cidr(cluster_cidr: str, mask_size: int, held: Iterable[str]) -> str | None:
    """The lowest block of ``/mask_size`` in ``cluster_cidr`` that overlaps none of ``held``
    (CIDRs, of any size, in or out of the range; ones that do not parse are ignored), or None
    when there is none.

    Works on the held blocks rather than on every candidate, so a large range with few nodes
    costs what the nodes cost: sort the held intervals, and step over each that overlaps the
    current candidate to the next aligned block after it.
    """
    network = ipaddress.ip_network(cluster_cidr, strict=False)
    if not network.prefixlen <= mask_size <= network.max_prefixlen:
        raise ValueError(
            f"a node CIDR mask size of {mask_size} does not fit in the cluster CIDR {network}"
        )
    size = 1 << (network.max_prefixlen - mask_size)
    base = int(network.network_address)
    end = base + network.num_addresses
    intervals = sorted(
        (int(other.network_address), int(other.broadcast_address))
        for other in (_parse(text) for text in held)
        if other is not None and other.version == network.version and other.overlaps(network)
    )
    candidate = base
    for first, last in intervals:
        if last < candidate:
            continue
        if first >= candidate + size:
            break
        candidate = base + ((last + 1 - base + size - 1) // size) * size
    if candidate + size > end:
        return None
    return str(ipaddress.ip_network((candidate, mask_size)))


def _has_cidr(stored: StoredObject | None) -> bool:
    spec = (stored.object.get("spec") or {}) if stored is not None else {}
    return bool(spec.get("podCIDR") or spec.get("podCIDRs"))


class NodeIpamController(Controller):
    name = "node-ipam"
    # Upstream's node IPAM controller runs under the node-controller service account.
    identity = kube_system_identity("node-controller")

    def __init__(
        self,
        *args: Any,
        cluster_cidr: str | None = None,
        node_cidr_mask_size: int | None = None,
        retry_after: float = 30.0,
        attempts: int = 16,
        **kwargs: Any,
    ) -> None:
        """``cluster_cidr`` and ``node_cidr_mask_size`` default to the registry's network
        settings (``cluster_cidr``, ``node_cidr_prefix``)."""
        super().__init__(*args, **kwargs)
        network = self.registry.network
        self.cluster_cidr = cluster_cidr or network.cluster_cidr
        self.mask_size = node_cidr_mask_size or network.node_cidr_prefix
        lowest_free_cidr(self.cluster_cidr, self.mask_size, ())  # refuse a bad pair now
        self.retry_after = retry_after
        self.attempts = attempts

    def setup(self) -> None:
        self.resource = CATALOGUE.get("", "v1", "nodes")
        self.nodes: Informer = self.watch_primary(self.resource)
        self.nodes.add_handler(self._freed)

    def _freed(self, event: str, old: StoredObject | None, _new: StoredObject | None) -> None:
        """A node that held a block went: nodes left without one may get it now."""
        if event == "DELETED" and _has_cidr(old):
            for stored in self.nodes.list():
                if not _has_cidr(stored):
                    self.queue.add(stored.name)

    def _held(self) -> list[str]:
        return [claim[len(POD_CIDR) :] for claim in self.registry.projections.claims(POD_CIDR)]

    async def reconcile(self, key: str) -> None:
        try:
            # Read through the registry, not the cache: a block written a moment ago must be
            # seen, or the node would be given a second one (and refused).
            stored = await self.registry.get(self.resource, "", key)
        except NotFoundError:
            return
        if _has_cidr(stored):
            return
        for _attempt in range(self.attempts):
            cidr = lowest_free_cidr(self.cluster_cidr, self.mask_size, self._held())
            if cidr is None:
                self.events.emit(
                    # Upstream names a node in events by its name, uid included.
                    Reference("v1", "Node", "", key, key),
                    "Normal",
                    "CIDRNotAvailable",
                    f"Node {key} status is now: CIDRNotAvailable",
                )
                raise Requeue(self.retry_after, f"no pod CIDR left in {self.cluster_cidr}")
            patch = {
                "metadata": {"resourceVersion": str(stored.resource_version)},
                "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            }
            try:
                await self.registry.patch(self.context(), self.resource, "", key, "merge", patch)
            except InvalidError:
                # Refused because another node took the block since it was chosen (the
                # claim, or the overlap check of the write path)? Then choose again.
                if lowest_free_cidr(self.cluster_cidr, self.mask_size, self._held()) == cidr:
                    raise
                continue
            return
        # Every lost race means another node got a block, so this ends; meanwhile the other
        # keys get their turn before this one is tried again.
        raise Requeue(0.0, f"lost {self.attempts} races for a pod CIDR in a row")
