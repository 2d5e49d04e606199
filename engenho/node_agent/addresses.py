"""Pod IPs from the node's ``spec.podCIDR``, allocated by the agent itself.

The lowest free address is handed out, skipping the network address, the gateway (the
CIDR's first host address, where the OCI runtime puts the pods' bridge) and the broadcast
address. An address belongs to a pod uid until released; asking again for the same uid gives
the same address, and an agent that restarts claims back the addresses its pods' statuses
show, so a running pod keeps its IP. Pure bookkeeping: no I/O, property-tested.
"""

from __future__ import annotations

import heapq
import ipaddress

__all__ = ["AddressPool", "PoolExhaustedError"]


class PoolExhaustedError(Exception):
    """Every address of the CIDR is held (the message is the CNI host-local plugin's)."""


class AddressPool:
    """The addresses of one IPv4 pod CIDR."""

    def __init__(self, cidr: str) -> None:
        network = ipaddress.ip_network(cidr, strict=False)
        if not isinstance(network, ipaddress.IPv4Network):
            # A bad value rather than a bad type: ValueError, as ip_network raises.
            message = f"pod CIDR {cidr} is not IPv4: only IPv4 pod networks are supported"
            raise ValueError(message)  # noqa: TRY004
        if network.num_addresses < 4:
            raise ValueError(f"pod CIDR {cidr} is too small to hold a pod")
        self.network = network
        base = int(network.network_address)
        self._first = base + 2  # skip the network address and the gateway
        self._last = int(network.broadcast_address) - 1
        self._next = self._first
        self._released: list[int] = []
        self._by_uid: dict[str, int] = {}
        self._used: set[int] = set()

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.network.network_address + 1

    @property
    def range_text(self) -> str:
        return f"{ipaddress.IPv4Address(self._first)}-{ipaddress.IPv4Address(self._last)}"

    def __len__(self) -> int:
        return len(self._by_uid)

    def get(self, uid: str) -> ipaddress.IPv4Address | None:
        held = self._by_uid.get(uid)
        return None if held is None else ipaddress.IPv4Address(held)

    def allocate(self, uid: str) -> ipaddress.IPv4Address:
        """The pod's address: the one it holds, else the lowest free one."""
        held = self._by_uid.get(uid)
        if held is not None:
            return ipaddress.IPv4Address(held)
        while self._released:
            candidate = heapq.heappop(self._released)
            if candidate not in self._used:
                return self._take(uid, candidate)
        while self._next <= self._last and self._next in self._used:
            self._next += 1
        if self._next > self._last:
            raise PoolExhaustedError(
                f"failed to allocate for range 0: no IP addresses available in range set: "
                f"{self.range_text}"
            )
        candidate = self._next
        self._next += 1
        return self._take(uid, candidate)

    def claim(self, uid: str, address: str) -> bool:
        """Take ``address`` for ``uid`` (recovery after a restart); False when it is outside
        the pool or another pod holds it."""
        try:
            value = int(ipaddress.IPv4Address(address))
        except ValueError:
            return False
        if not self._first <= value <= self._last:
            return False
        held = self._by_uid.get(uid)
        if held == value:
            return True
        if value in self._used or held is not None:
            return False
        self._take(uid, value)
        return True

    def release(self, uid: str) -> None:
        held = self._by_uid.pop(uid, None)
        if held is None:
            return
        self._used.discard(held)
        if held < self._next:
            heapq.heappush(self._released, held)

    def _take(self, uid: str, value: int) -> ipaddress.IPv4Address:
        self._by_uid[uid] = value
        self._used.add(value)
        return ipaddress.IPv4Address(value)
