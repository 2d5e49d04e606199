"""The ``engenho`` command.

Each subcommand group is a module of :mod:`engenho.commands` exposing
``register(subparsers)``; this module only assembles them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from engenho import __version__
from engenho.commands import (
    agent,
    audit,
    cluster_config,
    codegen,
    config,
    image,
    projections,
    server,
)

__all__ = ["build_parser", "main"]

_REGISTRARS = [
    agent.register,
    audit.register,
    cluster_config.register,
    codegen.register,
    config.register,
    image.register,
    projections.register,
    server.register,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="engenho",
        description="A Kubernetes-compatible control plane and node agent on an attested log.",
    )
    parser.add_argument("--version", action="version", version=f"engenho {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in _REGISTRARS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
