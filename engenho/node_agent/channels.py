"""The channel protocols of ``kubectl exec`` over WebSocket (apimachinery ``wsstream``).

Each WebSocket message carries one stream's bytes, prefixed by the stream's channel number::

    0 stdin   1 stdout   2 stderr   3 error (the command's outcome)   4 resize (terminal size)

| subprotocol | frames | error channel | stream close |
|---|---|---|---|
| ``v5.channel.k8s.io`` (kubectl 1.30+) | binary | JSON ``metav1.Status`` | ``[255, ch]`` |
| ``v4.channel.k8s.io`` (official clients) | binary | JSON ``metav1.Status`` | — |
| ``v4.base64.channel.k8s.io`` | text: ASCII digit + base64 | JSON Status | — |
| ``channel.k8s.io`` (none offered) | binary | the error's text; nothing on success | — |
| ``base64.channel.k8s.io`` | text: ASCII digit + base64 | the error's text | — |

v5 exists for the close signal: a client ends its stdin with ``[255, 0]`` (without it a
``kubectl exec -i ... -- cat`` could never see end of input over WebSocket). The server picks
the first offered subprotocol it knows, as ``wsstream`` does. Clients send text frames too
(the Python client writes ``chr(0) + text``): a text frame of a binary protocol is read as
its UTF-8 bytes.

The outcome on the error channel is what the kubelet writes: ``{"metadata":{},"status":
"Success"}``, or a Failure with reason ``NonZeroExitCode`` and the exit code as the message of
a cause ``ExitCode``, which kubectl turns into its own exit status.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import orjson
from attrs import frozen

__all__ = [
    "CLOSE",
    "ERROR",
    "PROTOCOLS",
    "RESIZE",
    "STDERR",
    "STDIN",
    "STDOUT",
    "ChannelProtocol",
    "CloseSignal",
    "Frame",
    "decode",
    "encode",
    "encode_close",
    "exit_code",
    "exit_status",
    "internal_error_status",
    "negotiate",
    "parse_resize",
    "status_payload",
    "success_status",
]

STDIN = 0
STDOUT = 1
STDERR = 2
ERROR = 3
RESIZE = 4
CLOSE = 255
"""v5: a message ``[255, channel]`` closes that stream (the client's stdin)."""

_NON_ZERO_EXIT = "NonZeroExitCode"
_EXIT_CODE_CAUSE = "ExitCode"


@frozen
class ChannelProtocol:
    name: str
    base64: bool
    """Text frames: the channel as an ASCII digit, the data base64-encoded."""
    status_json: bool
    """v4 and later: the error channel carries a JSON ``metav1.Status``."""
    stream_close: bool
    """v5: ``[255, channel]`` closes a stream."""


PROTOCOLS: dict[str, ChannelProtocol] = {
    p.name: p
    for p in (
        ChannelProtocol("v5.channel.k8s.io", base64=False, status_json=True, stream_close=True),
        ChannelProtocol("v4.channel.k8s.io", base64=False, status_json=True, stream_close=False),
        ChannelProtocol(
            "v4.base64.channel.k8s.io", base64=True, status_json=True, stream_close=False
        ),
        ChannelProtocol("channel.k8s.io", base64=False, status_json=False, stream_close=False),
        ChannelProtocol(
            "base64.channel.k8s.io", base64=True, status_json=False, stream_close=False
        ),
    )
}
_NO_PROTOCOL = PROTOCOLS["channel.k8s.io"]


def negotiate(offered: Sequence[str]) -> ChannelProtocol | None:
    """The first offered subprotocol we speak; ``channel.k8s.io`` semantics when the client
    offered none (the subprotocol header is then left out of the answer); None when it
    offered only ones we do not know."""
    if not offered:
        return _NO_PROTOCOL
    for name in offered:
        protocol = PROTOCOLS.get(name.strip())
        if protocol is not None:
            return protocol
    return None


@frozen
class Frame:
    channel: int
    data: bytes


@frozen
class CloseSignal:
    channel: int


def encode(protocol: ChannelProtocol, channel: int, data: bytes) -> bytes | str:
    """One message carrying ``data`` on ``channel`` (bytes, or text for base64 protocols)."""
    if not 0 <= channel < 10 or channel == CLOSE:
        raise ValueError(f"no data channel {channel}")
    if protocol.base64:
        return chr(ord("0") + channel) + base64.b64encode(data).decode("ascii")
    return bytes((channel,)) + data


def encode_close(channel: int) -> bytes:
    """The v5 message that closes ``channel``."""
    return bytes((CLOSE, channel))


def decode(protocol: ChannelProtocol, message: bytes | str) -> Frame | CloseSignal | None:
    """The frame a message carries; None for an empty or malformed message (ignored, as
    ``wsstream`` ignores them)."""
    raw = message.encode() if isinstance(message, str) else message
    if not raw:
        return None
    if protocol.stream_close and raw[0] == CLOSE:
        return CloseSignal(raw[1]) if len(raw) == 2 else None
    if protocol.base64:
        channel = raw[0] - ord("0")
        if not 0 <= channel < 10:
            return None
        try:
            return Frame(channel, base64.b64decode(raw[1:], validate=True))
        except (binascii.Error, ValueError):
            return None
    return Frame(raw[0], raw[1:])


def parse_resize(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a resize message (``{"Width":80,"Height":24}``)."""
    try:
        size = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(size, dict):
        return None
    width, height = size.get("Width"), size.get("Height")
    if not isinstance(width, int) or not isinstance(height, int) or width < 0 or height < 0:
        return None
    return width, height


# -- the outcome on the error channel ------------------------------------------------------


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int, argv: Sequence[str]) -> dict[str, Any]:
    """The kubelet's Status for a command that exited with ``code`` (not 0)."""
    shown = "[" + " ".join(argv) + "]"  # Go's %v of a []string
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            "command terminated with non-zero exit code: "
            f"error executing command {shown}, exit code {code}"
        ),
        "reason": _NON_ZERO_EXIT,
        "details": {"causes": [{"reason": _EXIT_CODE_CAUSE, "message": str(code)}]},
    }


def internal_error_status(message: str) -> dict[str, Any]:
    """A command that could not run at all (``apierrors.NewInternalError``)."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {message}",
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


def status_payload(protocol: ChannelProtocol, status: dict[str, Any]) -> bytes | None:
    """What goes on the error channel: the JSON Status (v4+), or before v4 the failure's
    message and nothing at all on success."""
    if protocol.status_json:
        return orjson.dumps(status)
    if status.get("status") == "Success":
        return None
    return str(status.get("message", "")).encode()


def exit_code(payload: bytes) -> int | None:
    """The exit code a JSON Status on the error channel reports (0 for Success); None when
    it reports something else (as client-go: an error that is not an exit)."""
    try:
        status = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(status, dict):
        return None
    if status.get("status") == "Success":
        return 0
    if status.get("reason") != _NON_ZERO_EXIT:
        return None
    for cause in (status.get("details") or {}).get("causes") or ():
        if isinstance(cause, dict) and cause.get("reason") == _EXIT_CODE_CAUSE:
            try:
                return int(cause.get("message", ""))
            except ValueError:
                return None
    return None
