"""A fully populated, valid ClusterConfig: what ``engenho cluster-config example`` prints.

Every field is set to something other than its default where the rules allow it; the few that
exclude each other (flannel-backend with cilium, argocd with flux) stay null.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network

from engenho.config.cluster_schema import (
    Bootstrap,
    ClusterConfig,
    Cni,
    Component,
    Dns,
    DualStack,
    FluxBootstrap,
    GitAuth,
    GitAuthKind,
    Ingress,
    KubeProxy,
    LoadBalancer,
    Network,
    NetworkPolicy,
)
from engenho.config.networks import PortRange

__all__ = ["example_cluster_config"]


def example_cluster_config() -> ClusterConfig:
    return ClusterConfig(
        cluster_name="homelab",
        node_ip=IPv4Address("192.168.10.20"),
        node_name="homelab-server-1",
        network=Network(
            cni=Cni.CILIUM,
            cluster_cidr=IPv4Network("10.52.0.0/16"),
            service_cidr=IPv4Network("10.53.0.0/16"),
            cluster_dns=IPv4Address("10.53.0.10"),
            cluster_domain="homelab.internal",
            service_node_port_range=PortRange(30000, 32000),
            mtu=1450,
            kube_proxy=KubeProxy(disabled=True),
            network_policy=NetworkPolicy.DELEGATED,
            ingress=Ingress.NGINX,
            load_balancer=LoadBalancer.METALLB,
            dns=Dns.COREDNS,
            dual_stack=DualStack(
                enabled=True,
                cluster_cidr_v6=IPv6Network("fd00:52::/56"),
                service_cidr_v6=IPv6Network("fd00:53::/112"),
            ),
            tls_sans=("k8s.homelab.example", "192.168.10.5"),
            advertise_address=IPv4Address("192.168.10.20"),
            bind_address=IPv4Address("0.0.0.0"),  # noqa: S104 - the example listens everywhere
            disable=(Component.METRICS_SERVER, Component.LOCAL_STORAGE),
        ),
        bootstrap=Bootstrap(
            flux=FluxBootstrap(
                url="ssh://git@github.com/example/fleet.git",
                branch="main",
                path="./clusters/homelab",
                interval="5m",
                auth=GitAuth(
                    kind=GitAuthKind.SSH_KEY,
                    secret_name="fleet-deploy-key",  # noqa: S106 - a Secret's name, not its value
                ),
            )
        ),
    )
