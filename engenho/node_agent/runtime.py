"""The container runtime protocol: what the node agent asks of the fake, OCI and wasm runtimes.

The shape is CRI's (kubelet ↔ containerd), cut down to what engenho uses:

- **Images**: ``ensure_image(reference, policy)`` makes an image available per
  ``imagePullPolicy`` or raises an ``ImageError`` whose ``reason`` (``ErrImagePull``,
  ``ErrImageNeverPull``, ``InvalidImageName``) and ``message`` go into the container's waiting
  state.
- **Sandboxes**: one per pod (``create_sandbox``/``remove_sandbox``): the pod's directory,
  hostname, ``/etc/hosts`` and ``resolv.conf``, and the namespaces its containers share
  (network, IPC, UTS) where the host allows; ``SandboxStatus`` says which network the pod got.
- **Containers**: ``create_container`` → ``start_container`` → (runs; ``stop_container`` sends
  the stop signal, waits the grace period, then SIGKILL) → exited → ``remove_container``.
  ``container_status``/``list_containers`` report ``ContainerStatus`` (state, pid, exit code,
  reason Completed/Error/OOMKilled/StartError, times); ``events()`` streams state changes as
  hints (level-triggered: on a ``relist`` event, or when in doubt, list).
- **exec** runs a command in a running container with streams (``kubectl exec``, exec probes).
- **Logs**: each container's stdout/stderr go to ``ContainerConfig.log_path`` in the CRI
  format (``engenho.node_agent.logs``), which the agent serves; the runtime never deletes logs.

Everything is async; ids are opaque strings chosen by the runtime. Runtimes keep enough on
disk (the OCI runtime) that ``list_sandboxes``/``list_containers`` after an agent restart
return what is still there, with the ``labels`` the agent gave, so it can match containers to
pods again. See docs/node-agent.md, "Container runtimes".
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Protocol, runtime_checkable

from attrs import field, frozen

from engenho.node_agent.images.model import ImageConfig
from engenho.node_agent.runtimes.errors import (
    ContainerNotFoundError,
    ContainerRuntimeError,
    ContainerStateError,
    CreateContainerError,
    ExecError,
    ImageError,
    ImageNeverPullError,
    ImagePullError,
    InvalidImageNameError,
    NotFoundError,
    RuntimeUnavailableError,
    SandboxNotFoundError,
    StartContainerError,
)

__all__ = [
    "DEFAULT_PATH",
    "ByteSink",
    "ContainerConfig",
    "ContainerEvent",
    "ContainerNotFoundError",
    "ContainerRuntime",
    "ContainerRuntimeError",
    "ContainerState",
    "ContainerStateError",
    "ContainerStatus",
    "CreateContainerError",
    "DnsConfig",
    "EnvVar",
    "EventHub",
    "ExecError",
    "ExecResult",
    "ImageError",
    "ImageInfo",
    "ImageNeverPullError",
    "ImagePullError",
    "InvalidImageNameError",
    "Mount",
    "NetworkMode",
    "NotFoundError",
    "PodNetwork",
    "PullPolicy",
    "Resources",
    "RuntimeInfo",
    "RuntimeUnavailableError",
    "SandboxConfig",
    "SandboxNotFoundError",
    "SandboxState",
    "SandboxStatus",
    "StartContainerError",
    "TerminalSize",
    "exec_capture",
    "exit_reason",
    "invalid_image_name",
    "merge_env",
    "missing_image",
    "resolve_argv",
]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""containerd's PATH for images that set none."""


# -- images -------------------------------------------------------------------------------


class PullPolicy(enum.Enum):
    """``imagePullPolicy``. engenho pulls from no registry: ``Always`` and ``IfNotPresent``
    both use the stored image and fail with ErrImagePull when there is none."""

    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


@frozen
class ImageInfo:
    reference: str
    """The normalised reference (``docker.io/library/busybox:latest``)."""
    image_id: str
    """The config digest (``sha256:...``)."""
    repo_digest: str
    """``docker.io/library/busybox@sha256:<manifest digest>``: the status ``imageID``."""
    config: ImageConfig
    size: int
    is_wasm: bool = False


# -- sandboxes ----------------------------------------------------------------------------


@frozen
class DnsConfig:
    """The pod's ``resolv.conf`` (the agent computes it from ``dnsPolicy``/``dnsConfig``)."""

    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@frozen
class PodNetwork:
    """The pod's own network: an address in the node's ``podCIDR``. The runtime bridges pods
    on the CIDR's first host address (the gateway), which the agent must never hand out."""

    cidr: IPv4Network
    ip: IPv4Address

    @property
    def gateway(self) -> IPv4Address:
        return self.cidr.network_address + 1


@frozen
class SandboxConfig:
    name: str
    namespace: str
    uid: str
    hostname: str
    directory: Path | None = None
    """The pod's directory (the agent's volumes, ...), if it wants one: created by
    ``create_sandbox`` and removed with everything in it by ``remove_sandbox`` (unmount what
    was mounted there first). None for none (simulated pods: no filesystem work at all)."""
    network: PodNetwork | None = None
    """None: the pod uses the host's network (``hostNetwork: true``)."""
    dns: DnsConfig | None = None
    """None: the host's ``/etc/resolv.conf``."""
    host_aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """``hostAliases``: (ip, hostnames) lines added to ``/etc/hosts``."""
    labels: Mapping[str, str] = field(factory=dict)
    annotations: Mapping[str, str] = field(factory=dict)
    attempt: int = 0


class SandboxState(enum.Enum):
    READY = "ready"
    NOT_READY = "not_ready"


class NetworkMode(enum.Enum):
    POD = "pod"
    """The pod has its own network namespace and ``ip``."""
    HOST = "host"
    """The pod shares the host's network (asked for, or the fallback: see ``network_message``)."""


@frozen
class SandboxStatus:
    id: str
    config: SandboxConfig
    state: SandboxState
    created_at: datetime
    network_mode: NetworkMode
    ip: str | None
    """The pod IP; None in the host network (the agent reports the host IP)."""
    network_message: str = ""
    """Why a pod that asked for its own network shares the host's, or ``""``."""


# -- containers ---------------------------------------------------------------------------


@frozen
class EnvVar:
    name: str
    value: str


@frozen
class Mount:
    host_path: Path
    container_path: str
    read_only: bool = False


@frozen
class Resources:
    """Limits the runtime applies when the host lets it (cgroups); requests weigh CPU."""

    cpu_limit_millis: int | None = None
    memory_limit_bytes: int | None = None
    cpu_request_millis: int | None = None


@frozen
class ContainerConfig:
    name: str
    image: str
    """The pod spec's image (a reference) or an ``ImageInfo.image_id``."""
    log_path: Path
    """Where stdout/stderr go, in the CRI format. One file per instance (the kubelet uses
    ``.../<container>/<restartCount>.log``), so the previous instance's log stays readable."""
    command: tuple[str, ...] = ()
    """The pod spec's ``command`` (after ``$(VAR)`` expansion); empty: the image Entrypoint."""
    args: tuple[str, ...] = ()
    """The pod spec's ``args`` (after ``$(VAR)`` expansion); see ``resolve_argv``."""
    env: tuple[EnvVar, ...] = ()
    """The container's variables; the image's ``Env`` is underneath (``merge_env``)."""
    working_dir: str = ""
    """Empty: the image's ``WorkingDir``, else ``/``."""
    run_as_user: int | None = None
    run_as_group: int | None = None
    supplemental_groups: tuple[int, ...] = ()
    mounts: tuple[Mount, ...] = ()
    resources: Resources = Resources()
    stop_signal: str | None = None
    """``SIGTERM``-style name; None: the image's ``StopSignal``, else SIGTERM."""
    tty: bool = False
    stdin: bool = False
    stdin_once: bool = False
    labels: Mapping[str, str] = field(factory=dict)
    annotations: Mapping[str, str] = field(factory=dict)
    attempt: int = 0


class ContainerState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


@frozen
class ContainerStatus:
    id: str
    sandbox_id: str
    runtime: str
    """``fake``, ``oci``, ``wasm``: the scheme of ``container_id``."""
    name: str
    attempt: int
    state: ContainerState
    image: str
    image_ref: str
    """The repo digest of the image it runs (the status ``imageID``)."""
    created_at: datetime
    log_path: Path
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    reason: str = ""
    """``Completed``, ``Error``, ``OOMKilled``, ``StartError``, ``ContainerStatusUnknown``."""
    message: str = ""
    pid: int | None = None
    labels: Mapping[str, str] = field(factory=dict)
    annotations: Mapping[str, str] = field(factory=dict)
    unenforced: tuple[str, ...] = ()
    """Resource limits asked for but not enforced on this host (``cpu``, ``memory``)."""

    @property
    def container_id(self) -> str:
        """``oci://<id>``: the status ``containerID``."""
        return f"{self.runtime}://{self.id}"


@frozen
class ContainerEvent:
    container_id: str
    sandbox_id: str
    state: ContainerState
    at: datetime
    relist: bool = False
    """Events were dropped (a slow consumer): list containers to catch up."""


@frozen
class TerminalSize:
    width: int
    height: int


@frozen
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


@frozen
class RuntimeInfo:
    name: str
    version: str
    cgroups: bool
    """Whether resource limits are enforced."""
    pod_network: bool
    """Whether pods get their own network namespace and IP."""
    notes: tuple[str, ...] = ()
    """What this host does not allow and what the runtime does instead, in words."""


ByteSink = Callable[[bytes], Awaitable[None]]


@runtime_checkable
class ContainerRuntime(Protocol):
    """What the node agent uses to run pods. Implementations: ``runtimes.fake.FakeRuntime``,
    ``runtimes.oci.OciRuntime`` (and the wasm runtime)."""

    @property
    def name(self) -> str: ...

    async def open(self) -> None:
        """Prepare (probe the host, recover what the previous agent left running)."""

    async def close(self) -> None:
        """Release the runtime's own resources. Containers keep running (they outlive the
        agent); stop them first if they should not."""

    async def info(self) -> RuntimeInfo: ...

    async def ensure_image(self, reference: str, policy: PullPolicy) -> ImageInfo:
        """Make the image available per the pull policy, or raise an ``ImageError``."""

    async def create_sandbox(self, config: SandboxConfig) -> SandboxStatus: ...

    async def sandbox_status(self, sandbox_id: str) -> SandboxStatus: ...

    async def list_sandboxes(self) -> list[SandboxStatus]: ...

    async def remove_sandbox(self, sandbox_id: str) -> None:
        """Kill and remove the sandbox's containers, release its namespaces and delete its
        directory. Removing an unknown sandbox is not an error."""

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> ContainerStatus:
        """A created (not started) container. Raises ImageError, CreateContainerError."""

    async def start_container(self, container_id: str) -> ContainerStatus:
        """Start it; returns once the process runs (or raises StartContainerError, leaving
        the container exited with reason StartError)."""

    async def stop_container(self, container_id: str, grace_period: float) -> ContainerStatus:
        """Send the stop signal, wait up to ``grace_period`` seconds, then SIGKILL; returns
        the exited status. Stopping an exited container returns its status."""

    async def remove_container(self, container_id: str) -> None:
        """Remove it (killing it first if it runs). Its log file stays. Removing an unknown
        container is not an error."""

    async def container_status(self, container_id: str) -> ContainerStatus: ...

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]: ...

    async def wait_container(self, container_id: str) -> ContainerStatus:
        """Wait until the container has exited; its final status."""

    async def exec(
        self,
        container_id: str,
        argv: Sequence[str],
        *,
        stdin: AsyncIterable[bytes] | None = None,
        stdout: ByteSink | None = None,
        stderr: ByteSink | None = None,
        tty: bool = False,
        resize: AsyncIterable[TerminalSize] | None = None,
    ) -> int:
        """Run ``argv`` in the running container; returns its exit code. With ``tty`` the
        output all comes on ``stdout``. Cancelling the call (``asyncio.timeout`` for a probe's
        ``timeoutSeconds``) kills the command. Raises ExecError when it cannot run at all."""

    def events(self) -> AsyncIterator[ContainerEvent]:
        """Container state changes from now on, as hints (see ``ContainerEvent.relist``)."""


# -- helpers every runtime shares ---------------------------------------------------------


def resolve_argv(
    image: ImageConfig, command: Sequence[str], args: Sequence[str]
) -> tuple[str, ...]:
    """The process's argv from the pod's command/args and the image (Kubernetes' rule):
    neither → Entrypoint + Cmd; args only → Entrypoint + args; command (with or without
    args) → command + args, the image's Cmd ignored."""
    if command:
        return (*command, *args)
    if args:
        return (*image.entrypoint, *args)
    return (*image.entrypoint, *image.cmd)


def merge_env(
    image_env: Sequence[str], env: Sequence[EnvVar], *, hostname: str | None = None
) -> tuple[str, ...]:
    """``NAME=value`` strings: ``HOSTNAME`` (as containerd's CRI sets it), the image's
    variables, then the container's (which win, keeping the image's order); PATH defaults."""
    merged: dict[str, str] = {}
    if hostname is not None:
        merged["HOSTNAME"] = hostname
    for item in image_env:
        name, _, value = item.partition("=")
        merged[name] = value
    for var in env:
        merged[var.name] = var.value
    merged.setdefault("PATH", DEFAULT_PATH)
    return tuple(f"{name}={value}" for name, value in merged.items())


def invalid_image_name(reference: str, detail: str) -> InvalidImageNameError:
    """The kubelet's InvalidImageName message (``applyDefaultImageTag``)."""
    return InvalidImageNameError(
        f'Failed to apply default image tag "{reference}": couldn\'t parse image reference '
        f'"{reference}": {detail}'
    )


def missing_image(reference: str, policy: PullPolicy, why: str) -> ImageError:
    """ErrImageNeverPull with the kubelet's message, or ErrImagePull saying ``why``."""
    if policy is PullPolicy.NEVER:
        return ImageNeverPullError(
            f'Container image "{reference}" is not present with pull policy of Never'
        )
    return ImagePullError(f'Failed to pull image "{reference}": {why}')


def exit_reason(exit_code: int, *, oom_killed: bool = False) -> str:
    """The terminated reason the CRI reports: OOMKilled, Completed (0) or Error."""
    if oom_killed:
        return "OOMKilled"
    return "Completed" if exit_code == 0 else "Error"


async def exec_capture(
    runtime: ContainerRuntime,
    container_id: str,
    argv: Sequence[str],
    *,
    limit: int = 1 << 20,
) -> ExecResult:
    """Run a command and collect its output (exec probes; at most ``limit`` bytes each).
    Wrap it in ``asyncio.timeout`` for the probe's timeout."""
    out = bytearray()
    err = bytearray()

    async def sink_out(data: bytes) -> None:
        out.extend(data[: max(0, limit - len(out))])

    async def sink_err(data: bytes) -> None:
        err.extend(data[: max(0, limit - len(err))])

    code = await runtime.exec(container_id, argv, stdout=sink_out, stderr=sink_err)
    return ExecResult(code, bytes(out), bytes(err))


class EventHub:
    """Fan-out of ContainerEvents to subscribers, each with a bounded queue: a subscriber
    that falls behind loses events and is told to relist instead of slowing the runtime."""

    def __init__(self, *, capacity: int = 65536) -> None:
        self._capacity = capacity
        self._subscriptions: set[_Subscription] = set()

    def publish(self, event: ContainerEvent) -> None:
        for subscription in self._subscriptions:
            subscription.put(event)

    def subscribe(self) -> AsyncIterator[ContainerEvent]:
        """Events from this call on; iterate it, and ``aclose()`` it when done."""
        subscription = _Subscription(self, self._capacity)
        self._subscriptions.add(subscription)
        return subscription

    def close(self) -> None:
        """End every subscription (their iteration stops)."""
        for subscription in list(self._subscriptions):
            subscription.end()
        self._subscriptions.clear()

    def _discard(self, subscription: _Subscription) -> None:
        self._subscriptions.discard(subscription)


class _Subscription:
    def __init__(self, hub: EventHub, capacity: int) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[ContainerEvent | None] = asyncio.Queue(capacity)
        self._ended = False

    def put(self, event: ContainerEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            # Drop what is queued and leave one relist marker: the consumer lists.
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(
                ContainerEvent("", "", ContainerState.UNKNOWN, event.at, relist=True)
            )

    def end(self) -> None:
        self._ended = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> ContainerEvent:
        if self._ended and self._queue.empty():
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        self._ended = True
        self._hub._discard(self)
