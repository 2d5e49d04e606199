"""The engenho renderer: the same ClusterConfig as engenho's own runtime configuration.

It writes ``engenho.yaml``, a file-tier document for ``engenho server --config`` holding what
the two share (cluster name, node name, service and pod ranges, cluster DNS and domain,
NodePort range, listen address, certificate names). Settings engenho has no equivalent for
(a CNI, an ingress, GitOps, ...) are listed in the rendering's notes, not dropped silently.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from engenho.config.cluster_loading import cluster_config_document
from engenho.config.cluster_schema import ClusterConfig
from engenho.config.converting import make_converter, snake_case
from engenho.config.engenho_schema import ClusterSection, NetworkingSection
from engenho.config.networks import ListenAddress
from engenho.config.rendering import ClusterRenderer, RenderedFile, Rendering
from engenho.config.yamlio import dump_yaml

__all__ = ["ENGENHO_FILE", "EngenhoRenderer"]

ENGENHO_FILE = PurePosixPath("engenho.yaml")
API_PORT = 6443

_CARRIED = {
    "advertise-address",
    "bind-address",
    "cluster-cidr",
    "cluster-dns",
    "cluster-domain",
    "service-cidr",
    "service-node-port-range",
    "tls-sans",
}
"""``network`` keys the engenho document carries."""

_CONVERTER = make_converter(snake_case)


class EngenhoRenderer(ClusterRenderer):
    name = "engenho"

    def document(self, config: ClusterConfig) -> dict[str, Any]:
        network = config.network
        networking = NetworkingSection(
            service_cidr=network.service_cidr,
            cluster_cidr=network.cluster_cidr,
            cluster_dns=network.cluster_dns,
            cluster_domain=network.cluster_domain,
            node_port_range=network.service_node_port_range,
        )
        sans = {*network.tls_sans, str(config.node_ip)}
        if network.advertise_address is not None:
            sans.add(str(network.advertise_address))
        listen_host = str(network.bind_address) if network.bind_address else "0.0.0.0"  # noqa: S104
        document: dict[str, Any] = {
            "cluster": _CONVERTER.unstructure(ClusterSection(name=config.cluster_name)),
            "networking": _CONVERTER.unstructure(networking),
            "server": {
                "listen": str(ListenAddress(listen_host, API_PORT)),
                "tls": {"sans": sorted(sans)},
            },
        }
        if config.node_name is not None:
            document["node_agent"] = {"node_name": config.node_name}
        return document

    def notes(self, config: ClusterConfig) -> tuple[str, ...]:
        ours = cluster_config_document(config)
        stock = cluster_config_document(
            ClusterConfig(cluster_name=config.cluster_name, node_ip=config.node_ip)
        )
        notes = [
            f"network.{key}{_shown(ours['network'][key])} has no engenho equivalent; not rendered"
            for key in sorted(ours["network"])
            if key not in _CARRIED and ours["network"][key] != stock["network"][key]
        ]
        notes += [
            f"bootstrap.{key} has no engenho equivalent; not rendered"
            for key, value in sorted(ours["bootstrap"].items())
            if value is not None
        ]
        return tuple(notes)

    def render(self, config: ClusterConfig) -> Rendering:
        header = (
            f"# engenho runtime configuration rendered from ClusterConfig {config.cluster_name}.\n"
        )
        content = header + dump_yaml(self.document(config))
        return Rendering(
            renderer=self.name,
            files=(RenderedFile(ENGENHO_FILE, content.encode()),),
            notes=self.notes(config),
        )


def _shown(value: Any) -> str:
    return "" if isinstance(value, dict | list) else f" ({value})"
