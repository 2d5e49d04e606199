"""The records of the shim runtimes (``oci``, ``wasm``), kept on disk so that a restarted agent
finds its sandboxes and containers again.

A record's ``meta()`` is what it keeps in its directory's ``meta.json``; ``load`` reads it
back, and must keep reading what earlier versions wrote. The shim's files (``state.json``,
``exit.json``: ``shim_process``) are read by the runtime, never written by it except to record
an exit the shim could not (a container stopped before it started, a vanished shim).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, Self

import cattrs

from engenho.node_agent.runtime import (
    ContainerConfig,
    NetworkMode,
    SandboxConfig,
    SandboxState,
    SandboxStatus,
)
from engenho.node_agent.runtimes.container_record import ContainerRecord

__all__ = [
    "STATUS_UNKNOWN_EXIT",
    "SandboxRecord",
    "StoredContainer",
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


class StoredContainer(ContainerRecord):
    """A container whose process is a shim's (``directory`` holds its files). Subclasses add
    what their runtime keeps by extending ``meta`` and ``load``."""

    __slots__ = ("directory", "shim_pid", "shim_start_ticks", "stop_signal", "watch")

    def __init__(
        self,
        container_id: str,
        sandbox_id: str,
        directory: Path,
        config: ContainerConfig,
        image_ref: str,
    ) -> None:
        super().__init__(container_id, sandbox_id, config, image_ref, now())
        self.directory = directory
        self.shim_pid: int | None = None
        self.shim_start_ticks: int | None = None
        """The shim's start time (``process_start_ticks``): tells it from a later process
        that got its pid."""
        self.stop_signal = int(signal.SIGTERM)
        self.watch: Callable[[], None] | None = None
        """Undoes the watch on the shim (a pidfd reader or a polling task)."""

    def meta(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sandbox_id": self.sandbox_id,
            "config": _CONVERTER.unstructure(self.config),
            "image_ref": self.image_ref,
            "created_at": self.created_at.isoformat(),
            "unenforced": list(self.unenforced),
            "stop_signal": self.stop_signal,
        }

    @classmethod
    def load(cls, directory: Path, data: dict[str, Any]) -> Self:
        container = cls(
            data["id"],
            data["sandbox_id"],
            directory,
            _CONVERTER.structure(data["config"], ContainerConfig),
            data["image_ref"],
        )
        container.created_at = datetime.fromisoformat(data["created_at"])
        container.unenforced = tuple(data.get("unenforced") or ())
        container.stop_signal = int(data.get("stop_signal", signal.SIGTERM))
        return container

    def unwatch(self) -> None:
        if self.watch is not None:
            self.watch()
            self.watch = None

    def apply_exit(self, data: dict[str, Any]) -> None:
        """The exit as ``exit.json`` records it."""
        self.finish(
            int(data.get("exit_code", STATUS_UNKNOWN_EXIT)),
            from_ns(data.get("finished_at")) or now(),
            reason=str(data.get("reason") or ""),
            message=str(data.get("message") or ""),
            oom_killed=bool(data.get("oom_killed")),
        )

    def record_exit(self, outcome: dict[str, Any]) -> None:
        """An exit the shim could not record itself, written for the next agent too."""
        outcome = {"finished_at": int(now().timestamp() * 1e9), **outcome}
        write_json(self.directory / "exit.json", outcome)
        self.apply_exit(outcome)
