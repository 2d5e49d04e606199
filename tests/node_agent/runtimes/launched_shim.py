"""A stand-in shim for the launcher tests (``test_shim_launcher``): told by files in its
directory what to do. ``fail``: die before reporting, saying so on stderr. Otherwise detach,
report its pid and run until ``stop`` appears."""

from __future__ import annotations

import os
import sys
import time

from engenho.node_agent.runtimes.shim_process import detach, directory_argument, report

MODULE = "tests.node_agent.runtimes.launched_shim"


def main(argv: list[str] | None = None) -> int:
    directory = directory_argument(argv, MODULE)
    if directory is None:
        return 2
    if (directory / "fail").exists():
        print("told to fail", file=sys.stderr)
        return 1
    channel = detach()
    report(channel, {"pid": os.getpid(), "started_at": time.time_ns()})
    while not (directory / "stop").exists():
        time.sleep(0.02)
    return 0


if __name__ == "__main__":
    sys.exit(main())
