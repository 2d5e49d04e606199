"""``engenho cluster-config``: the typed k3s cluster description.

``engenho cluster-config example [-o yaml|json]`` prints a fully populated, valid ClusterConfig.
``engenho cluster-config validate FILE`` exits 0, or 1 listing every problem by field path.
``engenho cluster-config render FILE --out DIR [--renderer k3s|engenho] [--summary-json]``
validates, then writes the renderer's files under DIR (k3s: ``config.yaml``, ``cmdline.txt``,
``manifests/*.yaml``); the same FILE always gives the same bytes. With ``--summary-json`` it
prints what it wrote (paths, sizes, SHA-256) as one JSON object.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engenho.config import (
    RENDERERS,
    ClusterConfig,
    ConfigError,
    InvalidConfigError,
    cluster_config_document,
    dump_json,
    dump_yaml,
    example_cluster_config,
    load_cluster_config,
    write_rendering,
)

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser("cluster-config", help="validate and render a k3s ClusterConfig")
    commands = group.add_subparsers(dest="cluster_config_command", metavar="COMMAND", required=True)
    example = commands.add_parser("example", help="print a fully populated, valid ClusterConfig")
    example.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    example.set_defaults(handler=run_example)
    validate = commands.add_parser("validate", help="check a ClusterConfig file")
    validate.add_argument("file", type=Path, metavar="FILE")
    validate.set_defaults(handler=run_validate)
    render = commands.add_parser("render", help="write the files a ClusterConfig renders to")
    render.add_argument("file", type=Path, metavar="FILE")
    render.add_argument("--out", type=Path, required=True, metavar="DIR")
    render.add_argument("--renderer", choices=sorted(RENDERERS), default="k3s")
    render.add_argument(
        "--summary-json", action="store_true", help="print what was written as one JSON object"
    )
    render.set_defaults(handler=run_render)


def run_example(args: argparse.Namespace) -> int:
    document = cluster_config_document(example_cluster_config())
    sys.stdout.write(dump_json(document) if args.output == "json" else dump_yaml(document))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    config = _load(args.file)
    if config is None:
        return 1
    print(f"{args.file}: valid ClusterConfig for cluster {config.cluster_name}")
    return 0


def run_render(args: argparse.Namespace) -> int:
    config = _load(args.file)
    if config is None:
        return 1
    rendering = RENDERERS[args.renderer].render(config)
    written = write_rendering(rendering, args.out)
    for note in rendering.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.summary_json:
        summary = rendering.summary(config) | {"out": str(args.out)}
        sys.stdout.write(dump_json(summary))
    else:
        print(f"wrote {len(written)} files to {args.out}", file=sys.stderr)
    return 0


def _load(path: Path) -> ClusterConfig | None:
    try:
        return load_cluster_config(path)
    except InvalidConfigError as exc:
        count = len(exc.problems)
        print(f"{path}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
    except ConfigError as exc:
        print(f"{path}: {exc}" if str(path) not in str(exc) else str(exc), file=sys.stderr)
    return None
