"""What every container shim process (``oci_shim``, ``wasm_shim``) does alike.

A shim is started by its runtime as ``python -m <shim module> DIR``, detaches from the agent,
reports its start as one JSON line on the pipe the runtime reads, and keeps its own files in
DIR: ``shim.json`` (what to run, written by the runtime), ``state.json`` (written once the
container runs) and ``exit.json`` (its exit). The runtime (``shim_runtime``) reads those
files, so their shape lives here, on the shims' side, in one place.

It imports only the standard library and the log writer: the shims import it and must start
fast (pyproject's import-linter contract keeps ``engenho.node_agent.logs`` a leaf).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from engenho.node_agent.logs import CriLogWriter

__all__ = [
    "START_ERROR_EXIT",
    "announce_start",
    "detach",
    "directory_argument",
    "fail_start",
    "open_log",
    "process_start_ticks",
    "report",
    "write_json",
]

START_ERROR_EXIT = 128
"""The exit code of a container that never started (reason StartError)."""


def process_start_ticks(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat``: tells a process from a later one with the same pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Replace ``path`` atomically and durably: the runtime reads these files after the shim
    is gone, maybe after a crash of the whole node."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w") as stream:
        json.dump(document, stream)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


def directory_argument(argv: list[str] | None, module: str) -> Path | None:
    """The shim's one argument, DIR; None (after printing the usage) when it is not one."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: python -m {module} DIR", file=sys.stderr)
        return None
    return Path(args[0])


def detach() -> int:
    """Leave the agent; returns the report channel's file descriptor.

    Whoever started the shim (the agent, or its launcher, ``shim_launcher``) waits only for
    this first process, which exits at once; the shim lives on in its own session,
    reparented away from both, so it outlives an agent restart. The
    report channel is the agent's pipe on fd 1: a copy is kept and fds 0 and 1 point at
    /dev/null, so that nothing else printed by accident reaches the agent."""
    if os.fork() != 0:
        os._exit(0)
    os.setsid()
    channel = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    return channel


def report(fd: int, document: dict[str, Any]) -> None:
    """The one line the runtime waits for: ``{"pid", "started_at"}`` or ``{"error"}``."""
    with contextlib.suppress(OSError):
        os.write(fd, json.dumps(document).encode() + b"\n")
        os.close(fd)


def open_log(spec: dict[str, Any]) -> CriLogWriter:
    """The container's CRI log writer, as ``shim.json`` describes it."""
    return CriLogWriter(
        Path(spec["log_path"]),
        max_bytes=int(spec.get("log_max_bytes", 10 * 1024 * 1024)),
        max_files=int(spec.get("log_max_files", 5)),
    )


def announce_start(directory: Path, channel: int, pid: int) -> None:
    """The container runs as ``pid``: write ``state.json`` (what a restarted agent checks to
    find this shim again) and then report the start."""
    started_at = time.time_ns()
    write_json(
        directory / "state.json",
        {
            "shim_pid": os.getpid(),
            "shim_start_ticks": process_start_ticks(os.getpid()),
            "pid": pid,
            "started_at": started_at,
        },
    )
    report(channel, {"pid": pid, "started_at": started_at})


def fail_start(directory: Path, channel: int, message: str) -> int:
    """The container could not start: record why in ``exit.json`` (the runtime reports
    StartError; if the disk refuses, the report still says why) and report it. Returns the
    shim's exit status."""
    with contextlib.suppress(OSError):
        write_json(
            directory / "exit.json",
            {
                "exit_code": START_ERROR_EXIT,
                "finished_at": time.time_ns(),
                "oom_killed": False,
                "signalled": False,
                "reason": "StartError",
                "message": message,
            },
        )
    report(channel, {"error": message})
    return 1
