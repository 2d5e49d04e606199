"""What ``engenho server`` is told: where its data lives, where it listens, what it runs."""

from __future__ import annotations

from pathlib import Path

from attrs import Factory, frozen

from engenho.config import EngenhoConfig, prescribed_defaults
from engenho.paths import DataDir
from engenho.registry import NetworkSettings

__all__ = ["RUNTIMES", "ServerOptions", "parse_listen"]

RUNTIMES = ("fake", "oci", "wasm", "none")


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:6443`` for IPv6); port 0 picks a free port."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen must be HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


@frozen
class ServerOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 6443
    node_name: str = "engenho"
    runtime: str = "oci"
    database_url: str | None = None
    bookmark_interval: float = 60.0
    config: EngenhoConfig = Factory(prescribed_defaults)
    """The rest of the effective configuration: controllers, networking, scheduler."""

    @classmethod
    def from_config(cls, config: EngenhoConfig) -> ServerOptions:
        return cls(
            data_dir=config.server.data_dir,
            host=config.server.listen.host,
            port=config.server.listen.port,
            node_name=config.node_agent.node_name,
            runtime=config.node_agent.runtime.value,
            database_url=config.server.database_url,
            config=config,
        )

    @property
    def network(self) -> NetworkSettings:
        net = self.config.networking
        return NetworkSettings(
            service_cidr=str(net.service_cidr),
            node_port_range=(net.node_port_range.start, net.node_port_range.end),
            cluster_cidr=str(net.cluster_cidr),
        )

    @property
    def data(self) -> DataDir:
        return DataDir(self.data_dir)

    @property
    def projections_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data.projections_db}"
