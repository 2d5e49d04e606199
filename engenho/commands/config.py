"""``engenho config``: engenho's own runtime configuration.

``engenho config show [--config FILE] [--tier default|file|env|flag] [-o yaml|json]
[--data-dir ...]`` prints the effective configuration, the file read, and the source (tier and
origin) of every value; ``--tier`` stops at that tier. It takes the same configuration flags
as ``engenho server``, so it shows what the server would run with.
``engenho config validate FILE`` checks FILE over the built-in defaults: exit 0, or 1 listing
every problem by field path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engenho.config import (
    ConfigError,
    InvalidConfigError,
    Tier,
    add_config_arguments,
    config_flags,
    dump_json,
    dump_yaml,
    resolve_config,
    validate_config_file,
)

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser("config", help="show or validate engenho's configuration")
    commands = group.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    show = commands.add_parser(
        "show", help="print the effective configuration and where each value came from"
    )
    show.add_argument(
        "--tier",
        choices=[t.value for t in Tier],
        default=Tier.FLAG.value,
        help="apply the tiers up to this one (default: all)",
    )
    show.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    add_config_arguments(show)
    show.set_defaults(handler=run_show)
    validate = commands.add_parser("validate", help="check a configuration file")
    validate.add_argument("file", type=Path, metavar="FILE")
    validate.set_defaults(handler=run_validate)


def run_show(args: argparse.Namespace) -> int:
    try:
        resolved = resolve_config(
            flags=config_flags(args), config_file=args.config, through=Tier(args.tier)
        )
    except ConfigError as exc:
        _report(exc)
        return 1
    document = resolved.document()
    sys.stdout.write(dump_json(document) if args.output == "json" else dump_yaml(document))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    try:
        validate_config_file(args.file)
    except ConfigError as exc:
        _report(exc)
        return 1
    print(f"{args.file}: valid engenho configuration")
    return 0


def _report(exc: ConfigError) -> None:
    if isinstance(exc, InvalidConfigError):
        count = len(exc.problems)
        print(f"invalid configuration: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
    else:
        print(str(exc), file=sys.stderr)
