"""``engenho projections``: inspect and rebuild the SQL projections of a data directory.

``engenho projections digest --data-dir DIR [--database-url URL]`` brings the projections up to
the log and prints the digest of the projected state on its last line.
``engenho projections rebuild --data-dir DIR [--database-url URL]`` drops the projections and
applies the whole log again, with a progress bar and a summary; the digest does not change.

Both hold the log's directory lock while they run, which keeps a running server out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvloop
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from engenho.log import LogStore
from engenho.paths import DataDir, default_data_dir
from engenho.projections import Projections, RebuildSummary, rebuild, sqlite_url

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    projections = subparsers.add_parser("projections", help="inspect or rebuild the projections")
    commands = projections.add_subparsers(
        dest="projections_command", metavar="COMMAND", required=True
    )
    digest = commands.add_parser(
        "digest", help="bring the projections up to the log and print their digest"
    )
    rebuild_parser = commands.add_parser(
        "rebuild", help="drop the projections and apply the whole log again"
    )
    for parser in (digest, rebuild_parser):
        parser.add_argument("--data-dir", type=Path, default=default_data_dir())
        parser.add_argument(
            "--database-url",
            help="SQLAlchemy URL of the projection database "
            "(default: SQLite at DATA_DIR/projections.db)",
        )
    digest.set_defaults(handler=run_digest)
    rebuild_parser.set_defaults(handler=run_rebuild)


def _database_url(args: argparse.Namespace, data_dir: DataDir) -> str:
    return str(args.database_url or sqlite_url(data_dir.projections_db))


async def _open_log(data_dir: DataDir) -> LogStore:
    log = await LogStore.open(data_dir.log)
    # A node is a Raft group of one voter today: every durable entry is committed (the
    # persisted commit index may trail by a few milliseconds after a crash).
    log.commit_to(log.last_index)
    return log


def run_digest(args: argparse.Namespace) -> int:
    data_dir = DataDir(args.data_dir)

    async def digest() -> tuple[int, str]:
        async with await _open_log(data_dir) as log:
            url = _database_url(args, data_dir)
            async with await Projections.open(url, log) as projections:
                await projections.wait_for(log.commit_index)
                return projections.applied_index, await projections.digest()

    applied, value = uvloop.run(digest())
    print(f"applied index {applied}")
    print(value)
    return 0


def run_rebuild(args: argparse.Namespace) -> int:
    data_dir = DataDir(args.data_dir)
    console = Console(stderr=True)

    async def rebuild_all() -> RebuildSummary:
        async with await _open_log(data_dir) as log:
            url = _database_url(args, data_dir)
            with Progress(
                TextColumn("rebuilding"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
                disable=not console.is_terminal,
            ) as progress:
                task = progress.add_task("rebuild", total=log.commit_index)
                return await rebuild(
                    url, log, progress=lambda done, _total: progress.update(task, completed=done)
                )

    summary = uvloop.run(rebuild_all())
    rate = summary.entries / summary.seconds if summary.seconds > 0 else 0.0
    out = sys.stdout
    print(
        f"rebuilt {summary.objects} objects from {summary.entries} entries "
        f"in {summary.seconds:.2f} s ({rate:,.0f} entries/s)",
        file=out,
    )
    print(summary.digest, file=out)
    return 0
