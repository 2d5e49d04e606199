"""The OCI runtime-spec ``config.json`` for a container, and the user it runs as.

Pure functions of their inputs (the rootfs is only read, for ``/etc/passwd`` and
``/etc/group``), so the bundle a container gets can be tested without crun. Defaults follow
containerd's CRI plugin, because that is what pods expect: the default capability set, the
masked and read-only ``/proc`` paths, ``/dev`` as tmpfs with ``/dev/pts``, ``/dev/shm`` and
``/dev/mqueue``, ``/sys`` read-only, no seccomp profile (Kubernetes' default ``Unconfined``),
``noNewPrivileges`` false (``allowPrivilegeEscalation`` defaults to true).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attrs import frozen

from engenho.node_agent.images.errors import UnpackError
from engenho.node_agent.images.unpacking import resolve_in_root
from engenho.node_agent.runtime import CreateContainerError, Mount, Resources

__all__ = [
    "CPU_PERIOD_US",
    "DEFAULT_CAPABILITIES",
    "BindMount",
    "ResolvedUser",
    "build_config",
    "cpu_quota",
    "cpu_shares",
    "resolve_user",
]

DEFAULT_CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
"""containerd's default set (``oci.defaultUnixCaps``)."""
CPU_PERIOD_US = 100_000
_MIN_QUOTA_US = 1_000
_MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)
_READONLY_PATHS = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)


@frozen
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()


@frozen
class BindMount:
    """A host file or directory bound into the container (volumes, /etc/hosts, ...)."""

    source: Path
    destination: str
    read_only: bool = False

    @classmethod
    def of(cls, mount: Mount) -> BindMount:
        return cls(mount.host_path, mount.container_path, mount.read_only)


def cpu_quota(limit_millis: int) -> int:
    """``cpu.max`` quota in µs per 100 ms period (upstream's ``MilliCPUToQuota``, 1 ms floor)."""
    return max(limit_millis * CPU_PERIOD_US // 1000, _MIN_QUOTA_US)


def cpu_shares(request_millis: int) -> int:
    """cgroup v1 ``cpu.shares`` (upstream's ``MilliCPUToShares``: at least 2)."""
    return max(request_millis * 1024 // 1000, 2)


def build_config(
    *,
    argv: Sequence[str],
    env: Sequence[str],
    cwd: str,
    user: ResolvedUser,
    hostname: str | None,
    rootfs: Path,
    tty: bool,
    mounts: Sequence[BindMount],
    namespaces: Mapping[str, str | None],
    resources: Resources | None,
    cgroups_path: str | None,
    cgroup_mount: bool,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``config.json`` document.

    ``namespaces`` maps a namespace type (``pid``, ``mount``, ``ipc``, ``uts``, ``network``)
    to None (a new one) or the path of one to join; a type left out is the host's.
    ``resources`` is None when limits cannot be enforced (then neither cgroups nor devices
    rules are written); ``cgroup_mount`` adds ``/sys/fs/cgroup`` (only when crun manages
    cgroups, which mounting them needs).
    """
    config_mounts: list[dict[str, Any]] = [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",  # noqa: S108 - a path inside the container
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
    ]
    if cgroup_mount:
        config_mounts.append(
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
            }
        )
    config_mounts.extend(
        {
            "destination": bind.destination,
            "type": "bind",
            "source": str(bind.source),
            "options": ["rbind", "rprivate", "ro" if bind.read_only else "rw"],
        }
        for bind in mounts
    )
    linux: dict[str, Any] = {
        "namespaces": [
            {"type": kind} if path is None else {"type": kind, "path": path}
            for kind, path in namespaces.items()
        ],
        "maskedPaths": list(_MASKED_PATHS),
        "readonlyPaths": list(_READONLY_PATHS),
    }
    if resources is not None:
        linux["resources"] = _resources(resources)
    if cgroups_path is not None:
        linux["cgroupsPath"] = cgroups_path
    process: dict[str, Any] = {
        "terminal": tty,
        "user": {
            "uid": user.uid,
            "gid": user.gid,
            **({"additionalGids": list(user.additional_gids)} if user.additional_gids else {}),
        },
        "args": list(argv),
        "env": list(env),
        "cwd": cwd or "/",
        "capabilities": {
            "bounding": list(DEFAULT_CAPABILITIES),
            "effective": list(DEFAULT_CAPABILITIES),
            "permitted": list(DEFAULT_CAPABILITIES),
        },
        "noNewPrivileges": False,
    }
    config: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": str(rootfs), "readonly": False},
        "mounts": config_mounts,
        "linux": linux,
    }
    if hostname is not None:
        config["hostname"] = hostname
    if annotations:
        config["annotations"] = dict(annotations)
    return config


def _resources(resources: Resources) -> dict[str, Any]:
    out: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if resources.memory_limit_bytes is not None:
        out["memory"] = {"limit": resources.memory_limit_bytes}
    cpu: dict[str, Any] = {}
    if resources.cpu_limit_millis is not None:
        cpu["quota"] = cpu_quota(resources.cpu_limit_millis)
        cpu["period"] = CPU_PERIOD_US
    request = resources.cpu_request_millis
    if request is None:
        request = resources.cpu_limit_millis
    if request is not None:
        cpu["shares"] = cpu_shares(request)
    if cpu:
        out["cpu"] = cpu
    return out


def resolve_user(
    rootfs: Path,
    image_user: str,
    *,
    run_as_user: int | None = None,
    run_as_group: int | None = None,
    supplemental_groups: Sequence[int] = (),
) -> ResolvedUser:
    """The uid, gid and extra groups a container runs as (containerd's ``WithUser`` and
    ``WithAdditionalGIDs``): ``runAsUser``/``runAsGroup`` win over the image's ``User``
    (``name``, ``uid``, ``name:group``, ``uid:gid``); names are looked up in the image's
    ``/etc/passwd`` and ``/etc/group``; an unknown name is a CreateContainerError."""
    passwd = _read_table(rootfs, "/etc/passwd")
    groups = _read_table(rootfs, "/etc/group")
    user_part, _, group_part = image_user.partition(":")
    username: str | None = None
    if run_as_user is not None:
        uid = run_as_user
        entry = next((e for e in passwd if _int(e, 2) == uid), None)
        gid = _int(entry, 3) if entry is not None else 0
        username = entry[0] if entry is not None else None
        group_part = ""  # the image's group goes with the image's user
    elif not user_part:
        uid, gid, username = 0, 0, "root"
    elif user_part.isdigit():
        uid = int(user_part)
        entry = next((e for e in passwd if _int(e, 2) == uid), None)
        gid = _int(entry, 3) if entry is not None else 0
        username = entry[0] if entry is not None else None
    else:
        entry = next((e for e in passwd if e[0] == user_part), None)
        if entry is None:
            raise CreateContainerError(
                f"unable to find user {user_part}: no matching entries in passwd file"
            )
        uid, gid, username = _int(entry, 2), _int(entry, 3), user_part
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            group = next((g for g in groups if g[0] == group_part), None)
            if group is None:
                raise CreateContainerError(
                    f"unable to find group {group_part}: no matching entries in group file"
                )
            gid = _int(group, 2)
    if run_as_group is not None:
        gid = run_as_group
    extra: list[int] = []
    if username is not None:
        for group in groups:
            members = group[3].split(",") if len(group) > 3 and group[3] else []
            if username in members:
                extra.append(_int(group, 2))
    extra.extend(supplemental_groups)
    additional = tuple(dict.fromkeys(g for g in extra if g != gid))
    return ResolvedUser(uid, gid, additional)


def _read_table(rootfs: Path, path: str) -> list[list[str]]:
    try:
        text = resolve_in_root(rootfs, path).read_text(errors="replace")
    except (OSError, UnpackError):
        return []
    return [
        line.split(":")
        for line in text.splitlines()
        if line and not line.startswith("#") and line.count(":") >= 2
    ]


def _int(entry: Sequence[str] | None, index: int) -> int:
    if entry is None or len(entry) <= index:
        return 0
    try:
        return int(entry[index])
    except ValueError:
        return 0
