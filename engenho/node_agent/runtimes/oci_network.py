"""Pod networks for the OCI runtime: a bridge on the node, a veth pair per pod.

The bridge ``engenho0`` holds the first host address of the node's ``podCIDR`` (the pods'
gateway); each pod's network namespace gets ``eth0`` with its IP and a default route through
the bridge, and the host end of the pair joins the bridge. Pods on the node reach each other
and the node reaches them (probes, ``kubectl port-forward``). No NAT or routes to other nodes
are set up (that is a CNI's job). Everything goes through ``ip`` and ``nsenter``
(iproute2, util-linux) and needs CAP_NET_ADMIN; a failure is reported and the sandbox falls
back to the host network. A pod's pair takes two ``ip -batch`` processes (the host's side,
then the pod's); the bridge is checked once per runtime, not per pod.
"""

from __future__ import annotations

import asyncio
import os
from ipaddress import IPv4Address, IPv4Network

from engenho.node_agent.runtimes.oci_host import run_command

__all__ = [
    "BRIDGE",
    "Bridge",
    "NetworkSetupError",
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
    return await _run(["ip", *argv], netns=netns, check=check)


async def _ip_batch(commands: list[str], *, netns: str | None = None) -> None:
    """Several ``ip`` commands in one process (``ip -batch``), stopping at the first that
    fails: a pod's network takes two processes instead of a dozen."""
    await _run(["ip", "-batch", "-"], netns=netns, input="".join(f"{c}\n" for c in commands))


async def _run(
    command: list[str], *, netns: str | None = None, check: bool = True, input: str | None = None
) -> str:
    if netns is not None:
        command = ["nsenter", f"--net={netns}", *command]
    code, out, err = await run_command(command, input=None if input is None else input.encode())
    if code == -1:
        raise NetworkSetupError(f"{command[0]} could not be started: {err}")
    if check and code != 0:
        shown = " ".join(command) + (f" <<< {input.strip()!r}" if input else "")
        raise NetworkSetupError(f"{shown}: {err}")
    return out


class Bridge:
    """The node's bridge ``name``, made ready (created, given the gateway address of the pod
    CIDR, up) on the first attach, and again when an attach fails (it may have been removed
    behind the runtime's back), rather than checked by three commands per pod."""

    def __init__(self, name: str = BRIDGE) -> None:
        self.name = name
        self._ready_for: IPv4Network | None = None
        self._ensuring = asyncio.Lock()  # a burst of first pods checks it once, not each

    async def _ensure(self, cidr: IPv4Network, *, again: bool = False) -> None:
        async with self._ensuring:
            if again or self._ready_for != cidr:
                await self._make_ready(cidr)

    async def _make_ready(self, cidr: IPv4Network) -> None:
        self._ready_for = None
        bridge = self.name
        gateway = f"{cidr.network_address + 1}/{cidr.prefixlen}"
        links = await _ip("-o", "link", "show", "dev", bridge, check=False)
        if bridge not in links:
            await _ip("link", "add", bridge, "type", "bridge", check=False)
        addresses = await _ip("-o", "-4", "addr", "show", "dev", bridge)
        if f" {gateway} " not in addresses:
            await _ip("addr", "add", gateway, "dev", bridge, check=False)
        await _ip("link", "set", bridge, "up")
        self._ready_for = cidr

    async def attach(self, netns: str, sandbox_id: str, cidr: IPv4Network, ip: IPv4Address) -> None:
        """Give the network namespace at ``netns`` the address ``ip`` on the bridge."""
        if ip not in cidr or ip in (cidr.network_address, cidr.network_address + 1):
            raise NetworkSetupError(f"{ip} is not a pod address of {cidr}")
        await self._ensure(cidr)
        try:
            await self._attach(netns, sandbox_id, cidr, ip)
        except NetworkSetupError:
            # A pair left over from a crashed attempt, or a bridge removed since: start over.
            await self.detach(sandbox_id)
            await self._ensure(cidr, again=True)
            await self._attach(netns, sandbox_id, cidr, ip)

    async def _attach(
        self, netns: str, sandbox_id: str, cidr: IPv4Network, ip: IPv4Address
    ) -> None:
        host_end = host_interface(sandbox_id)
        gateway = cidr.network_address + 1
        # The pair is made inside the pod's namespace, the host end pushed out to ours
        # (named by pid: batch lines are split at spaces, a path could hold one).
        await _ip_batch(
            [
                f"link add eth0 type veth peer name {host_end} netns {os.getpid()}",
                f"addr add {ip}/{cidr.prefixlen} dev eth0",
                "link set lo up",
                "link set eth0 up",
                f"route add default via {gateway}",
            ],
            netns=netns,
        )
        await _ip_batch([f"link set {host_end} master {self.name}", f"link set {host_end} up"])

    async def detach(self, sandbox_id: str) -> None:
        await detach_pod(sandbox_id)


async def detach_pod(sandbox_id: str) -> None:
    """Remove the pod's veth pair (deleting the host end deletes both)."""
    await _ip("link", "del", host_interface(sandbox_id), check=False)


async def remove_bridge(bridge: str = BRIDGE) -> None:
    """Delete the bridge (tests; a node keeps its bridge)."""
    await _ip("link", "del", bridge, check=False)
