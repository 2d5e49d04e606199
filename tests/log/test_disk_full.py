"""A write the file system refuses (here: past RLIMIT_FSIZE, the same path as a full disk) fails
that batch with LogUnavailableError, leaves nothing of it behind, and the log stays usable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from engenho.log import LogStore, verify_log

CHILD = textwrap.dedent(
    """
    import asyncio, json, resource, signal, sys
    sys.path.insert(0, sys.argv[2])
    from engenho.log import LogStore, LogUnavailableError
    from tests.log.helpers import command

    async def main():
        log = await LogStore.open(sys.argv[1])
        # Reserve headroom for the segment header and the lock and commit files.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        acked, failures = [], []
        for i in range(200):
            try:
                entries = await log.append([command(i, size=900)], term=1)
            except LogUnavailableError as exc:
                failures.append(str(exc))
                break
            acked.append(entries[0].hash.hex())
            log.commit_to(entries[0].index)
        small = await log.append([command(999, size=1)], term=1)  # still fits: still works
        acked.append(small[0].hash.hex())
        log.commit_to(small[0].index)
        await log.close()
        print(json.dumps({"acked": acked, "failures": failures}))

    asyncio.run(main())
    """
)


async def test_a_refused_write_is_rolled_back(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), str(repo)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["failures"] and "append failed" in outcome["failures"][0]
    acked = outcome["acked"]
    async with await LogStore.open(tmp_path) as log:
        assert log.last_index == len(acked)
        entries = await log.read(1, len(acked))
        assert [e.hash.hex() for e in entries] == acked
    assert verify_log(tmp_path).ok
