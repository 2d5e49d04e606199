"""Recovery on open: torn tails are truncated; corruption anywhere else refuses to open and
names the entry, segment file and byte offset (docs/log-format.md §10)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engenho.log import CorruptLogError, LogOptions, LogStore, verify_log
from engenho.log.framing import SEGMENT_HEADER, encode_frame

from .helpers import command

SEGMENT = "00000000000000000001.seg"


async def write_log(path: Path, count: int, *, commit: int | None = None, **options: int) -> None:
    async with await LogStore.open(path, LogOptions(**options)) as log:
        for i in range(count):
            await log.append([command(i, size=100)], term=1)
        log.commit_to(count if commit is None else commit)


def offsets(path: Path) -> list[int]:
    """Frame offsets of a segment, read with the documented layout."""
    data = path.read_bytes()
    found, pos = [], SEGMENT_HEADER.size
    while pos < len(data):
        found.append(pos)
        pos += 12 + int.from_bytes(data[pos + 4 : pos + 8], "big")
    return found


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("cut", [1, 5, 12, 40, -1])
async def test_torn_last_record_is_truncated(tmp_path: Path, cut: int) -> None:
    await write_log(tmp_path, 5, commit=4)
    segment = tmp_path / SEGMENT
    last = offsets(segment)[-1]
    size = segment.stat().st_size
    os.truncate(segment, last + cut if cut > 0 else size + cut)
    async with await LogStore.open(tmp_path) as log:
        assert log.last_index == 4
        assert segment.stat().st_size == last
        again = await log.append([command(99)], term=1)
        assert again[0].index == 5
        log.commit_to(5)
    assert verify_log(tmp_path).ok


@pytest.mark.parametrize("tail", [bytes(3000), b"\xfeENG" + bytes(20), b"garbage" * 10])
async def test_junk_after_the_last_record_is_a_torn_tail(tmp_path: Path, tail: bytes) -> None:
    await write_log(tmp_path, 3)
    segment = tmp_path / SEGMENT
    clean = segment.read_bytes()
    report = None
    with segment.open("ab") as file:
        file.write(tail)
    report = verify_log(tmp_path)
    assert report.ok and report.torn_tail_bytes == len(tail)
    async with await LogStore.open(tmp_path) as log:
        assert log.last_index == 3
    assert segment.read_bytes() == clean


async def test_damage_followed_by_readable_records_is_corruption(tmp_path: Path) -> None:
    await write_log(tmp_path, 10, commit=2)
    segment = tmp_path / SEGMENT
    third = offsets(segment)[2]
    flip(segment, third + 30)  # inside the payload: the CRC fails
    with pytest.raises(CorruptLogError) as caught:
        await LogStore.open(tmp_path)
    error = caught.value
    assert (error.index, error.segment, error.offset) == (3, segment, third)
    assert "readable records follow" in str(error)
    assert SEGMENT in str(error) and "log entry 3" in str(error)


async def test_a_torn_committed_entry_is_corruption(tmp_path: Path) -> None:
    await write_log(tmp_path, 5)  # all committed
    segment = tmp_path / SEGMENT
    last = offsets(segment)[-1]
    os.truncate(segment, last + 20)
    with pytest.raises(CorruptLogError, match="at or below the commit index 5") as caught:
        await LogStore.open(tmp_path)
    assert caught.value.index == 5


async def test_a_rewritten_record_with_a_fresh_checksum_is_refused(tmp_path: Path) -> None:
    await write_log(tmp_path, 4, commit=1)
    segment = tmp_path / SEGMENT
    data = bytearray(segment.read_bytes())
    last = offsets(segment)[-1]
    payload = bytearray(data[last + 12 :])
    payload[100] ^= 0x01  # change the command, keep the old hash
    data[last:] = encode_frame(bytes(payload))  # a valid CRC: this is no torn write
    segment.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError, match="entry hash mismatch") as caught:
        await LogStore.open(tmp_path)
    assert caught.value.index == 4


async def test_missing_committed_entries_are_detected(tmp_path: Path) -> None:
    await write_log(tmp_path, 8, segment_bytes=400)
    segments = sorted(tmp_path.glob("*.seg"))
    assert len(segments) > 2
    segments[-1].unlink()
    with pytest.raises(CorruptLogError, match="committed entries are missing"):
        await LogStore.open(tmp_path)


async def test_a_missing_middle_segment_is_detected(tmp_path: Path) -> None:
    await write_log(tmp_path, 8, segment_bytes=400)
    segments = sorted(tmp_path.glob("*.seg"))
    segments[1].unlink()
    segments[1].with_suffix(".idx").unlink()
    with pytest.raises(CorruptLogError, match="the log continues at"):
        await LogStore.open(tmp_path)


async def test_an_abandoned_rotation_is_removed(tmp_path: Path) -> None:
    await write_log(tmp_path, 4, segment_bytes=400)
    segments = sorted(tmp_path.glob("*.seg"))
    async with await LogStore.open(tmp_path) as log:
        head = log.last_index
    # A crash while creating the next segment leaves a file with a partial header.
    partial = tmp_path / f"{head + 1:020d}.seg"
    partial.write_bytes(b"ENGNSEG\x01\x00\x01")
    async with await LogStore.open(tmp_path) as log:
        assert log.last_index == head
        assert not partial.exists()
        entries = await log.append([command(100)], term=1)
        assert entries[0].index == head + 1
    assert len(sorted(tmp_path.glob("*.seg"))) == len(segments)
    assert verify_log(tmp_path).ok


async def test_corruption_in_a_sealed_segment_is_caught_when_read(tmp_path: Path) -> None:
    await write_log(tmp_path, 8, segment_bytes=1200)
    first = tmp_path / SEGMENT
    flip(first, offsets(first)[1] + 40)
    async with await LogStore.open(tmp_path, LogOptions(recent_entries=1)) as log:
        with pytest.raises(CorruptLogError) as caught:
            await log.read(1, 3)
        assert (caught.value.index, caught.value.segment) == (2, first)
    first.with_suffix(".idx").unlink()  # without a sidecar, open scans and refuses
    with pytest.raises(CorruptLogError) as caught:
        await LogStore.open(tmp_path)
    assert caught.value.index == 2


async def test_a_damaged_header_in_the_only_segment_is_refused(tmp_path: Path) -> None:
    await write_log(tmp_path, 2)
    flip(tmp_path / SEGMENT, 14)
    with pytest.raises(CorruptLogError, match="segment header"):
        await LogStore.open(tmp_path)
