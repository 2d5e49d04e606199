"""Starting and watching container monitors (``oci_shim``), and probing the host with them.

``spawn_monitor`` starts a monitor for a bundle and returns its one-line report.
``MonitorWatcher`` calls back when a monitor process exits: through a pidfd in the event loop
(no task, no thread), or by polling ``/proc`` where pidfds are not available. ``probe_host``
runs throwaway containers through monitors to learn what crun can do here (``oci_host``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import engenho
from engenho.node_agent.runtime import RuntimeUnavailableError
from engenho.node_agent.runtimes.oci_host import (
    CgroupMode,
    HostCapabilities,
    cgroup_layout,
    crun_version,
    overlay_supported,
    probe_bundle_config,
    read_text,
)
from engenho.node_agent.runtimes.oci_records import read_json, write_json

__all__ = ["MONITOR_MODULE", "MonitorWatcher", "crun_argv", "probe_host", "spawn_monitor"]

MONITOR_MODULE = "engenho.node_agent.runtimes.oci_shim"
# The monitor must import engenho even when the agent runs from a source tree.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(engenho.__file__)))
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


async def spawn_monitor(directory: Path) -> dict[str, Any]:
    """Start the monitor for the bundle in ``directory`` (its ``shim.json`` written) and
    return its report: ``{"pid", "started_at"}`` or ``{"error"}``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
    with _open_append(directory / "shim.log") as shim_log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            MONITOR_MODULE,
            str(directory),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=shim_log,
            start_new_session=True,
            env=env,
        )
    try:
        async with asyncio.timeout(_REPORT_WAIT):
            line = await process.stdout.readline() if process.stdout is not None else b""
    except TimeoutError:
        # The monitor still holds the pipe; whatever it does next, this start has failed.
        return {"error": f"the container monitor did not report within {_REPORT_WAIT:.0f} s"}
    finally:
        await process.wait()
    if not line:
        tail = read_text(directory / "shim.log", "").strip().splitlines()[-5:]
        return {"error": "the container monitor died: " + (" / ".join(tail) or "no output")}
    try:
        report: dict[str, Any] = json.loads(line)
    except json.JSONDecodeError:
        return {"error": f"the container monitor said {line!r}"}
    return report


def _open_append(path: Path) -> IO[bytes]:
    return path.open("ab")


class MonitorWatcher:
    """Calls back once when a monitor process exits."""

    def __init__(self) -> None:
        self._polls: set[asyncio.Task[None]] = set()

    def watch(self, pid: int, on_exit: Callable[[], None]) -> Callable[[], None]:
        """Arrange for ``on_exit()`` when ``pid`` exits (at once if it already has);
        returns a function that cancels the watch."""
        loop = asyncio.get_running_loop()
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            loop.call_soon(on_exit)
            return lambda: None
        except (OSError, AttributeError):
            task = asyncio.create_task(self._poll(pid, on_exit), name=f"oci-monitor-{pid}")
            self._polls.add(task)
            task.add_done_callback(self._polls.discard)

            def cancel() -> None:
                task.cancel()

            return cancel
        closed = False

        def close() -> None:
            nonlocal closed
            if not closed:
                closed = True
                loop.remove_reader(pidfd)
                os.close(pidfd)

        def fired() -> None:
            close()
            on_exit()

        loop.add_reader(pidfd, fired)
        return close

    async def _poll(self, pid: int, on_exit: Callable[[], None]) -> None:
        # Only where pidfds are missing (Linux < 5.3): nothing to wait on but time.
        while await asyncio.to_thread(Path(f"/proc/{pid}").exists):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        on_exit()

    async def close(self) -> None:
        for task in list(self._polls):
            task.cancel()
        for task in list(self._polls):
            with contextlib.suppress(asyncio.CancelledError):
                await task


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
            cancel = MonitorWatcher().watch(int(state["shim_pid"]), exited.set)
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
