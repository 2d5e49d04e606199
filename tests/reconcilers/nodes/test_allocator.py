"""The pod CIDR allocator (``lowest_free_cidr``): against a brute-force search over every
block, for random ranges, block sizes and held CIDRs of any size, in and out of the range;
IPv6 too."""

from __future__ import annotations

import ipaddress
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.reconcilers.nodeipam import lowest_free_cidr


def _brute_force(cluster: str, mask: int, held: list[str]) -> str | None:
    network = ipaddress.ip_network(cluster)
    taken = [ipaddress.ip_network(h, strict=False) for h in held]
    for block in network.subnets(new_prefix=mask):
        if not any(block.overlaps(t) for t in taken if t.version == block.version):
            return str(block)
    return None


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, int, list[str]]:
    prefix = draw(st.integers(min_value=20, max_value=28))
    cluster = str(ipaddress.ip_network((0x0A2A0000, prefix), strict=False))
    mask = draw(st.integers(min_value=prefix, max_value=min(prefix + 6, 32)))
    held = draw(
        st.lists(
            st.builds(
                lambda address, size: str(ipaddress.ip_network((address, size), strict=False)),
                st.integers(min_value=0x0A290000, max_value=0x0A2BFFFF),
                st.integers(min_value=14, max_value=32),
            ),
            max_size=12,
        )
    )
    return cluster, mask, held


@given(cases())
def test_lowest_free_agrees_with_brute_force(case: tuple[str, int, list[str]]) -> None:
    cluster, mask, held = case
    assert lowest_free_cidr(cluster, mask, held) == _brute_force(cluster, mask, held)


@given(cases(), st.randoms(use_true_random=False))
def test_the_answer_does_not_depend_on_the_order_of_claims(
    case: tuple[str, int, list[str]], random: Random
) -> None:
    cluster, mask, held = case
    shuffled = list(held)
    random.shuffle(shuffled)
    assert lowest_free_cidr(cluster, mask, shuffled) == lowest_free_cidr(cluster, mask, held)


def test_examples() -> None:
    assert lowest_free_cidr("10.42.0.0/16", 24, []) == "10.42.0.0/24"
    assert lowest_free_cidr("10.42.0.0/16", 24, ["10.42.0.0/24", "10.42.2.0/24"]) == (
        "10.42.1.0/24"
    )
    assert lowest_free_cidr("10.42.0.0/16", 24, ["10.42.0.0/17"]) == "10.42.128.0/24"
    assert lowest_free_cidr("10.42.0.0/16", 24, ["10.42.0.0/16"]) is None
    assert lowest_free_cidr("10.42.0.0/16", 24, ["not a cidr", "fd00::/8"]) == "10.42.0.0/24"
    assert lowest_free_cidr("fd00:42::/56", 64, ["fd00:42::/64"]) == "fd00:42:0:1::/64"
    with pytest.raises(ValueError, match="does not fit"):
        lowest_free_cidr("10.42.0.0/16", 8, [])


def test_a_large_range_with_many_nodes_is_cheap() -> None:
    held = [f"10.{i // 256}.{i % 256}.0/24" for i in range(20_000)]
    assert lowest_free_cidr("10.0.0.0/8", 24, held) == "10.78.32.0/24"
