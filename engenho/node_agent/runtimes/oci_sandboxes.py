"""Pod sandboxes of the OCI runtime: the namespaces a pod's containers share, and its files.

A sandbox holds persistent IPC and UTS namespaces (and a network namespace on the node's
bridge, for a pod network) as nsfs files bind-mounted under ``sandboxes/<id>/ns``: ``unshare
--ipc=FILE --uts=FILE [--net=FILE] hostname NAME`` creates them with no process to keep
alive, and every container of the pod joins them by path in its ``config.json``. (The PID
namespace is per container, as upstream's default; a persistent PID namespace would need a
process to hold it.) It also writes the pod's ``hosts``, ``resolv.conf`` and ``hostname``,
which every container binds at ``/etc``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from engenho.node_agent.runtime import NetworkMode
from engenho.node_agent.runtimes import oci_network
from engenho.node_agent.runtimes.oci_host import read_text, run_command, unmount
from engenho.node_agent.runtimes.stored_records import SandboxRecord

__all__ = ["HOSTS_HEADER", "make_namespaces", "release_namespaces", "write_sandbox_files"]

log = logging.getLogger(__name__)

HOSTS_HEADER = """# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
"""
_KINDS = ("ipc", "uts", "net")


async def make_namespaces(
    sandbox: SandboxRecord,
    *,
    pod_network: bool,
    network_failure: str | None,
    bridge: oci_network.Bridge,
) -> str | None:
    """Create the sandbox's namespaces and, if it asks for one, its pod network. Returns
    the reason pod networks do not work on this host when it has just found out (the
    runtime stops trying), else None."""
    config = sandbox.config
    wants_network = config.network is not None and pod_network
    if config.network is not None and not pod_network:
        sandbox.network_message = "pod networks are turned off; the pod uses the host network"
    elif config.network is not None and network_failure is not None:
        sandbox.network_message = (
            f"pod networks are unavailable ({network_failure}); the pod uses the host network"
        )
        wants_network = False
    kinds = ["ipc", "uts", *(["net"] if wants_network else [])]
    for kind in kinds:
        (sandbox.directory / "ns" / kind).touch()
    argv = [f"--{kind}={sandbox.directory / 'ns' / kind}" for kind in kinds]
    code, _, err = await run_command(["unshare", *argv, "hostname", config.hostname])
    if code != 0:
        # Without persistent namespaces each container gets its own IPC and UTS.
        log.warning("sandbox %s: no shared namespaces: %s", sandbox.id, err)
        for kind in kinds:
            await unmount(sandbox.directory / "ns" / kind)
        if wants_network:
            sandbox.network_message = (
                f"could not create the pod's network namespace ({err}); the pod uses the host "
                "network"
            )
        return None
    sandbox.namespaces = {
        "ipc": str(sandbox.directory / "ns" / "ipc"),
        "uts": str(sandbox.directory / "ns" / "uts"),
    }
    if not wants_network or config.network is None:
        return None
    netns = sandbox.directory / "ns" / "net"
    try:
        await bridge.attach(str(netns), sandbox.id, config.network.cidr, config.network.ip)
    except oci_network.NetworkSetupError as exc:
        sandbox.network_message = (
            f"the pod network could not be set up ({exc}); the pod uses the host network"
        )
        await oci_network.detach_pod(sandbox.id)
        await unmount(netns)
        return str(exc)
    sandbox.namespaces["network"] = str(netns)
    sandbox.network_mode = NetworkMode.POD
    sandbox.ip = str(config.network.ip)
    return None


async def write_sandbox_files(sandbox: SandboxRecord) -> None:
    """``hosts`` (the kubelet's managed file, or the host's for host-network pods, plus
    ``hostAliases``), ``resolv.conf`` (the pod's DNS config, or the host's) and ``hostname``."""
    config = sandbox.config
    if sandbox.network_mode is NetworkMode.POD and sandbox.ip is not None:
        hosts = HOSTS_HEADER + f"{sandbox.ip}\t{config.hostname}\n"
    else:
        hosts = await asyncio.to_thread(read_text, Path("/etc/hosts"), HOSTS_HEADER)
    if config.host_aliases:
        hosts += "\n# Entries added by HostAliases.\n"
        hosts += "".join(f"{ip}\t{' '.join(names)}\n" for ip, names in config.host_aliases)
    if config.dns is None:
        resolv = await asyncio.to_thread(read_text, Path("/etc/resolv.conf"), "")
    else:
        lines = [f"nameserver {server}" for server in config.dns.nameservers]
        if config.dns.searches:
            lines.append("search " + " ".join(config.dns.searches))
        if config.dns.options:
            lines.append("options " + " ".join(config.dns.options))
        resolv = "\n".join(lines) + "\n"
    (sandbox.directory / "hosts").write_text(hosts)
    (sandbox.directory / "resolv.conf").write_text(resolv)
    (sandbox.directory / "hostname").write_text(config.hostname + "\n")


async def release_namespaces(sandbox: SandboxRecord) -> None:
    """Undo a sandbox's namespaces (its containers must be gone): the veth pair and the
    namespace mounts, so that its directory can be removed."""
    if "network" in sandbox.namespaces or sandbox.network_mode is NetworkMode.POD:
        await oci_network.detach_pod(sandbox.id)
    for kind in _KINDS:
        await unmount(sandbox.directory / "ns" / kind)
