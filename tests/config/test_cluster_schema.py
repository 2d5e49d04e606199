"""ClusterConfig documents: kebab-case keys, stock k3s defaults, strict types, unknown keys
refused with their paths, every problem reported in one pass, the example and its round trip,
and validation when a ClusterConfig is built in Python."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from engenho.config import (
    ClusterConfig,
    Cni,
    ConfigFileError,
    FlannelBackend,
    InvalidConfigError,
    Network,
    NetworkPolicy,
    PortRange,
    cluster_config_document,
    dump_yaml,
    example_cluster_config,
    load_cluster_config,
    parse_cluster_config,
)
from tests.config.golden import GOLDEN, updating


def problems(document: object) -> list[tuple[str, str]]:
    with pytest.raises(InvalidConfigError) as caught:
        parse_cluster_config(document)
    return [(p.path, p.message) for p in caught.value.problems]


MINIMAL: dict[str, Any] = {"cluster-name": "edge", "node-ip": "10.0.0.5"}


def test_minimal_document_takes_stock_k3s_defaults() -> None:
    config = parse_cluster_config(MINIMAL)
    network = config.network
    assert config.cluster_name == "edge"
    assert config.node_ip == IPv4Address("10.0.0.5")
    assert config.node_name is None
    assert network.cni is Cni.FLANNEL
    assert network.effective_flannel_backend is FlannelBackend.VXLAN
    assert network.cluster_cidr == IPv4Network("10.42.0.0/16")
    assert network.service_cidr == IPv4Network("10.43.0.0/16")
    assert network.cluster_dns == IPv4Address("10.43.0.10")
    assert network.cluster_domain == "cluster.local"
    assert network.service_node_port_range == PortRange(30000, 32767)
    assert network.effective_network_policy is NetworkPolicy.ENABLED
    assert config.bootstrap.flux is None
    assert config.bootstrap.argocd is None


def test_network_policy_default_follows_the_cni() -> None:
    expected = {
        "flannel": NetworkPolicy.ENABLED,
        "calico": NetworkPolicy.DELEGATED,
        "cilium": NetworkPolicy.DELEGATED,
        "none": NetworkPolicy.DISABLED,
    }
    for cni, policy in expected.items():
        config = parse_cluster_config(MINIMAL | {"network": {"cni": cni}})
        assert config.network.effective_network_policy is policy, cni


def test_required_fields() -> None:
    assert problems({}) == [
        ("cluster-name", "required field missing"),
        ("node-ip", "required field missing"),
    ]


def test_keys_are_kebab_case_and_unknown_keys_are_refused_with_their_path() -> None:
    document = {"cluster_name": "edge", "node-ip": "10.0.0.5"}
    assert ("cluster_name", "unknown field") in problems(document)
    nested = MINIMAL | {"network": {"cluster_cidr": "10.42.0.0/16", "kube-proxy": {"mod": 1}}}
    assert sorted(problems(nested)) == [
        ("network.cluster_cidr", "unknown field"),
        ("network.kube-proxy.mod", "unknown field"),
    ]


def test_unknown_keys_do_not_hide_the_other_problems() -> None:
    document = {"cluster-name": "Edge", "node-ip": "10.0.0.5", "colour": "blue"}
    assert [path for path, _ in problems(document)] == ["colour", "cluster-name"]


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        ({"node-ip": 167772165}, "node-ip", "expected an IPv4 address, got the number 167772165"),
        ({"node-ip": "fe80::1"}, "node-ip", "'fe80::1' is not an IPv4 address"),
        ({"cluster-name": 7}, "cluster-name", "expected a string, got the number 7"),
        ({"network": {"mtu": "1400"}}, "network.mtu", "expected an integer, got the string"),
        ({"network": {"mtu": True}}, "network.mtu", "expected an integer, got the boolean"),
        ({"network": {"tls-sans": "a.example"}}, "network.tls-sans", "expected a list"),
        ({"network": {"tls-sans": ["a", 5]}}, "network.tls-sans[1]", "expected a string"),
        ({"network": {"cni": "weave"}}, "network.cni", "is not one of: flannel, calico"),
        ({"network": {"kube-proxy": {"disabled": "yes"}}}, "network.kube-proxy.disabled", "true"),
        ({"network": "flannel"}, "network", "expected a mapping, got the string 'flannel'"),
        ({"network": {"cluster-cidr": "10.42.0.0"}}, "network.cluster-cidr", "not a CIDR"),
        (
            {"network": {"service-node-port-range": "30000:32767"}},
            "network.service-node-port-range",
            "is not a port range",
        ),
    ],
)
def test_types_are_strict(document: dict[str, Any], path: str, message: str) -> None:
    found = problems(MINIMAL | document)
    assert any(p == path and message in m for p, m in found), found


def test_a_document_must_be_a_mapping() -> None:
    assert problems(["cluster-name"]) == [("", "expected a mapping, got a list")]


def test_a_repeated_yaml_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("cluster-name: a\nnode-ip: 10.0.0.5\ncluster-name: b\n")
    with pytest.raises(ConfigFileError, match="'cluster-name' repeated"):
        load_cluster_config(path)


def test_unreadable_or_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="No such file"):
        load_cluster_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("cluster-name: [\n")
    with pytest.raises(ConfigFileError, match="not valid YAML"):
        load_cluster_config(tmp_path / "bad.yaml")


def test_a_cluster_config_built_in_python_is_validated() -> None:
    with pytest.raises(InvalidConfigError) as caught:
        ClusterConfig(
            cluster_name="edge",
            node_ip=IPv4Address("10.0.0.5"),
            network=Network(cni=Cni.CALICO, flannel_backend=FlannelBackend.VXLAN),
        )
    assert [p.path for p in caught.value.problems] == ["network.flannel-backend"]


def test_the_example_is_fully_populated_and_valid() -> None:
    example = example_cluster_config()
    document = cluster_config_document(example)
    assert parse_cluster_config(document) == example
    assert parse_cluster_config(json.loads(json.dumps(document))) == example
    nulls = sorted(path for path, value in _leaves(document) if value is None)
    # Only the settings the example's choices exclude stay null.
    assert nulls == [
        "bootstrap.argocd",
        "network.flannel-backend",
        "network.kube-proxy.mode",
    ]


def test_the_example_is_the_golden_example_case() -> None:
    text = dump_yaml(cluster_config_document(example_cluster_config()))
    golden = GOLDEN / "example" / "cluster.yaml"
    if updating():
        golden.write_text(text)
    assert golden.read_text() == text


def test_every_document_round_trips() -> None:
    for case in sorted(p for p in GOLDEN.iterdir() if p.is_dir()):
        config = load_cluster_config(case / "cluster.yaml")
        assert parse_cluster_config(cluster_config_document(config)) == config


def _leaves(document: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    found = []
    for key, value in document.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            found += _leaves(value, path)
        else:
            found.append((path, value))
    return found
