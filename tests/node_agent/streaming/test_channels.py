"""The exec channel framing (pure): every protocol round-trips any bytes on any data channel,
the v5 close signal, negotiation order, the outcome Statuses and resize messages."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from engenho.node_agent import channels

protocols = st.sampled_from(sorted(channels.PROTOCOLS.values(), key=lambda p: p.name))
data_channels = st.integers(min_value=0, max_value=9)


@given(protocols, data_channels, st.binary(max_size=512))
def test_frames_round_trip(protocol: channels.ChannelProtocol, channel: int, data: bytes) -> None:
    message = channels.encode(protocol, channel, data)
    assert isinstance(message, str) == protocol.base64
    assert channels.decode(protocol, message) == channels.Frame(channel, data)


@given(st.binary(max_size=64))
def test_text_frames_of_binary_protocols_are_their_utf8_bytes(text: bytes) -> None:
    # The Python client writes chr(0) + text as a text message.
    decoded = text.decode("utf-8", "replace")
    frame = channels.decode(channels.PROTOCOLS["v4.channel.k8s.io"], chr(0) + decoded)
    assert frame == channels.Frame(channels.STDIN, decoded.encode())


@given(st.integers(min_value=0, max_value=254))
def test_close_signal_only_in_v5(channel: int) -> None:
    message = channels.encode_close(channel)
    assert channels.decode(channels.PROTOCOLS["v5.channel.k8s.io"], message) == (
        channels.CloseSignal(channel)
    )
    # Before v5, channel 255 is just an unknown channel.
    v4 = channels.decode(channels.PROTOCOLS["v4.channel.k8s.io"], message)
    assert v4 == channels.Frame(255, bytes([channel]))


def test_empty_and_malformed_messages_are_ignored() -> None:
    v5 = channels.PROTOCOLS["v5.channel.k8s.io"]
    b64 = channels.PROTOCOLS["v4.base64.channel.k8s.io"]
    assert channels.decode(v5, b"") is None
    assert channels.decode(v5, bytes([255, 0, 1])) is None
    assert channels.decode(b64, "1!!notbase64") is None
    assert channels.decode(b64, "x" + "aGk=") is None


def test_negotiation_takes_the_first_offered_we_speak() -> None:
    assert (
        channels.negotiate(["v9.channel.k8s.io", "v4.channel.k8s.io", "v5.channel.k8s.io"])
        == (channels.PROTOCOLS["v4.channel.k8s.io"])
    )
    assert channels.negotiate([]) == channels.PROTOCOLS["channel.k8s.io"]
    assert channels.negotiate(["v9.channel.k8s.io"]) is None


@given(st.integers(min_value=1, max_value=255), st.lists(st.text(max_size=8), min_size=1))
def test_exit_status_round_trips(code: int, argv: list[str]) -> None:
    v5 = channels.PROTOCOLS["v5.channel.k8s.io"]
    payload = channels.status_payload(v5, channels.exit_status(code, argv))
    assert payload is not None
    assert channels.exit_code(payload) == code
    body = json.loads(payload)
    assert body["status"] == "Failure"
    assert body["message"].endswith(f"exit code {code}")


def test_status_payloads_per_protocol() -> None:
    v4 = channels.PROTOCOLS["v4.channel.k8s.io"]
    v1 = channels.PROTOCOLS["channel.k8s.io"]
    success = channels.success_status()
    assert channels.status_payload(v4, success) == b'{"metadata":{},"status":"Success"}'
    assert channels.exit_code(b'{"metadata":{},"status":"Success"}') == 0
    assert channels.status_payload(v1, success) is None
    failure = channels.exit_status(3, ["sh", "-c", "exit 3"])
    assert channels.status_payload(v1, failure) == (
        b"command terminated with non-zero exit code: error executing command "
        b"[sh -c exit 3], exit code 3"
    )
    assert channels.exit_code(json.dumps(channels.internal_error_status("boom")).encode()) is None
    assert channels.exit_code(b"not json") is None


@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=10_000))
def test_resize_messages(width: int, height: int) -> None:
    message = json.dumps({"Width": width, "Height": height}).encode()
    assert channels.parse_resize(message) == (width, height)


def test_bad_resize_messages_are_ignored() -> None:
    for bad in (b"", b"[]", b'{"Width": -1, "Height": 2}', b'{"Width": "80"}'):
        assert channels.parse_resize(bad) is None
