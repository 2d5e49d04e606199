"""ClusterConfig validation: each rule with a document that breaks it, the field path it is
reported under and the gist of the message; and that one pass reports every problem."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engenho.config import InvalidConfigError, parse_cluster_config

BASE: dict[str, Any] = {"cluster-name": "edge", "node-ip": "10.0.0.5"}


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def net(**fields: Any) -> dict[str, Any]:
    return {"network": {k.replace("_", "-"): v for k, v in fields.items()}}


FLUX = {"url": "https://github.com/example/fleet"}
ARGO = {"repo": "https://github.com/example/fleet"}

# (rule, patch onto BASE, path, a fragment of the message)
RULES: list[tuple[str, dict[str, Any], str, str]] = [
    # names
    ("cluster name is a DNS label", {"cluster-name": "my cluster"}, "cluster-name", "DNS-1123"),
    ("cluster name is lowercase", {"cluster-name": "Edge"}, "cluster-name", "DNS-1123 label"),
    ("cluster name has no slash", {"cluster-name": "a/b"}, "cluster-name", "DNS-1123 label"),
    ("cluster name is not empty", {"cluster-name": ""}, "cluster-name", "must not be empty"),
    ("cluster name fits a label", {"cluster-name": "a" * 64}, "cluster-name", "longer than 63"),
    ("node name is a subdomain", {"node-name": "node_1"}, "node-name", "DNS-1123 subdomain"),
    ("cluster domain is a subdomain", net(cluster_domain="Local"), "network.cluster-domain", ""),
    ("node ip is unicast", {"node-ip": "0.0.0.0"}, "node-ip", "not a node's unicast"),
    # CIDRs parse, do not overlap, have room
    ("cidr parses", net(cluster_cidr="10.42.0.0/33"), "network.cluster-cidr", "not a CIDR"),
    ("cidr has no host bits", net(service_cidr="10.43.0.1/16"), "network.service-cidr", "host"),
    ("v4 cidr is v4", net(cluster_cidr="fd00::/56"), "network.cluster-cidr", "not an IPv4 CIDR"),
    (
        "cidrs do not overlap",
        net(cluster_cidr="10.0.0.0/8", service_cidr="10.43.0.0/16", cluster_dns="10.43.0.10"),
        "network.service-cidr",
        "overlaps cluster-cidr 10.0.0.0/8",
    ),
    ("pod range holds a node", net(cluster_cidr="10.42.0.0/25"), "network.cluster-cidr", "/24"),
    (
        "service range within the apiserver's limit",
        net(service_cidr="10.128.0.0/11", cluster_dns="10.128.0.10"),
        "network.service-cidr",
        "at most /12",
    ),
    ("node ip outside the pod range", {"node-ip": "10.42.1.1"}, "node-ip", "inside cluster-cidr"),
    ("node ip outside services", {"node-ip": "10.43.1.1"}, "node-ip", "inside service-cidr"),
    # cluster DNS
    ("dns inside services", net(cluster_dns="10.42.0.10"), "network.cluster-dns", "not inside"),
    ("dns not first address", net(cluster_dns="10.43.0.1"), "network.cluster-dns", "kubernetes"),
    ("dns not network address", net(cluster_dns="10.43.0.0"), "network.cluster-dns", "network"),
    ("dns is v4", net(cluster_dns="fd00::10"), "network.cluster-dns", "not an IPv4 address"),
    # NodePort range
    (
        "port range start below end",
        net(service_node_port_range="32767-30000"),
        "network.service-node-port-range",
        "must be below end",
    ),
    (
        "port range start at least 1024",
        net(service_node_port_range="80-32767"),
        "network.service-node-port-range",
        "at least 1024",
    ),
    (
        "port range end at most 65535",
        net(service_node_port_range="30000-70000"),
        "network.service-node-port-range",
        "at most 65535",
    ),
    (
        "port range avoids k3s's own ports",
        net(service_node_port_range="6000-7000"),
        "network.service-node-port-range",
        "contains port 6443",
    ),
    # CNI
    (
        "backend only with flannel",
        net(cni="cilium", flannel_backend="vxlan"),
        "network.flannel-backend",
        "only with cni flannel, not cilium",
    ),
    (
        "backend none is cni none",
        net(flannel_backend="none"),
        "network.flannel-backend",
        "set cni: none",
    ),
    (
        "delegated policy needs calico or cilium",
        net(network_policy="delegated"),
        "network.network-policy",
        "needs cni calico or cilium",
    ),
    (
        "k3s's policy controller not beside calico's",
        net(cni="calico", network_policy="enabled"),
        "network.network-policy",
        "use delegated",
    ),
    (
        "disabled kube-proxy needs cilium or none",
        net(kube_proxy={"disabled": True}),
        "network.kube-proxy.disabled",
        "not flannel",
    ),
    (
        "no proxy mode without kube-proxy",
        net(cni="cilium", kube_proxy={"disabled": True, "mode": "ipvs"}),
        "network.kube-proxy.mode",
        "no effect",
    ),
    ("mtu only with calico or cilium", net(mtu=1400), "network.mtu", "follows the node"),
    ("mtu in range", net(cni="calico", mtu=600), "network.mtu", "outside 1280-9216"),
    # dual stack
    (
        "dual-stack needs both v6 cidrs",
        net(dual_stack={"enabled": True, "cluster-cidr-v6": "fd00:42::/56"}),
        "network.dual-stack.service-cidr-v6",
        "required when dual-stack is enabled",
    ),
    (
        "v6 cidrs only with dual-stack",
        net(dual_stack={"cluster-cidr-v6": "fd00:42::/56"}),
        "network.dual-stack.cluster-cidr-v6",
        "not enabled",
    ),
    (
        "v6 cidrs do not overlap",
        net(
            dual_stack={
                "enabled": True,
                "cluster-cidr-v6": "fd00:42::/56",
                "service-cidr-v6": "fd00:42::/112",
            }
        ),
        "network.dual-stack.service-cidr-v6",
        "overlaps cluster-cidr-v6",
    ),
    (
        "v6 service range within the apiserver's limit",
        net(
            dual_stack={
                "enabled": True,
                "cluster-cidr-v6": "fd00:42::/56",
                "service-cidr-v6": "fd00:43::/104",
            }
        ),
        "network.dual-stack.service-cidr-v6",
        "at most /108",
    ),
    (
        "v6 pod range sized for /64 node subnets",
        net(
            dual_stack={
                "enabled": True,
                "cluster-cidr-v6": "fd00:42::/40",
                "service-cidr-v6": "fd00:43::/112",
            }
        ),
        "network.dual-stack.cluster-cidr-v6",
        "/48 to /64",
    ),
    (
        "v6 cidr is v6",
        net(dual_stack={"enabled": True, "cluster-cidr-v6": "10.1.0.0/16"}),
        "network.dual-stack.cluster-cidr-v6",
        "not an IPv6 CIDR",
    ),
    # listeners and certificate names
    (
        "tls sans are names or ips",
        net(tls_sans=["ok.example", "bad name"]),
        "network.tls-sans[1]",
        "",
    ),
    (
        "advertise address is specific",
        net(advertise_address="0.0.0.0"),
        "network.advertise-address",
        "specific address",
    ),
    (
        "advertise address outside the cluster ranges",
        net(advertise_address="10.43.0.7"),
        "network.advertise-address",
        "inside service-cidr",
    ),
    ("bind address is an ip", net(bind_address="localhost"), "network.bind-address", "not an IP"),
    # components
    (
        "traefik is the ingress field's",
        net(disable=["traefik"]),
        "network.disable[0]",
        "network.ingress",
    ),
    (
        "kube-proxy is the kube-proxy field's",
        net(disable=["local-storage", "kube-proxy"]),
        "network.disable[1]",
        "network.kube-proxy.disabled",
    ),
    ("no repeats", net(disable=["runtimes", "runtimes"]), "network.disable[1]", "repeated"),
    (
        "the helm controller stays for rendered charts",
        net(ingress="nginx", disable=["helm-controller"]),
        "network.disable[0]",
        "keep it",
    ),
    # bootstrap
    (
        "one GitOps engine",
        {"bootstrap": {"flux": FLUX, "argocd": ARGO}},
        "bootstrap.argocd",
        "choose one",
    ),
    (
        "flux url is a git url",
        {"bootstrap": {"flux": {"url": "github.com/x"}}},
        "bootstrap.flux.url",
        "",
    ),
    (
        "flux url needed",
        {"bootstrap": {"flux": {"branch": "main"}}},
        "bootstrap.flux.url",
        "required field missing",
    ),
    (
        "branch is a ref",
        {"bootstrap": {"flux": FLUX | {"branch": "feature..x"}}},
        "bootstrap.flux.branch",
        "not a git ref",
    ),
    (
        "path is relative",
        {"bootstrap": {"flux": FLUX | {"path": "/clusters"}}},
        "bootstrap.flux.path",
        "relative",
    ),
    (
        "path stays in the repository",
        {"bootstrap": {"argocd": ARGO | {"path": "apps/../../x"}}},
        "bootstrap.argocd.path",
        "'..'",
    ),
    (
        "interval is a duration",
        {"bootstrap": {"flux": FLUX | {"interval": "5 minutes"}}},
        "bootstrap.flux.interval",
        "not a duration",
    ),
    (
        "ssh key with an ssh url",
        {"bootstrap": {"flux": FLUX | {"auth": {"kind": "ssh-key"}}}},
        "bootstrap.flux.auth.kind",
        "ssh-key needs an ssh URL",
    ),
    (
        "token only over https",
        {"bootstrap": {"argocd": {"repo": "http://git.lan/x", "auth": {"kind": "https-token"}}}},
        "bootstrap.argocd.auth.kind",
        "needs an https URL, not http",
    ),
    (
        "auth secret name",
        {"bootstrap": {"flux": FLUX | {"auth": {"kind": "https-token", "secret-name": "A_b"}}}},
        "bootstrap.flux.auth.secret-name",
        "DNS-1123",
    ),
    (
        "revision is a ref",
        {"bootstrap": {"argocd": ARGO | {"revision": "-x"}}},
        "bootstrap.argocd.revision",
        "not a git ref",
    ),
]


@pytest.mark.parametrize(
    ("patch", "path", "fragment"),
    [pytest.param(patch, path, fragment, id=rule) for rule, patch, path, fragment in RULES],
)
def test_rule(patch: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(InvalidConfigError) as caught:
        parse_cluster_config(merged(BASE, patch))
    found = [(p.path, p.message) for p in caught.value.problems]
    assert any(p == path and fragment in m for p, m in found), found


def test_the_base_document_is_valid() -> None:
    parse_cluster_config(BASE)


@pytest.mark.parametrize(
    "patch",
    [
        net(cni="cilium", kube_proxy={"disabled": True}, network_policy="delegated", mtu=9000),
        net(cni="none", kube_proxy={"disabled": True}, network_policy="enabled"),
        net(flannel_backend="host-gw", kube_proxy={"mode": "ipvs"}, network_policy="disabled"),
        net(service_cidr="10.96.0.0/12", cluster_dns="10.96.0.10"),
        net(service_node_port_range="1024-2000"),
        {
            "bootstrap": {
                "flux": {"url": "git@github.com:example/fleet.git", "auth": {"kind": "ssh-key"}}
            }
        },
        {"bootstrap": {"argocd": {"repo": "http://git.lan/fleet", "revision": "v1.2.3"}}},
    ],
)
def test_near_misses_are_valid(patch: dict[str, Any]) -> None:
    parse_cluster_config(merged(BASE, patch))


def test_one_pass_reports_every_problem() -> None:
    document = merged(
        BASE,
        {
            "cluster-name": "Edge",
            "node-ip": "10.42.0.9",
            "network": {"cluster-dns": "10.43.0.1", "mtu": 1400, "disable": ["coredns"]},
            "bootstrap": {"flux": {"url": "ftp://x", "interval": "0s"}},
        },
    )
    with pytest.raises(InvalidConfigError) as caught:
        parse_cluster_config(document)
    assert sorted(p.path for p in caught.value.problems) == [
        "bootstrap.flux.interval",
        "bootstrap.flux.url",
        "cluster-name",
        "network.cluster-dns",
        "network.disable[0]",
        "network.mtu",
        "node-ip",
    ]
    assert str(caught.value).startswith("cluster-name: 'Edge' is not a DNS-1123 label")
