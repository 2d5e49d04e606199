"""The engenho renderer: the same ClusterConfig as an engenho.yaml that validates as an
EngenhoConfig file and carries what the two share, golden renders, and notes for the settings
engenho has no equivalent for."""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from engenho.config import (
    RENDERERS,
    EngenhoRenderer,
    ListenAddress,
    PortRange,
    Tier,
    validate_config_file,
    write_rendering,
)
from tests.config.golden import CASES, check_golden, load_case

RENDERER = EngenhoRenderer()


def test_both_renderers_are_offered() -> None:
    assert sorted(RENDERERS) == ["engenho", "k3s"]


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    check_golden(case, RENDERER.render(load_case(case)))


@pytest.mark.parametrize("case", CASES)
def test_output_is_a_valid_engenho_config_file(case: str, tmp_path: Path) -> None:
    cluster = load_case(case)
    write_rendering(RENDERER.render(cluster), tmp_path)
    resolved = validate_config_file(tmp_path / "engenho.yaml", env={}, hostname="host")
    config = resolved.config
    network = cluster.network
    assert config.cluster.name == cluster.cluster_name
    assert config.networking.service_cidr == network.service_cidr
    assert config.networking.cluster_cidr == network.cluster_cidr
    assert config.networking.cluster_dns == network.cluster_dns
    assert config.networking.cluster_domain == network.cluster_domain
    assert config.networking.node_port_range == network.service_node_port_range
    assert str(cluster.node_ip) in config.server.tls.sans
    assert resolved.source("networking.service_cidr").tier is Tier.FILE
    if cluster.node_name is not None:
        assert config.node_agent.node_name == cluster.node_name
    else:
        assert resolved.source("node_agent.node_name").tier is Tier.DEFAULT


def test_values_carried() -> None:
    document = RENDERER.document(load_case("calico-argocd"))
    assert document["networking"] == {
        "cluster_cidr": "10.60.0.0/16",
        "cluster_dns": "10.61.0.53",
        "cluster_domain": "cluster.local",
        "node_port_range": str(PortRange(30000, 32767)),
        "service_cidr": "10.61.0.0/20",
    }
    assert document["node_agent"] == {"node_name": "factory-cp-0"}
    assert document["server"]["listen"] == "0.0.0.0:6443"
    cni_none = RENDERER.document(load_case("cni-none"))
    assert cni_none["server"]["listen"] == str(ListenAddress("::", 6443)) == "[::]:6443"
    assert sorted(cni_none["server"]["tls"]["sans"]) == ["10.10.0.7", "10.10.0.8"]
    assert ip_network(document["networking"]["service_cidr"]).supernet_of(
        ip_network(f"{ip_address(document['networking']['cluster_dns'])}/32")
    )


def test_settings_without_an_engenho_equivalent_are_noted() -> None:
    assert RENDERER.render(load_case("minimal")).notes == ()
    notes = RENDERER.render(load_case("calico-argocd")).notes
    assert "network.cni (calico) has no engenho equivalent; not rendered" in notes
    assert "bootstrap.argocd has no engenho equivalent; not rendered" in notes
    assert not [n for n in notes if "cluster-cidr" in n or "tls-sans" in n]
