"""CRI container log files: the record format, the writer's line splitting and size-based
rotation, and the reader's tailLines, sinceTime, timestamps, limitBytes, stream and follow
(through rotations, until the container stops). Whatever bytes a container writes, reading
the log back gives exactly those bytes."""

from __future__ import annotations

import asyncio
import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.node_agent.logs import (
    STDERR,
    STDOUT,
    CriLogWriter,
    LogOptions,
    LogRecord,
    encode_record,
    format_timestamp,
    parse_record,
    parse_timestamp,
    read_log,
    rotated_paths,
)

RECORD = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] .*$")


def ticking(start: int = 1_700_000_000_000_000_000, step: int = 1_000_000_000):
    counter = itertools.count()
    return lambda: start + next(counter) * step


async def read_all(path: Path, options: LogOptions | None = None) -> bytes:
    options = options if options is not None else LogOptions()
    return b"".join([chunk async for chunk in read_log(path, options)])


def test_records_look_like_containerds(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = CriLogWriter(path, clock=lambda: 1_475_713_029_669_794_202)
    writer.write(STDOUT, b"hello world\nsecond")
    writer.write(STDERR, b"oops\n")
    writer.close()
    lines = path.read_bytes().splitlines()
    assert lines == [
        b"2016-10-06T00:17:09.669794202Z stdout F hello world",
        b"2016-10-06T00:17:09.669794202Z stderr F oops",
        b"2016-10-06T00:17:09.669794202Z stdout P second",
    ]
    assert all(RECORD.match(line) for line in lines)
    assert parse_record(lines[2]) == LogRecord(1_475_713_029_669_794_202, STDOUT, True, b"second")


def test_timestamps_round_trip() -> None:
    ns = 1_475_713_029_669_794_000
    assert format_timestamp(ns) == "2016-10-06T00:17:09.669794000Z"
    assert format_timestamp(ns, trim=True) == "2016-10-06T00:17:09.669794Z"
    assert format_timestamp(1_475_713_029_000_000_000, trim=True) == "2016-10-06T00:17:09Z"
    assert parse_timestamp("2016-10-06T00:17:09.669794Z") == ns
    assert parse_timestamp("2016-10-06T02:17:09.669794+02:00") == ns
    with pytest.raises(ValueError, match="RFC3339"):
        parse_timestamp("yesterday")


def test_long_lines_are_split_into_partial_records(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = CriLogWriter(path, max_line=4)
    writer.write(STDOUT, b"abcdefghij\nxy\n")
    writer.close()
    tags = [parse_record(line).partial for line in path.read_bytes().splitlines()]
    assert tags == [True, True, False, False]


@given(
    st.lists(st.binary(max_size=40).filter(lambda b: b"\r" not in b), max_size=12),
    st.integers(2, 64),
)
def test_reading_gives_back_exactly_what_was_written(chunks: list[bytes], max_line: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "0.log"
        writer = CriLogWriter(path, max_line=max_line)
        for chunk in chunks:
            writer.write(STDOUT, chunk)
        writer.close()
        assert asyncio.run(read_all(path)) == b"".join(chunks)


async def test_tail_since_timestamps_limit_and_stream(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    clock = ticking()
    writer = CriLogWriter(path, clock=clock)
    for n in range(5):
        writer.write(STDOUT if n % 2 == 0 else STDERR, f"line {n}\n".encode())
    writer.close()
    assert await read_all(path) == b"".join(f"line {n}\n".encode() for n in range(5))
    assert await read_all(path, LogOptions(tail_lines=2)) == b"line 3\nline 4\n"
    assert await read_all(path, LogOptions(tail_lines=0)) == b""
    assert await read_all(path, LogOptions(tail_lines=99)) == await read_all(path)
    since = 1_700_000_000_000_000_000 + 3 * 1_000_000_000
    assert await read_all(path, LogOptions(since_ns=since)) == b"line 3\nline 4\n"
    stamped = await read_all(path, LogOptions(tail_lines=1, timestamps=True))
    assert stamped == b"2023-11-14T22:13:24Z line 4\n"
    assert await read_all(path, LogOptions(limit_bytes=9)) == b"line 0\nli"
    assert await read_all(path, LogOptions(stream=STDERR)) == b"line 1\nline 3\n"
    assert await read_all(tmp_path / "missing.log") == b""


async def test_timestamps_prefix_each_line_not_each_part(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = CriLogWriter(path, max_line=3, clock=lambda: 1_000_000_000)
    writer.write(STDOUT, b"abcdef\n")
    writer.close()
    assert await read_all(path, LogOptions(timestamps=True)) == b"1970-01-01T00:00:01Z abcdef\n"


def test_rotation_keeps_max_files(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = CriLogWriter(path, max_bytes=200, max_files=3)
    for n in range(40):
        writer.write(STDOUT, f"message number {n:03d}\n".encode())
    writer.close()
    rotated = rotated_paths(path, 3)
    assert [p.name for p in rotated] == ["0.log.2", "0.log.1"]
    assert all(p.exists() for p in rotated)
    assert not path.with_name("0.log.3").exists()
    assert all(p.stat().st_size <= 200 for p in [*rotated, path])
    # The live file ends with the last line; the rotated ones hold the lines before it.
    last = [parse_record(line).content for line in path.read_bytes().splitlines()]
    assert last[-1] == b"message number 039"
    before = [parse_record(line).content for line in rotated[-1].read_bytes().splitlines()]
    assert int(before[-1].split()[-1]) == int(last[0].split()[-1]) - 1


async def test_follow_reads_on_through_rotation_until_the_container_stops(
    tmp_path: Path,
) -> None:
    path = tmp_path / "0.log"
    writer = CriLogWriter(path, max_bytes=120, max_files=2)
    writer.write(STDOUT, b"before\n")
    running = True
    received: list[bytes] = []

    async def follow() -> None:
        options = LogOptions(follow=True)
        # One chunk at a time, as they arrive: the test watches ``received`` grow.
        stream = read_log(path, options, still_running=lambda: running, poll_interval=0.01)
        async for chunk in stream:
            received.append(chunk)  # noqa: PERF401

    task = asyncio.create_task(follow(), name="follow")

    async def until(text: bytes) -> None:
        async with asyncio.timeout(10):
            while text not in b"".join(received):
                await asyncio.sleep(0.01)

    await until(b"before\n")
    for n in range(6):  # several rotations
        writer.write(STDOUT, f"after {n}\n".encode())
        await until(f"after {n}\n".encode())
    writer.write(STDOUT, b"last words\n")
    running = False
    async with asyncio.timeout(10):
        await task
    writer.close()
    assert (
        b"".join(received)
        == b"before\n" + b"".join(f"after {n}\n".encode() for n in range(6)) + b"last words\n"
    )


def test_encode_and_parse_are_inverse() -> None:
    record = LogRecord(123_456_789_012_345_678, STDERR, True, b"x y  z")
    assert parse_record(encode_record(record)) == record
    with pytest.raises(ValueError, match="not a CRI log record"):
        parse_record(b"garbage")
