"""SPDY/3.1, the server's side: how ``kubectl exec`` before 1.30 carries a command's streams
(apimachinery ``httpstream/spdy`` over moby/spdystream, in client-go and the kubelet).

:mod:`.framing` reads and writes the frames of the SPDY/3 draft and their zlib-compressed
header blocks (with the draft's dictionary); :mod:`.session` is the server's end of a
session as an asyncio protocol: it answers the streams the client opens, echoes PINGs, keeps
the flow-control windows (as far as the peer keeps any) and closes with GOAWAY.
``spdy_exec.py`` runs ``pods/exec`` over it.
"""

from engenho.api.spdy.framing import (
    CANCEL,
    DEFAULT_WINDOW,
    DICTIONARY,
    FLOW_CONTROL_ERROR,
    INVALID_STREAM,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    SETTINGS_INITIAL_WINDOW_SIZE,
    STREAM_ALREADY_CLOSED,
    VERSION,
    Data,
    FrameDecoder,
    FrameEncoder,
    GoAway,
    HeaderCompressor,
    HeaderDecompressor,
    Headers,
    HeadersFrame,
    Ping,
    RstStream,
    Setting,
    Settings,
    SpdyError,
    SpdyFrame,
    SpdyProtocolError,
    StreamClosedError,
    SynReply,
    SynStream,
    WindowUpdate,
    header_value,
)
from engenho.api.spdy.session import SpdySession, SpdyStream

__all__ = [
    "CANCEL",
    "DEFAULT_WINDOW",
    "DICTIONARY",
    "FLOW_CONTROL_ERROR",
    "INVALID_STREAM",
    "PROTOCOL_ERROR",
    "REFUSED_STREAM",
    "SETTINGS_INITIAL_WINDOW_SIZE",
    "STREAM_ALREADY_CLOSED",
    "VERSION",
    "Data",
    "FrameDecoder",
    "FrameEncoder",
    "GoAway",
    "HeaderCompressor",
    "HeaderDecompressor",
    "Headers",
    "HeadersFrame",
    "Ping",
    "RstStream",
    "Setting",
    "Settings",
    "SpdyError",
    "SpdyFrame",
    "SpdyProtocolError",
    "SpdySession",
    "SpdyStream",
    "StreamClosedError",
    "SynReply",
    "SynStream",
    "WindowUpdate",
    "header_value",
]
