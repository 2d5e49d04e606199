"""The OCI runtime's records of sandboxes and containers, and their files.

A record is the runtime's memory of one sandbox or container; ``meta()`` is what it keeps on
disk (``meta.json``) so that a restarted agent can ``load`` it again. The monitor's files
(``state.json``, ``exit.json``) are read by the runtime, never written by it except to record
an exit the monitor could not (a container stopped before it started, a vanished monitor).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import cattrs

from engenho.node_agent.runtime import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    NetworkMode,
    SandboxConfig,
    SandboxState,
    SandboxStatus,
    exit_reason,
)

__all__ = [
    "STATUS_UNKNOWN_EXIT",
    "ContainerRecord",
    "SandboxRecord",
    "from_ns",
    "now",
    "read_json",
    "write_json",
]

STATUS_UNKNOWN_EXIT = 137
"""What upstream reports for a container whose exit was lost (``ContainerStatusUnknown``)."""


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_unstructure_hook(Path, str)
    converter.register_structure_hook(Path, lambda value, _: Path(value))
    converter.register_unstructure_hook(IPv4Address, str)
    converter.register_structure_hook(IPv4Address, lambda value, _: IPv4Address(value))
    converter.register_unstructure_hook(IPv4Network, str)
    converter.register_structure_hook(IPv4Network, lambda value, _: IPv4Network(value))
    return converter


_CONVERTER = _converter()


def now() -> datetime:
    return datetime.now(UTC)


def from_ns(ns: int | None) -> datetime | None:
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, UTC)


def write_json(path: Path, document: Any) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=1, sort_keys=True))
    os.replace(temporary, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


class SandboxRecord:
    def __init__(self, sandbox_id: str, directory: Path, config: SandboxConfig) -> None:
        self.id = sandbox_id
        self.directory = directory
        self.config = config
        self.created_at = now()
        self.network_mode = NetworkMode.HOST
        self.ip: str | None = None
        self.network_message = ""
        self.namespaces: dict[str, str] = {}
        """Namespace type → bind-mounted file, for those the pod's containers share."""
        self.containers: set[str] = set()

    def meta(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "config": _CONVERTER.unstructure(self.config),
            "created_at": self.created_at.isoformat(),
            "network_mode": self.network_mode.value,
            "ip": self.ip,
            "network_message": self.network_message,
            "namespaces": self.namespaces,
        }

    @classmethod
    def load(cls, directory: Path, data: dict[str, Any]) -> SandboxRecord:
        sandbox = cls(data["id"], directory, _CONVERTER.structure(data["config"], SandboxConfig))
        sandbox.created_at = datetime.fromisoformat(data["created_at"])
        sandbox.network_mode = NetworkMode(data["network_mode"])
        sandbox.ip = data.get("ip")
        sandbox.network_message = data.get("network_message", "")
        sandbox.namespaces = dict(data.get("namespaces") or {})
        return sandbox

    def ready(self) -> bool:
        """Whether the pod's namespaces still exist (after a reboot their files are plain
        files again: the sandbox must be made anew)."""
        for path in self.namespaces.values():
            try:
                if os.stat(path).st_dev == os.stat(os.path.dirname(path)).st_dev:
                    return False
            except OSError:
                return False
        return True

    def status(self) -> SandboxStatus:
        return SandboxStatus(
            id=self.id,
            config=self.config,
            state=SandboxState.READY if self.ready() else SandboxState.NOT_READY,
            created_at=self.created_at,
            network_mode=self.network_mode,
            ip=self.ip,
            network_message=self.network_message,
        )


class ContainerRecord:
    def __init__(
        self,
        container_id: str,
        sandbox_id: str,
        directory: Path,
        config: ContainerConfig,
        image_ref: str,
    ) -> None:
        self.id = container_id
        self.sandbox_id = sandbox_id
        self.directory = directory
        self.config = config
        self.image_ref = image_ref
        self.created_at = now()
        self.state = ContainerState.CREATED
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.exit_code: int | None = None
        self.reason = ""
        self.message = ""
        self.pid: int | None = None
        self.shim_pid: int | None = None
        self.overlay = False
        self.unenforced: tuple[str, ...] = ()
        self.stop_signal = int(signal.SIGTERM)
        self.oom_files: tuple[str, ...] = ()
        self.exited = asyncio.Event()
        self.watch: Callable[[], None] | None = None
        """Undoes the watch on the monitor (a pidfd reader or a polling task)."""

    def meta(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sandbox_id": self.sandbox_id,
            "config": _CONVERTER.unstructure(self.config),
            "image_ref": self.image_ref,
            "created_at": self.created_at.isoformat(),
            "overlay": self.overlay,
            "unenforced": list(self.unenforced),
            "stop_signal": self.stop_signal,
            "oom_files": list(self.oom_files),
        }

    @classmethod
    def load(cls, directory: Path, data: dict[str, Any]) -> ContainerRecord:
        container = cls(
            data["id"],
            data["sandbox_id"],
            directory,
            _CONVERTER.structure(data["config"], ContainerConfig),
            data["image_ref"],
        )
        container.created_at = datetime.fromisoformat(data["created_at"])
        container.overlay = bool(data.get("overlay"))
        container.unenforced = tuple(data.get("unenforced") or ())
        container.stop_signal = int(data.get("stop_signal", signal.SIGTERM))
        container.oom_files = tuple(data.get("oom_files") or ())
        return container

    def apply_exit(self, data: dict[str, Any]) -> None:
        code = int(data.get("exit_code", STATUS_UNKNOWN_EXIT))
        self.state = ContainerState.EXITED
        self.exit_code = code
        self.reason = str(data.get("reason") or "") or exit_reason(
            code, oom_killed=bool(data.get("oom_killed"))
        )
        self.message = str(data.get("message") or "")
        self.finished_at = from_ns(data.get("finished_at")) or now()
        self.pid = None
        self.exited.set()

    def status(self) -> ContainerStatus:
        return ContainerStatus(
            id=self.id,
            sandbox_id=self.sandbox_id,
            runtime="oci",
            name=self.config.name,
            attempt=self.config.attempt,
            state=self.state,
            image=self.config.image,
            image_ref=self.image_ref,
            created_at=self.created_at,
            log_path=self.config.log_path,
            started_at=self.started_at,
            finished_at=self.finished_at,
            exit_code=self.exit_code,
            reason=self.reason,
            message=self.message,
            pid=self.pid,
            labels=self.config.labels,
            annotations=self.config.annotations,
            unenforced=self.unenforced,
        )
