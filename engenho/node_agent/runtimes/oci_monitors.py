"""Starting container monitors (``oci_shim``), and probing the host with them.

``spawn_monitor`` starts a monitor for a bundle (through the runtime's ``monitor_launcher``)
and returns its one-line report (how any shim is started and watched is
``shim_supervision``'s). ``probe_host`` runs throwaway containers
through monitors to learn what crun can do here (``oci_host``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from engenho.node_agent.runtime import RuntimeUnavailableError
from engenho.node_agent.runtimes.oci_host import (
    CgroupMode,
    HostCapabilities,
    cgroup_layout,
    crun_version,
    overlay_supported,
    probe_bundle_config,
)
from engenho.node_agent.runtimes.oci_shim import MODULE as MONITOR_MODULE
from engenho.node_agent.runtimes.shim_supervision import ExitWatcher, ShimLauncher, spawn_shim
from engenho.node_agent.runtimes.stored_records import read_json, write_json

__all__ = ["MONITOR_MODULE", "crun_argv", "monitor_launcher", "probe_host", "spawn_monitor"]

_PROBE_WAIT = 10.0
_REPORT_WAIT = 120.0
"""crun create and start of a big image on a loaded host take seconds, not minutes."""


def crun_argv(crun: str, root: Path, manager: str, directory: Path) -> list[str]:
    """crun with the runtime's global options (state root, cgroup manager, its own log)."""
    return [
        crun,
        "--root",
        str(root),
        f"--cgroup-manager={manager}",
        f"--log=file:{directory / 'crun.log'}",
    ]


async def spawn_monitor(directory: Path, launcher: ShimLauncher | None = None) -> dict[str, Any]:
    """Start the monitor for the bundle in ``directory`` (its ``shim.json`` written), through
    ``launcher`` if given, and return its report: ``{"pid", "started_at"}`` or ``{"error"}``."""
    who = "the container monitor"
    if launcher is not None:
        return await launcher.spawn(directory, who=who, report_wait=_REPORT_WAIT)
    return await spawn_shim(directory, MONITOR_MODULE, who=who, report_wait=_REPORT_WAIT)


def monitor_launcher(root: Path) -> ShimLauncher:
    """The launcher of the runtime whose state directory is ``root`` (its log there)."""
    return ShimLauncher(MONITOR_MODULE, root / "launcher.log")


async def probe_host(root: Path, crun: str | None, cgroup_parent: str) -> HostCapabilities:
    """What crun can do on this host, learnt by running containers (module ``oci_host``)."""
    found = shutil.which(crun or "crun")
    if found is None:
        raise RuntimeUnavailableError(
            f"{crun or 'crun'} is not installed (Debian: apt-get install crun; make run "
            "installs it)"
        )
    version = await crun_version(found)
    layout = cgroup_layout()
    hide = layout.crun_refuses_hybrid
    notes: list[str] = []
    if hide:
        notes.append(
            "hybrid cgroups with controllers on the v2 hierarchy ("
            + ", ".join(layout.unified_controllers)
            + "): crun runs in a private mount namespace without /sys/fs/cgroup/unified"
        )
    overlay = await asyncio.to_thread(overlay_supported, root / "tmp")
    if not overlay:
        notes.append("overlayfs is not usable here: container root filesystems are copies")
    cgroups = False
    failure = ""
    if layout.mode is not CgroupMode.NONE:
        failure = await _probe_container(root, found, hide, cgroup_parent, cgroups=True)
        cgroups = not failure
    if cgroups:
        notes.append(f"cgroup limits are enforced ({layout.mode.value}, cgroupfs manager)")
    else:
        notes.append(
            "cgroups cannot be managed ("
            + (failure or "no cgroup filesystem")
            + "): crun runs with --cgroup-manager=disabled and CPU and memory limits are "
            "not enforced"
        )
        failure = await _probe_container(root, found, hide, cgroup_parent, cgroups=False)
        if failure:
            raise RuntimeUnavailableError(f"crun cannot run a container here: {failure}")
    return HostCapabilities(
        crun=found,
        crun_version=version,
        cgroup_layout=layout,
        cgroups=cgroups,
        hide_unified_cgroup=hide,
        overlay=overlay,
        oom_detection=cgroups,
        notes=tuple(notes),
    )


async def _probe_container(
    root: Path, crun: str, hide: bool, cgroup_parent: str, *, cgroups: bool
) -> str:
    """Run a throwaway container through a monitor; "" when it worked, else why not."""
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(dir=root / "tmp", prefix="probe-"))
    container_id = f"engenho-probe-{uuid.uuid4().hex[:12]}"
    try:
        (directory / "rootfs").mkdir()
        config = probe_bundle_config(
            directory / "rootfs", cgroups=cgroups, cgroups_path=f"{cgroup_parent}/{container_id}"
        )
        write_json(directory / "config.json", config)
        manager = "cgroupfs" if cgroups else "disabled"
        spec = {
            "id": container_id,
            "crun": crun_argv(crun, root / "crun", manager, directory),
            "hide_unified_cgroup": hide,
            "log_path": str(directory / "probe.log"),
        }
        write_json(directory / "shim.json", spec)
        report = await spawn_monitor(directory)
        if "error" in report:
            return str(report["error"])
        state = read_json(directory / "state.json") or {}
        if "shim_pid" in state:
            exited = asyncio.Event()
            cancel = ExitWatcher().watch(int(state["shim_pid"]), exited.set)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_PROBE_WAIT):
                    await exited.wait()
            cancel()
        outcome = read_json(directory / "exit.json") or {}
        if outcome.get("exit_code") != 0:
            return f"the probe container exited {outcome.get('exit_code')}"
        return ""
    finally:
        await asyncio.to_thread(shutil.rmtree, directory, True)
