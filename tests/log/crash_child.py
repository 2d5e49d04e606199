"""Child process for the crash test: append under load and report every acknowledged entry.

Usage: ``python crash_child.py LOG_DIR SEED MAX_SIZE``. Writes ``index hash_hex`` on stdout for each
entry whose append returned (was acknowledged), then keeps going until it is killed.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engenho.log import LogOptions, LogStore
from tests.log.helpers import command


async def main(directory: Path, seed: int, max_size: int) -> None:
    rng = random.Random(seed)
    log = await LogStore.open(directory, LogOptions(segment_bytes=4 * 1024 * 1024))
    counter = log.last_index * 10

    async def proposer() -> None:
        nonlocal counter
        while True:
            counter += 1
            batch = [
                command(counter * 7 + k, size=rng.randrange(10, max_size))
                for k in range(rng.randrange(1, 4))
            ]
            entries = await log.append(batch, term=1)
            log.commit_to(max(log.commit_index, entries[-1].index))
            os.write(1, "".join(f"{e.index} {e.hash.hex()}\n" for e in entries).encode())

    os.write(1, b"ready\n")
    async with asyncio.TaskGroup() as group:
        for _ in range(32):
            group.create_task(proposer())


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
