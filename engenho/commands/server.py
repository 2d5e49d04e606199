"""``engenho server``: run a single-node cluster.

``engenho server [--data-dir DIR] [--listen HOST:PORT] [--node-name NAME]
[--runtime fake|oci|wasm|none] [--database-url URL]``
"""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

from engenho.paths import default_data_dir
from engenho.server import RUNTIMES, ServerOptions, parse_listen, run_server

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    server = subparsers.add_parser("server", help="run a single-node engenho cluster")
    server.add_argument("--data-dir", type=Path, default=default_data_dir())
    server.add_argument(
        "--listen", default="127.0.0.1:6443", help="HOST:PORT (default %(default)s)"
    )
    server.add_argument("--node-name", default=socket.gethostname() or "engenho")
    server.add_argument("--runtime", choices=RUNTIMES, default="fake")
    server.add_argument(
        "--database-url",
        default=None,
        help="SQLAlchemy URL of the projections (default: SQLite at DATA_DIR/projections.db)",
    )
    server.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        raise SystemExit(f"engenho server: {exc}") from exc
    options = ServerOptions(
        data_dir=args.data_dir,
        host=host,
        port=port,
        node_name=args.node_name,
        runtime=args.runtime,
        database_url=args.database_url,
    )
    return run_server(options)
