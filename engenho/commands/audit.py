"""``engenho audit``: check the log's integrity.

``engenho audit verify --data-dir DIR [--json] [--deep]`` streams every segment and checks
framing, checksums, index continuity and the hash chain. Exit status 0 when the log verifies,
1 on any corruption or tampering (naming the first bad entry, its segment and byte offset).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from engenho.log import VerifyReport, verify_log
from engenho.log.verify import log_size
from engenho.paths import DataDir, default_data_dir

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = subparsers.add_parser("audit", help="check the log's integrity")
    commands = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    verify = commands.add_parser(
        "verify", help="verify framing, checksums, index continuity and the hash chain"
    )
    verify.add_argument("--data-dir", type=Path, default=default_data_dir())
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    verify.add_argument(
        "--deep", action="store_true", help="also decode every command and check canonical form"
    )
    verify.set_defaults(handler=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    log_dir = DataDir(args.data_dir).log
    console = Console(stderr=True)
    show_progress = not args.json and console.is_terminal
    if show_progress:
        with Progress(
            TextColumn("verifying"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("verify", total=log_size(log_dir) if log_dir.exists() else 0)
            report = verify_log(
                log_dir, deep=args.deep, on_bytes=lambda n: progress.advance(task, n)
            )
    else:
        report = verify_log(log_dir, deep=args.deep)
    if args.json:
        print(json.dumps(report.to_json(), sort_keys=True))
    else:
        _print_summary(report)
    return 0 if report.ok else 1


def _print_summary(report: VerifyReport) -> None:
    out = sys.stdout
    rate = report.verified / report.seconds if report.seconds > 0 else 0.0
    mb = report.bytes / 1e6
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if report.failure is not None:
        print(f"FAILED: {report.failure}", file=sys.stderr)
        print(f"verified {report.verified} entries before the failure", file=out)
        return
    mb_rate = mb / max(report.seconds, 1e-9)
    print(
        f"verified {report.verified} entries in {report.segments} segment(s), {mb:.1f} MB, "
        f"in {report.seconds:.3f} s ({rate:,.0f} entries/s, {mb_rate:,.0f} MB/s)",
        file=out,
    )
    print(f"head index   {report.head_index}", file=out)
    print(f"head term    {report.head_term}", file=out)
    print(f"head hash    {report.head_hash.hex()}", file=out)
    print(f"commit index {report.commit_index}", file=out)
