"""What this host lets the OCI runtime do: crun, cgroups, overlayfs, pod networks.

Detection is by trying, not by guessing: the cgroup mode decides which attempts make sense,
and a throwaway container (a bind of the host's ``/bin/true``-bearing directories, read-only)
is run through the same monitor process every real container uses, first with cgroups
(``--cgroup-manager=cgroupfs`` and a memory limit) and, if crun refuses, without
(``--cgroup-manager=disabled``). Hybrid hosts (cgroup v1 controllers plus a v2 hierarchy
that holds a controller) make crun refuse outright ("cgroups in hybrid mode not
supported"); there the monitor hides ``/sys/fs/cgroup/unified`` in a private mount namespace,
after which crun sees a v1 host and enforces limits with the v1 controllers.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from attrs import frozen

from engenho.node_agent import spawning

log = logging.getLogger(__name__)

__all__ = [
    "CgroupLayout",
    "CgroupMode",
    "HostCapabilities",
    "cgroup_layout",
    "crun_version",
    "overlay_supported",
    "probe_bundle_config",
    "read_text",
    "run_command",
    "unmount",
]

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_CGROUP2_MAGIC_TYPE = "cgroup2"


class CgroupMode(enum.Enum):
    UNIFIED = "v2"
    LEGACY = "v1"
    HYBRID = "hybrid"
    NONE = "none"


@frozen
class CgroupLayout:
    mode: CgroupMode
    unified_controllers: tuple[str, ...] = ()
    """Controllers on the v2 hierarchy (of a hybrid host: these make crun refuse)."""

    @property
    def crun_refuses_hybrid(self) -> bool:
        return self.mode is CgroupMode.HYBRID and bool(self.unified_controllers)


@frozen
class HostCapabilities:
    crun: str
    crun_version: str
    cgroup_layout: CgroupLayout
    cgroups: bool
    """Limits are enforced (crun manages cgroups)."""
    hide_unified_cgroup: bool
    """The monitor must hide ``/sys/fs/cgroup/unified`` for crun to run at all."""
    overlay: bool
    oom_detection: bool
    notes: tuple[str, ...]

    @property
    def cgroup_manager(self) -> str:
        return "cgroupfs" if self.cgroups else "disabled"


def _filesystems() -> dict[str, str]:
    """Mount point → filesystem type, from ``/proc/self/mounts`` (last mount wins)."""
    table: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3:
                table[fields[1].replace("\\040", " ")] = fields[2]
    return table


def cgroup_layout() -> CgroupLayout:
    """The host's cgroup mode, as crun's ``libcrun_get_cgroup_mode`` decides it."""
    mounts = _filesystems()
    root = mounts.get(str(_CGROUP_ROOT))
    if root == _CGROUP2_MAGIC_TYPE:
        return CgroupLayout(CgroupMode.UNIFIED)
    if root != "tmpfs":
        return CgroupLayout(CgroupMode.NONE)
    unified = _CGROUP_ROOT / "unified"
    if mounts.get(str(unified)) == _CGROUP2_MAGIC_TYPE:
        controllers: tuple[str, ...] = ()
        with contextlib.suppress(OSError):
            controllers = tuple((unified / "cgroup.controllers").read_text().split())
        return CgroupLayout(CgroupMode.HYBRID, controllers)
    return CgroupLayout(CgroupMode.LEGACY)


def overlay_supported(scratch: Path) -> bool:
    """Whether an overlay mount with its upper directory under ``scratch`` works (the
    filesystem under the data directory matters: overlay on overlay, for one, fails)."""
    scratch.mkdir(parents=True, exist_ok=True)
    if "overlay" not in Path("/proc/filesystems").read_text():
        return False
    base = Path(tempfile.mkdtemp(dir=scratch, prefix="overlay-probe-"))
    try:
        for name in ("lower", "upper", "work", "merged"):
            (base / name).mkdir()
        (base / "lower" / "probe").write_text("lower\n")
        options = f"lowerdir={base / 'lower'},upperdir={base / 'upper'},workdir={base / 'work'}"
        result = _run(["mount", "-t", "overlay", "overlay", "-o", options, str(base / "merged")])
        if result != 0:
            return False
        try:
            (base / "merged" / "written").write_text("upper\n")
            return (base / "upper" / "written").exists() and (base / "merged" / "probe").exists()
        finally:
            _run(["umount", str(base / "merged")])
    except OSError:
        return False
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run(argv: list[str]) -> int:
    try:
        return subprocess.run(argv, capture_output=True, check=False, timeout=30).returncode
    except (OSError, subprocess.SubprocessError):
        return -1


def probe_bundle_config(rootfs: Path, *, cgroups: bool, cgroups_path: str) -> dict[str, object]:
    """A container that runs the host's ``true`` from read-only binds of its system
    directories: enough to learn whether crun can run a container here."""
    binds = []
    for directory in ("/bin", "/sbin", "/usr", "/lib", "/lib64", "/lib32", "/libx32"):
        if Path(directory).exists():
            target = os.path.realpath(directory)
            binds.append(
                {
                    "destination": directory,
                    "type": "bind",
                    "source": target,
                    "options": ["rbind", "ro"],
                }
            )
    linux: dict[str, object] = {
        "namespaces": [{"type": t} for t in ("pid", "mount", "ipc", "uts")],
    }
    if cgroups:
        linux["resources"] = {"memory": {"limit": 64 * 1024 * 1024}}
        linux["cgroupsPath"] = cgroups_path
    true = shutil.which("true") or "/bin/true"
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": [true],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
        },
        "root": {"path": str(rootfs), "readonly": False},
        "hostname": "engenho-probe",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "mode=755"],
            },
            *binds,
        ],
        "linux": linux,
    }


async def crun_version(crun: str) -> str:
    code, out, _ = await run_command([crun, "--version"])
    if code == -1:
        return "unknown"
    first = out.splitlines()
    return first[0].removeprefix("crun version ").strip() if first else "unknown"


def read_text(path: Path, default: str) -> str:
    try:
        return path.read_text()
    except OSError:
        return default


async def run_command(argv: list[str], *, input: bytes | None = None) -> tuple[int, str, str]:
    """Run a command to completion (``input`` on its stdin): (exit code, stdout, stderr
    stripped); -1 when it could not be started. Started by ``spawning``, which does not fork
    the agent on the event loop."""
    try:
        result = await spawning.run_command(argv, input=input)
    except OSError as exc:
        return -1, "", str(exc)
    return (
        result.code,
        result.stdout.decode(errors="replace"),
        result.stderr.decode(errors="replace").strip(),
    )


def _mounted(path: Path) -> bool:
    """A mount point, or a file with something bind-mounted over it (an nsfs file, which
    ``os.path.ismount`` does not see)."""
    try:
        return os.path.ismount(path) or path.stat().st_dev != path.parent.stat().st_dev
    except OSError:
        return False


async def unmount(path: Path) -> None:
    """Unmount ``path`` if something is mounted there (lazily if it is busy)."""
    if not await asyncio.to_thread(_mounted, path):
        return
    code, _, err = await run_command(["umount", str(path)])
    if code != 0:
        code, _, err = await run_command(["umount", "-l", str(path)])
        if code != 0:
            log.warning("could not unmount %s: %s", path, err)
