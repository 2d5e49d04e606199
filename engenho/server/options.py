"""What ``engenho server`` is told: where its data lives, where it listens, what it runs."""

from __future__ import annotations

from pathlib import Path

from attrs import frozen

from engenho.paths import DataDir

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
    runtime: str = "fake"
    database_url: str | None = None
    bookmark_interval: float = 60.0

    @property
    def data(self) -> DataDir:
        return DataDir(self.data_dir)

    @property
    def projections_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data.projections_db}"
