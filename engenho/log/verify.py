"""Read-only verification of a log directory: framing, checksums, continuity and the chain.

Unlike opening a :class:`~engenho.log.store.LogStore`, verification never changes a byte: a
torn tail is reported, not truncated, and the directory lock is not taken, so a running
server's log can be verified in place (its last record may then look torn).

The chain alone cannot reveal a history whose every later hash was recomputed after an edit;
that needs signed checkpoints held by a witness (``docs/log-format.md``, "What the chain
proves").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attrs import frozen

from engenho.log.commit_state import read_commit_index
from engenho.log.entry import GENESIS_HASH
from engenho.log.errors import CorruptLogError
from engenho.log.framing import decode_index
from engenho.log.segments import list_segments, walk_segment

__all__ = ["VerifyFailure", "VerifyReport", "log_size", "verify_log"]


@frozen
class VerifyFailure:
    """The first problem found: the entry it concerns, where it is, and why."""

    index: int
    segment: str | None
    offset: int | None
    reason: str

    def __str__(self) -> str:
        where = f" ({self.segment}, byte {self.offset})" if self.segment else ""
        return f"entry {self.index}{where}: {self.reason}"


@frozen
class VerifyReport:
    verified: int
    head_index: int
    head_hash: bytes
    head_term: int
    commit_index: int
    segments: int
    bytes: int
    seconds: float
    torn_tail_bytes: int = 0
    warnings: tuple[str, ...] = ()
    failure: VerifyFailure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "verified": self.verified,
            "head_index": self.head_index,
            "head_hash": self.head_hash.hex(),
            "head_term": self.head_term,
            "commit_index": self.commit_index,
            "segments": self.segments,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 6),
            "torn_tail_bytes": self.torn_tail_bytes,
            "warnings": list(self.warnings),
            "failure": None
            if self.failure is None
            else {
                "index": self.failure.index,
                "segment": self.failure.segment,
                "offset": self.failure.offset,
                "reason": self.failure.reason,
            },
        }


def log_size(log_dir: Path) -> int:
    """Total bytes of the segment files (the work a verification will do)."""
    return sum(path.stat().st_size for _, path in list_segments(log_dir))


def verify_log(
    log_dir: Path, *, deep: bool = False, on_bytes: Callable[[int], None] | None = None
) -> VerifyReport:
    """Verify every segment of ``log_dir`` from index 1; stop at the first failure."""
    started = time.perf_counter()
    found = list_segments(log_dir)
    commit = read_commit_index(log_dir / "commit")
    expected, prev, term = 1, GENESIS_HASH, 0
    verified = total = torn = 0
    warnings: list[str] = []
    failure: VerifyFailure | None = None

    def report() -> VerifyReport:
        return VerifyReport(
            verified=verified,
            head_index=expected - 1,
            head_hash=prev,
            head_term=term,
            commit_index=commit,
            segments=len(found),
            bytes=total,
            seconds=time.perf_counter() - started,
            torn_tail_bytes=torn,
            warnings=tuple(warnings),
            failure=failure,
        )

    if not found:
        failure = VerifyFailure(1, None, None, f"no log segments in {log_dir}")
        return report()
    for number, (first, path) in enumerate(found):
        is_last = number == len(found) - 1
        size = path.stat().st_size
        total += size
        if first != expected:
            failure = VerifyFailure(
                expected,
                path.name,
                0,
                f"segment name says index {first}; the log continues at {expected}",
            )
            return report()
        try:
            walked = walk_segment(
                path,
                expected_first=expected,
                expected_prev=prev,
                prev_term=term,
                deep=deep,
                on_bytes=on_bytes,
            )
        except CorruptLogError as exc:
            failure = VerifyFailure(exc.index, path.name, exc.offset, exc.reason)
            return report()
        verified += len(walked.offsets)
        expected, prev, term = walked.next_index, walked.last_hash, walked.last_term
        damage = walked.damage
        if damage is not None:
            if not is_last or not damage.is_torn_tail:
                follows = (
                    f"; readable records follow at byte {damage.later_frame_offset}"
                    if damage.later_frame_offset is not None
                    else ""
                )
                failure = VerifyFailure(
                    expected, path.name, damage.offset, damage.problem.value + follows
                )
                return report()
            torn = size - damage.offset
            warnings.append(
                f"torn tail: {torn} bytes at byte {damage.offset} of {path.name} "
                f"(entry {expected} never completed; a restart truncates it)"
            )
        if not is_last and not walked.offsets:
            failure = VerifyFailure(
                expected, path.name, walked.end_offset, "sealed segment is empty"
            )
            return report()
        warnings.extend(_sidecar_warnings(path, walked.offsets, walked.last_hash, size, is_last))
    if commit > expected - 1:
        failure = VerifyFailure(
            expected,
            found[-1][1].name,
            found[-1][1].stat().st_size - torn,
            f"commit index {commit} was recorded but the log ends at {expected - 1}: "
            "committed entries are missing",
        )
    return report()


def _sidecar_warnings(
    path: Path, offsets: Any, last_hash: bytes, size: int, is_last: bool
) -> list[str]:
    sidecar_path = path.with_suffix(".idx")
    if not sidecar_path.exists():
        return [] if is_last else [f"{sidecar_path.name} is missing (rebuilt on open)"]
    sidecar = decode_index(sidecar_path.read_bytes())
    if (
        sidecar is None
        or sidecar.segment_bytes != size
        or sidecar.last_hash != last_hash
        or list(sidecar.offsets) != list(offsets)
    ):
        return [f"{sidecar_path.name} does not match its segment (rebuilt on open)"]
    return []
