"""``engenho projections digest`` and ``rebuild`` as a user runs them (real subprocesses): the
digest is printed on the last line, catches up with the log first, and survives a rebuild."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engenho.log import LogStore
from engenho.paths import DataDir
from engenho.projections import Projections, sqlite_url
from tests.projections.helpers import create, delete, propose, update


def engenho(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "engenho", "--log-level", "WARNING", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_digest_and_rebuild(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path)
    async with await LogStore.open(data_dir.log) as log:
        await propose(log, [create(f"cm-{i}", v=str(i)) for i in range(40)])
        async with await Projections.open(sqlite_url(data_dir.projections_db), log) as live:
            await live.wait_for(40)
        # Entries the projections have not applied yet: the command catches up first.
        entries = await propose(log, [update("cm-1", v="x"), delete("cm-2")])
        async with await Projections.open(sqlite_url(tmp_path / "reference.db"), log) as ref:
            await ref.wait_for(entries[-1].index)
            expected = await ref.digest()

    before = engenho("projections", "digest", "--data-dir", str(tmp_path)).splitlines()
    assert before[-1] == expected
    assert before[0] == "applied index 42"

    rebuilt = engenho("projections", "rebuild", "--data-dir", str(tmp_path)).splitlines()
    assert rebuilt[-1] == expected
    assert "39 objects from 42 entries" in rebuilt[0]

    url = sqlite_url(tmp_path / "elsewhere.db")
    args = ("--data-dir", str(tmp_path), "--database-url", url)
    assert engenho("projections", "digest", *args).splitlines()[-1] == expected
    assert engenho("projections", "digest", "--data-dir", str(tmp_path)).splitlines()[-1] == (
        expected
    )
