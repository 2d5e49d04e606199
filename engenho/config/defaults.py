"""The built-in tier: prescribed defaults that make a working single node with no
configuration, and where the configuration file is looked for."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

from engenho.config.controllers import CONTROLLERS, ControllerSpec
from engenho.config.engenho_schema import (
    ControllerSettings,
    EngenhoConfig,
    NodeAgentSection,
    ServerSection,
)
from engenho.config.names import dns_subdomain_problem

__all__ = [
    "FALLBACK_NODE_NAME",
    "SYSTEM_CONFIG_FILE",
    "default_config_home",
    "default_data_dir",
    "default_node_name",
    "prescribed_defaults",
]

SYSTEM_CONFIG_FILE = Path("/etc/engenho/engenho.yaml")
FALLBACK_NODE_NAME = "engenho"


def _home(env: Mapping[str, str]) -> Path:
    return Path(env["HOME"]) if env.get("HOME") else Path.home()


def default_data_dir(env: Mapping[str, str]) -> Path:
    """``$XDG_DATA_HOME/engenho``, which is ``~/.local/share/engenho`` by default (the same
    rule as engenho.paths)."""
    base = env.get("XDG_DATA_HOME") or str(_home(env) / ".local" / "share")
    return Path(base) / "engenho"


def default_config_home(env: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME``, which is ``~/.config`` by default (XDG Base Directory spec)."""
    return Path(env.get("XDG_CONFIG_HOME") or str(_home(env) / ".config"))


def default_node_name(hostname: str) -> str:
    """The host name in lowercase, as the kubelet registers it; ``engenho`` when the host name
    is not a valid node name."""
    name = hostname.strip().rstrip(".").lower()
    return name if dns_subdomain_problem(name) is None else FALLBACK_NODE_NAME


def prescribed_defaults(
    env: Mapping[str, str] | None = None,
    hostname: str | None = None,
    controllers: Sequence[ControllerSpec] = CONTROLLERS,
) -> EngenhoConfig:
    env = os.environ if env is None else env
    hostname = socket.gethostname() if hostname is None else hostname
    return EngenhoConfig(
        server=ServerSection(data_dir=default_data_dir(env)),
        node_agent=NodeAgentSection(node_name=default_node_name(hostname)),
        controllers={
            spec.name: ControllerSettings(
                enabled=spec.enabled,
                workers=spec.workers,
                resync_interval_seconds=spec.resync_interval_seconds,
            )
            for spec in controllers
        },
    )
