"""The worked examples of docs/log-format.md, recomputed from the document's own text.

The hashes are recomputed twice: with engenho's functions and from the raw layout the document
describes (struct packing, CRC-32, BLAKE3 with the tag), so the document and the code cannot
drift apart unnoticed.
"""

from __future__ import annotations

import re
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from blake3 import blake3

from engenho.log import (
    ENTRY_TAG,
    Actor,
    LogStore,
    Precondition,
    ResourceCommand,
    ResourceKey,
    Verb,
    encode_command,
)
from engenho.log.entry import seal_payload
from engenho.log.framing import SegmentHeader, encode_frame, encode_segment_header

DOC = Path(__file__).resolve().parents[2] / "docs" / "log-format.md"
UID = "6f1c3b5e-8d2a-4c1e-9b7f-2a4d6e8f0a1b"
KEY = ResourceKey("", "v1", "configmaps", "default", "game-config")


def block(label: str) -> str:
    match = re.search(rf"```\w+ {re.escape(label)}\n(.*?)\n```", DOC.read_text("utf-8"), re.S)
    assert match, f"docs/log-format.md has no block labelled {label}"
    return match.group(1)


def hexblock(label: str) -> bytes:
    return bytes.fromhex(block(label).replace(" ", ""))


def example_commands() -> list[ResourceCommand]:
    create = ResourceCommand(
        verb=Verb.CREATE,
        key=KEY,
        uid=UID,
        object={
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "game-config",
                "namespace": "default",
                "uid": UID,
                "resourceVersion": "1",
                "creationTimestamp": "2026-11-27T10:00:00Z",
            },
            "data": {"lives": "3", "motto": "olá, engenho"},
        },
        precondition=Precondition(must_not_exist=True),
        actor=Actor("admin", ("system:masters", "system:authenticated")),
        request_id="req-0001",
        time=datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC),
    )
    delete = ResourceCommand(
        verb=Verb.DELETE,
        key=KEY,
        uid=UID,
        object=None,
        precondition=Precondition(resource_version=1, uid=UID),
        actor=Actor(
            "system:serviceaccount:kube-system:namespace-controller",
            ("system:serviceaccounts", "system:authenticated"),
        ),
        request_id="req-0002",
        time=datetime(2026, 11, 27, 10, 0, 5, tzinfo=UTC),
    )
    return [create, delete]


def from_the_document(number: int, prev_hash: bytes) -> tuple[bytes, bytes, bytes]:
    """(payload, hash, frame) computed from the document's text alone."""
    command = block(f"example-{number}-command").encode("utf-8")
    header = struct.pack(">32sQQHI", prev_hash, number, 1, 2, len(command))
    assert header == hexblock(f"example-{number}-header")
    digest = blake3(b"engenho/log/entry/v1\x00" + header + command).digest()
    payload = header + command + digest
    length = struct.pack(">I", len(payload))
    frame = b"\xfeENG" + length + struct.pack(">I", zlib.crc32(length + payload)) + payload
    return payload, digest, frame


def test_tag_is_as_documented() -> None:
    assert ENTRY_TAG.hex() in DOC.read_text("utf-8")


@pytest.mark.parametrize("number", [1, 2])
def test_examples_recompute(number: int) -> None:
    prev = bytes(32)
    for n in range(1, number):
        prev = from_the_document(n, prev)[1]
    payload, digest, frame = from_the_document(number, prev)
    assert digest == hexblock(f"example-{number}-hash")
    assert frame[:12] == hexblock(f"example-{number}-frame")
    command = example_commands()[number - 1]
    assert encode_command(command) == block(f"example-{number}-command").encode("utf-8")
    ours_payload, ours_hash = seal_payload(prev, number, 1, encode_command(command))
    assert (ours_payload, ours_hash) == (payload, digest)
    assert encode_frame(ours_payload) == frame


async def test_a_store_writes_the_documented_bytes(tmp_path: Path) -> None:
    async with await LogStore.open(tmp_path) as store:
        await store.append(example_commands(), term=1)
        segment = store.segment_paths[0]
    first = from_the_document(1, bytes(32))
    second = from_the_document(2, first[1])
    header = encode_segment_header(SegmentHeader(1, bytes(32)))
    documented = ["454e474e53454701", "0001", "0000", "0000000000000001", "00" * 32, "32fedf80"]
    assert header.hex() == "".join(documented)
    expected = header + first[2] + second[2]
    assert len(expected) == 1386
    assert segment.read_bytes() == expected
