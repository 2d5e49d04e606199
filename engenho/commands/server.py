"""``engenho server``: run a single-node cluster.

``engenho server [--config FILE] [--data-dir DIR] [--listen HOST:PORT] [--node-name NAME]
[--runtime fake|oci|wasm|none] [--database-url URL]``, over the tiered configuration
(engenho.config).
"""

from __future__ import annotations

import argparse

from engenho.config import ConfigError, add_config_arguments, config_flags, resolve_config
from engenho.server import ServerOptions, run_server

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    server = subparsers.add_parser(
        "server",
        help="run a single-node engenho cluster",
        description="Flags override environment variables (ENGENHO_SECTION__KEY), which "
        "override the configuration file, which overrides the defaults "
        "(`engenho config show --tier` shows where each value comes from).",
    )
    add_config_arguments(server)
    server.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = resolve_config(flags=config_flags(args), config_file=args.config).config
    except ConfigError as exc:
        raise SystemExit(f"engenho server: {exc}") from exc
    return run_server(ServerOptions.from_config(config))
