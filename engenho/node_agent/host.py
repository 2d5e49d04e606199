"""What the node agent reads from its host: resources, identity and addresses.

Upstream's kubelet gets these from cAdvisor and the OS; here they come from ``/proc``,
``/etc`` and ``statvfs``, each with a fallback so that an unusual host (a container, a
sandbox) still registers. Simulated nodes get made-up identities derived from their names.
"""

from __future__ import annotations

import hashlib
import os
import platform
import socket
from pathlib import Path

from attrs import frozen

__all__ = ["HostFacts", "go_arch", "internal_ip", "read_host_facts", "simulated_facts"]

_ARCHITECTURES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "i686": "386",
    "i386": "386",
}


def go_arch(machine: str | None = None) -> str:
    """``GOARCH`` for ``uname -m`` (what ``kubernetes.io/arch`` holds)."""
    machine = machine or platform.machine()
    return _ARCHITECTURES.get(machine.lower(), machine.lower())


@frozen
class HostFacts:
    cpus: int
    memory_bytes: int
    memory_available_bytes: int | None
    storage_bytes: int
    storage_available_bytes: int | None
    machine_id: str
    system_uuid: str
    boot_id: str
    kernel_version: str
    os_image: str
    architecture: str
    internal_ip: str
    hostname: str


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _meminfo() -> tuple[int, int | None]:
    total, available = 0, None
    for line in _read("/proc/meminfo").splitlines():
        name, _, rest = line.partition(":")
        fields = rest.split()
        if not fields or not fields[0].isdigit():
            continue
        value = int(fields[0]) * 1024
        if name == "MemTotal":
            total = value
        elif name == "MemAvailable":
            available = value
    if not total:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return total, available


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip().strip('"')
    return f"{platform.system()} {platform.release()}"


def internal_ip() -> str:
    """The address the host would use to reach other machines (no packet is sent)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))
        address = str(probe.getsockname()[0])
    except OSError:
        address = "127.0.0.1"
    finally:
        probe.close()
    return address


def read_host_facts(data_dir: Path, node_ip: str | None = None) -> HostFacts:
    """The host's facts; the storage is that of the filesystem holding ``data_dir``."""
    memory, available = _meminfo()
    data_dir.mkdir(parents=True, exist_ok=True)
    stats = os.statvfs(data_dir)
    machine_id = _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id")
    if not machine_id:
        machine_id = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:32]
    return HostFacts(
        cpus=len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count() or 1,
        memory_bytes=memory,
        memory_available_bytes=available,
        storage_bytes=stats.f_blocks * stats.f_frsize,
        storage_available_bytes=stats.f_bavail * stats.f_frsize,
        machine_id=machine_id,
        system_uuid=_read("/sys/class/dmi/id/product_uuid") or machine_id,
        boot_id=_read("/proc/sys/kernel/random/boot_id"),
        kernel_version=platform.release(),
        os_image=_os_image(),
        architecture=go_arch(),
        internal_ip=node_ip or internal_ip(),
        hostname=socket.gethostname(),
    )


def simulated_facts(base: HostFacts, node_name: str) -> HostFacts:
    """A simulated node's facts: the host's kind of machine, its own identity."""
    digest = hashlib.sha256(node_name.encode()).hexdigest()
    return HostFacts(
        cpus=base.cpus,
        memory_bytes=base.memory_bytes,
        memory_available_bytes=None,
        storage_bytes=base.storage_bytes,
        storage_available_bytes=None,
        machine_id=digest[:32],
        system_uuid=f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}",
        boot_id=f"{digest[32:40]}-{digest[40:44]}-{digest[44:48]}-{digest[48:52]}-{digest[52:64]}",
        kernel_version=base.kernel_version,
        os_image=base.os_image,
        architecture=base.architecture,
        internal_ip=base.internal_ip,
        hostname=node_name,
    )
