"""Opening the container runtime a node agent was asked for, or saying why it cannot.

``engenho server``'s embedded node falls back to ``fake`` when the runtime it was asked for
(``oci``) cannot run containers on this host, with a log line saying why; ``engenho agent``
asks for exactly what its ``--runtime`` says and fails clearly otherwise.
"""

from __future__ import annotations

import logging
from pathlib import Path

from engenho.node_agent.runtime import ContainerRuntime, ContainerRuntimeError
from engenho.node_agent.runtimes.fake import FakeRuntime
from engenho.node_agent.runtimes.oci import OciRuntime
from engenho.node_agent.runtimes.wasm import WasmRuntime

__all__ = ["RUNTIME_KINDS", "open_runtime"]

_log = logging.getLogger("engenho.node_agent")

RUNTIME_KINDS = ("fake", "oci", "wasm")


def _make(kind: str, data_root: Path, log_max_bytes: int, log_max_files: int) -> ContainerRuntime:
    if kind == "fake":
        return FakeRuntime(log_max_bytes=log_max_bytes, log_max_files=log_max_files)
    if kind == "oci":
        return OciRuntime(data_root, log_max_bytes=log_max_bytes, log_max_files=log_max_files)
    if kind == "wasm":
        return WasmRuntime(data_root, log_max_bytes=log_max_bytes, log_max_files=log_max_files)
    raise ContainerRuntimeError(f"unknown runtime {kind!r}: one of {', '.join(RUNTIME_KINDS)}")


async def open_runtime(
    kind: str,
    data_root: Path,
    *,
    fallback: bool = False,
    log_max_bytes: int = 10 * 1024 * 1024,
    log_max_files: int = 5,
) -> ContainerRuntime:
    """An opened runtime of ``kind`` over the data directory ``data_root``. With
    ``fallback``, a runtime that cannot work here gives way to ``fake`` (logged, with the
    reason); without it, the failure is raised."""
    try:
        runtime = _make(kind, data_root, log_max_bytes, log_max_files)
        await runtime.open()
    except (ContainerRuntimeError, OSError) as exc:
        if not fallback or kind == "fake":
            raise
        _log.warning(
            "the %s runtime cannot run containers here (%s): this node runs pods with the fake "
            "runtime instead (no processes; containers follow timetables)",
            kind,
            exc,
        )
        runtime = FakeRuntime(log_max_bytes=log_max_bytes, log_max_files=log_max_files)
        await runtime.open()
    return runtime
