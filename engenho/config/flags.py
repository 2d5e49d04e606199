"""The flag tier: command-line flags that set configuration values.

One table says which flag sets which value; ``add_config_arguments`` puts those flags (and
``--config``) on any argparse parser with no defaults of their own, so that an absent flag
leaves the value to the tiers below, and ``config_flags`` reads back the ones given.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attrs import frozen

from engenho.config.engenho_schema import Runtime

__all__ = ["SERVER_FLAGS", "ConfigFlag", "add_config_arguments", "config_flags", "flag_for"]


@frozen
class ConfigFlag:
    flag: str
    path: str
    """The dotted configuration path the flag sets."""
    help: str
    type: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


SERVER_FLAGS: tuple[ConfigFlag, ...] = (
    ConfigFlag("--data-dir", "server.data_dir", "where the log, projections and PKI live", Path),
    ConfigFlag("--listen", "server.listen", "HOST:PORT of the API"),
    ConfigFlag("--node-name", "node_agent.node_name", "this node's name"),
    ConfigFlag(
        "--runtime",
        "node_agent.runtime",
        "how pods are run",
        choices=tuple(r.value for r in Runtime),
    ),
    ConfigFlag(
        "--database-url",
        "server.database_url",
        "SQLAlchemy URL of the projections (default: SQLite at DATA_DIR/projections.db)",
    ),
)


def add_config_arguments(
    parser: argparse.ArgumentParser, flags: tuple[ConfigFlag, ...] = SERVER_FLAGS
) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="configuration file (default: $ENGENHO_CONFIG, "
        "$XDG_CONFIG_HOME/engenho/engenho.yaml, /etc/engenho/engenho.yaml)",
    )
    for flag in flags:
        parser.add_argument(
            flag.flag,
            dest=flag.dest,
            type=flag.type,
            choices=flag.choices,
            default=None,
            help=f"{flag.help} (sets {flag.path})",
        )


def config_flags(
    args: argparse.Namespace, flags: tuple[ConfigFlag, ...] = SERVER_FLAGS
) -> dict[str, object]:
    """The values of the flags given, by configuration path."""
    given = {flag.path: getattr(args, flag.dest, None) for flag in flags}
    return {path: value for path, value in given.items() if value is not None}


def flag_for(path: str, flags: tuple[ConfigFlag, ...] = SERVER_FLAGS) -> str:
    """The flag that sets ``path``, for provenance; the path itself for one outside the table."""
    return next((f.flag for f in flags if f.path == path), path)
