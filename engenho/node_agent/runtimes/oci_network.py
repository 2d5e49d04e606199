"""Pod networks for the OCI runtime: a bridge on the node, a veth pair per pod.

The bridge ``engenho0`` holds the first host address of the node's ``podCIDR`` (the pods'
gateway); each pod's network namespace gets ``eth0`` with its IP and a default route through
the bridge, and the host end of the pair joins the bridge. Pods on the node reach each other
and the node reaches them (probes, ``kubectl port-forward``). No NAT or routes to other nodes
are set up (that is a CNI's job). Everything goes through ``ip`` and ``nsenter``
(iproute2, util-linux) and needs CAP_NET_ADMIN; a failure is reported and the sandbox falls
back to the host network.
"""

from __future__ import annotations

import asyncio
import os
from ipaddress import IPv4Address, IPv4Network

__all__ = [
    "BRIDGE",
    "NetworkSetupError",
    "attach_pod",
    "detach_pod",
    "host_interface",
    "remove_bridge",
]

BRIDGE = "engenho0"


class NetworkSetupError(Exception):
    """A step of the pod network setup failed; the message names the command and its error."""


def host_interface(sandbox_id: str) -> str:
    """The host end of a pod's veth pair (interface names are at most 15 bytes)."""
    return f"veth{sandbox_id[:11]}"


async def _ip(*argv: str, netns: str | None = None, check: bool = True) -> str:
    command = ["ip", *argv]
    if netns is not None:
        command = ["nsenter", f"--net={netns}", *command]
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise NetworkSetupError(f"{command[0]} is not installed") from exc
    out, err = await process.communicate()
    if check and process.returncode != 0:
        raise NetworkSetupError(f"{' '.join(command)}: {err.decode(errors='replace').strip()}")
    return out.decode(errors="replace")


async def _ensure_bridge(bridge: str, cidr: IPv4Network) -> None:
    gateway = f"{cidr.network_address + 1}/{cidr.prefixlen}"
    links = await _ip("-o", "link", "show", "dev", bridge, check=False)
    if bridge not in links:
        await _ip("link", "add", bridge, "type", "bridge", check=False)
    addresses = await _ip("-o", "-4", "addr", "show", "dev", bridge)
    if f" {gateway} " not in addresses:
        await _ip("addr", "add", gateway, "dev", bridge, check=False)
    await _ip("link", "set", bridge, "up")


async def attach_pod(
    netns: str,
    sandbox_id: str,
    cidr: IPv4Network,
    ip: IPv4Address,
    *,
    bridge: str = BRIDGE,
) -> None:
    """Give the network namespace at ``netns`` the address ``ip`` on the node's bridge."""
    if ip not in cidr or ip in (cidr.network_address, cidr.network_address + 1):
        raise NetworkSetupError(f"{ip} is not a pod address of {cidr}")
    await _ensure_bridge(bridge, cidr)
    host_end = host_interface(sandbox_id)
    await _ip("link", "del", host_end, check=False)  # left over from a crashed attempt
    # Create the pair inside the pod's namespace and push the host end out to ours.
    await _ip(
        "link", "add", "eth0", "type", "veth", "peer", "name", host_end, "netns", str(os.getpid()),
        netns=netns,
    )  # fmt: skip
    await _ip("link", "set", host_end, "master", bridge)
    await _ip("link", "set", host_end, "up")
    await _ip("addr", "add", f"{ip}/{cidr.prefixlen}", "dev", "eth0", netns=netns)
    await _ip("link", "set", "lo", "up", netns=netns)
    await _ip("link", "set", "eth0", "up", netns=netns)
    await _ip("route", "add", "default", "via", str(cidr.network_address + 1), netns=netns)


async def detach_pod(sandbox_id: str) -> None:
    """Remove the pod's veth pair (deleting the host end deletes both)."""
    await _ip("link", "del", host_interface(sandbox_id), check=False)


async def remove_bridge(bridge: str = BRIDGE) -> None:
    """Delete the bridge (tests; a node keeps its bridge)."""
    await _ip("link", "del", bridge, check=False)
