"""Tampering: every kind of edit to a log is caught by `engenho audit verify`, which names the
first bad entry, except a rewrite with every later hash recomputed (which needs a witness)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engenho.log import LogStore, verify_log
from engenho.log.entry import seal_payload, split_payload
from engenho.log.framing import SEGMENT_HEADER, SegmentHeader, encode_frame, encode_segment_header

from .helpers import command


def audit(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engenho", "audit", "verify", "--data-dir", str(data_dir), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def make_log(data_dir: Path, count: int) -> Path:
    log_dir = data_dir / "log"
    async with await LogStore.open(log_dir) as log:
        for i in range(count):
            await log.append([command(i, size=20 + 7 * i)], term=1 + i // 3)
        log.commit_to(count)
    return log_dir


def frames(segment: Path) -> list[bytes]:
    data = segment.read_bytes()
    out, pos = [], SEGMENT_HEADER.size
    while pos < len(data):
        end = pos + 12 + int.from_bytes(data[pos + 4 : pos + 8], "big")
        out.append(data[pos:end])
        pos = end
    return out


def rewrite(segment: Path, records: list[bytes]) -> None:
    segment.write_bytes(segment.read_bytes()[: SEGMENT_HEADER.size] + b"".join(records))


async def test_an_intact_log_verifies(tmp_path: Path) -> None:
    log_dir = await make_log(tmp_path, 6)
    result = audit(tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["verified"] == 6 and report["head_index"] == 6
    async with await LogStore.open(log_dir) as log:
        assert report["head_hash"] == log.last_hash.hex()
    human = audit(tmp_path)
    assert human.returncode == 0
    assert "verified 6 entries" in human.stdout and report["head_hash"] in human.stdout
    assert audit(tmp_path, "--deep").returncode == 0


async def test_every_single_byte_flip_is_detected(tmp_path: Path) -> None:
    log_dir = await make_log(tmp_path, 4)
    segment = log_dir / "00000000000000000001.seg"
    original = segment.read_bytes()
    boundaries = [SEGMENT_HEADER.size]
    for frame in frames(segment):
        boundaries.append(boundaries[-1] + len(frame))
    for offset in range(len(original)):
        damaged = bytearray(original)
        damaged[offset] ^= 0x01
        segment.write_bytes(bytes(damaged))
        report = verify_log(log_dir)
        assert report.failure is not None, f"flip at byte {offset} went unnoticed"
        record = sum(1 for b in boundaries[:-1] if b <= offset)
        assert report.failure.index == max(record, 1), offset
    segment.write_bytes(original)
    assert verify_log(log_dir).ok


async def test_cli_names_the_first_bad_entry(tmp_path: Path) -> None:
    log_dir = await make_log(tmp_path, 5)
    segment = log_dir / "00000000000000000001.seg"
    data = bytearray(segment.read_bytes())
    third = SEGMENT_HEADER.size + sum(len(f) for f in frames(segment)[:2])
    data[third + 100] ^= 0xFF
    segment.write_bytes(bytes(data))
    result = audit(tmp_path)
    assert result.returncode == 1
    assert f"entry 3 ({segment.name}, byte {third})" in result.stderr
    as_json = json.loads(audit(tmp_path, "--json").stdout)
    assert as_json["ok"] is False
    assert as_json["failure"]["index"] == 3 and as_json["failure"]["offset"] == third


async def test_deleting_a_record(tmp_path: Path) -> None:
    log_dir = await make_log(tmp_path, 5)
    segment = log_dir / "00000000000000000001.seg"
    records = frames(segment)
    rewrite(segment, records[:2] + records[3:])
    failure = verify_log(log_dir).failure
    assert failure is not None and failure.index == 3
    assert "holds index 4 where 3 was expected" in failure.reason


async def test_swapping_two_records(tmp_path: Path) -> None:
    log_dir = await make_log(tmp_path, 5)
    segment = log_dir / "00000000000000000001.seg"
    records = frames(segment)
    records[1], records[2] = records[2], records[1]
    rewrite(segment, records)
    failure = verify_log(log_dir).failure
    assert failure is not None and failure.index == 2


@pytest.mark.parametrize("keep", [2, 3])
async def test_truncating_in_the_middle(tmp_path: Path, keep: int) -> None:
    log_dir = await make_log(tmp_path, 5)
    segment = log_dir / "00000000000000000001.seg"
    records = frames(segment)
    # Cut after `keep` whole records, or in the middle of the next one.
    cut = records[:keep] + ([records[keep][:30]] if keep == 3 else [])
    rewrite(segment, cut)
    failure = verify_log(log_dir).failure
    assert failure is not None and failure.index == keep + 1
    assert "committed entries are missing" in failure.reason
    assert audit(tmp_path).returncode == 1


async def test_a_rewrite_with_every_later_hash_recomputed_needs_a_witness(tmp_path: Path) -> None:
    """The chain alone cannot catch this; the changed head hash is what a witness would see."""
    log_dir = await make_log(tmp_path, 5)
    segment = log_dir / "00000000000000000001.seg"
    before = verify_log(log_dir)
    records = frames(segment)
    prev = bytes(32)
    forged = []
    for number, record in enumerate(records, start=1):
        fields = split_payload(record[12:])
        assert fields is not None
        body = fields.command_bytes
        if number == 2:
            body = body.replace(b'"admin"', b'"mallory"')
        payload, prev = seal_payload(prev, fields.index, fields.term, body)
        forged.append(encode_frame(payload))
    segment.write_bytes(encode_segment_header(SegmentHeader(1, bytes(32))) + b"".join(forged))
    after = verify_log(log_dir)
    assert after.ok, "a fully recomputed chain verifies: this is the documented limit"
    assert after.head_index == before.head_index
    assert after.head_hash != before.head_hash, "an outside record of the head hash catches it"
