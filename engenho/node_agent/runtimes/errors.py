"""Errors of the container runtimes (re-exported by ``engenho.node_agent.runtime``).

::

    ContainerRuntimeError            anything a runtime refuses or fails to do
    ├── ImageError                   the image cannot be made available; ``reason`` is upstream's
    │   ├── ImagePullError           ErrImagePull: not in the store (engenho does not pull)
    │   ├── ImageNeverPullError      ErrImageNeverPull: not present, imagePullPolicy Never
    │   └── InvalidImageNameError    InvalidImageName: the reference does not parse
    ├── NotFoundError                no such sandbox or container (it was removed, or never was)
    │   ├── SandboxNotFoundError
    │   └── ContainerNotFoundError
    ├── CreateContainerError         the config cannot become a container (bad user, mount, argv)
    ├── StartContainerError          the process could not be started (the status says StartError)
    ├── ContainerStateError          the operation does not fit the container's state
    ├── ExecError                    exec could not run (container not running, launch failed)
    └── RuntimeUnavailableError      the runtime cannot work on this host (crun missing, ...)

``ImageError.message`` is what the agent puts in the container's ``waiting.message``;
``reason`` is the waiting reason.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ContainerNotFoundError",
    "ContainerRuntimeError",
    "ContainerStateError",
    "CreateContainerError",
    "ExecError",
    "ImageError",
    "ImageNeverPullError",
    "ImagePullError",
    "InvalidImageNameError",
    "NotFoundError",
    "RuntimeUnavailableError",
    "SandboxNotFoundError",
    "StartContainerError",
]


class ContainerRuntimeError(Exception):
    """Base class of every runtime error."""

    reason: ClassVar[str] = "RuntimeError"

    @property
    def message(self) -> str:
        return str(self)


class ImageError(ContainerRuntimeError):
    """Raised by ``ensure_image`` (and by ``create_container`` for an image that vanished)."""


class ImagePullError(ImageError):
    """The image is not in the node's store, and engenho does not pull from registries."""

    reason = "ErrImagePull"


class ImageNeverPullError(ImageError):
    """The image is not present and ``imagePullPolicy`` is ``Never``."""

    reason = "ErrImageNeverPull"


class InvalidImageNameError(ImageError):
    """The image reference does not parse (distribution/reference's message)."""

    reason = "InvalidImageName"


class NotFoundError(ContainerRuntimeError, LookupError):
    """Raised for an id the runtime does not hold."""

    reason = "NotFound"


class SandboxNotFoundError(NotFoundError):
    pass


class ContainerNotFoundError(NotFoundError):
    pass


class CreateContainerError(ContainerRuntimeError):
    """The container config cannot be realised: no command, an unknown user name, a mount
    source that does not exist. The kubelet's waiting reason is ``CreateContainerError``."""

    reason = "CreateContainerError"


class StartContainerError(ContainerRuntimeError):
    """The container's process could not be started (executable not found, ...). The
    container is left exited with reason ``StartError`` and exit code 128; the kubelet's
    waiting reason for it is ``RunContainerError``."""

    reason = "RunContainerError"


class ContainerStateError(ContainerRuntimeError):
    """Starting a container that was already started, and the like."""

    reason = "ContainerStateError"


class ExecError(ContainerRuntimeError):
    """exec could not run the command (the container is not running, or the launch failed).
    A command that runs and fails is not an error: its exit code is returned."""

    reason = "ExecError"


class RuntimeUnavailableError(ContainerRuntimeError):
    """The runtime cannot run containers on this host; the message says why."""

    reason = "RuntimeUnavailable"
