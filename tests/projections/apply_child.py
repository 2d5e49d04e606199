"""Child process for the projection crash test: apply a log and report progress until killed.

Usage: ``python apply_child.py DATA_DIR BATCH``. Prints ``ready`` once applying, then the
applied index every few milliseconds (each printed index is committed), and ``done`` at the end.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engenho.log import LogStore
from engenho.paths import DataDir
from engenho.projections import ProjectionOptions, Projections, sqlite_url


async def main(data_dir: DataDir, batch: int) -> None:
    async with await LogStore.open(data_dir.log) as log:
        log.commit_to(log.last_index)  # one voter: every durable entry is committed
        options = ProjectionOptions(max_batch_entries=batch)
        url = sqlite_url(data_dir.projections_db)
        async with await Projections.open(url, log, options=options) as projections:
            os.write(1, b"ready\n")
            while projections.applied_index < log.last_index:
                os.write(1, f"{projections.applied_index}\n".encode())
                await asyncio.sleep(0.002)
            os.write(1, b"done\n")


if __name__ == "__main__":
    asyncio.run(main(DataDir(Path(sys.argv[1])), int(sys.argv[2])))
