"""The pod-address pool: properties (unique, inside the range, never the network, gateway or
broadcast address, lowest free first, stable per pod, claims honoured) under random
sequences of allocations, releases and claims."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.node_agent.addresses import AddressPool, PoolExhaustedError


def test_the_first_addresses_skip_the_network_and_the_gateway() -> None:
    pool = AddressPool("10.42.3.0/24")
    assert str(pool.allocate("a")) == "10.42.3.2"
    assert str(pool.allocate("b")) == "10.42.3.3"
    assert str(pool.allocate("a")) == "10.42.3.2", "a pod keeps its address"
    assert str(pool.gateway) == "10.42.3.1"
    pool.release("a")
    assert str(pool.allocate("c")) == "10.42.3.2", "the lowest free address first"


def test_exhaustion_says_so_as_host_local_does() -> None:
    pool = AddressPool("10.0.0.0/30")
    pool.allocate("a")
    with pytest.raises(PoolExhaustedError) as caught:
        pool.allocate("b")
    assert str(caught.value) == (
        "failed to allocate for range 0: no IP addresses available in range set: 10.0.0.2-10.0.0.2"
    )


def test_claims_recover_addresses_after_a_restart() -> None:
    pool = AddressPool("10.42.0.0/24")
    assert pool.claim("a", "10.42.0.7")
    assert pool.claim("a", "10.42.0.7"), "claiming what one holds is fine"
    assert not pool.claim("b", "10.42.0.7"), "held by another pod"
    assert not pool.claim("b", "10.42.1.7"), "outside the pool"
    assert not pool.claim("b", "10.42.0.1"), "the gateway"
    assert not pool.claim("b", "not an address")
    assert [str(pool.allocate(uid)) for uid in "cde"] == ["10.42.0.2", "10.42.0.3", "10.42.0.4"]


def test_ipv6_and_tiny_ranges_are_refused() -> None:
    with pytest.raises(ValueError, match="not IPv4"):
        AddressPool("fd00::/64")
    with pytest.raises(ValueError, match="too small"):
        AddressPool("10.0.0.0/31")


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["allocate", "release", "claim"]), st.integers(0, 20), st.integers(0, 15)
    ),
    max_size=120,
)


@given(_OPS)
def test_pool_properties(ops: list[tuple[str, int, int]]) -> None:
    pool = AddressPool("10.9.8.0/28")  # 13 usable addresses: .2 to .14
    network = ipaddress.ip_network("10.9.8.0/28")
    held: dict[str, ipaddress.IPv4Address] = {}
    for op, pod, offset in ops:
        uid = f"pod-{pod}"
        if op == "allocate":
            try:
                address = pool.allocate(uid)
            except PoolExhaustedError:
                assert len(held) == 13 and uid not in held
                continue
            if uid in held:
                assert address == held[uid], "stable per pod"
            else:
                free = [a for a in list(network.hosts())[1:] if a not in held.values()]
                assert address == min(free), "the lowest free address"
            held[uid] = address
        elif op == "release":
            pool.release(uid)
            held.pop(uid, None)
        else:
            address = network.network_address + offset
            ok = pool.claim(uid, str(address))
            expected = 2 <= offset <= 14 and (
                held.get(uid) == address or (uid not in held and address not in held.values())
            )
            assert ok == expected
            if ok:
                held[uid] = address
        assert len(set(held.values())) == len(held), "unique"
        assert len(pool) == len(held)
        for address in held.values():
            assert address in network and address not in (
                network.network_address,
                network.network_address + 1,
                network.broadcast_address,
            )
