"""``engenho codegen``: generate the typed schema from the upstream OpenAPI v3 documents.

``engenho codegen --specs DIR [--out DIR] [--sources FILE] [--check]`` reads the documents
listed in ``engenho/schema/SOURCES.blake3`` from DIR (refusing any whose BLAKE3 digest
differs), and writes the models, schema metadata and resource catalogue. ``--check``
regenerates into a temporary directory and exits 1 with a unified diff when the committed
output differs (the determinism gate run by the test suite).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engenho.schema.codegen import (
    DEFAULT_OUTPUT,
    DEFAULT_SOURCES,
    check_output,
    generate,
    write_output,
)
from engenho.schema.errors import CodegenError, DriftError

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    codegen = subparsers.add_parser(
        "codegen", help="generate typed models and schema metadata from OpenAPI v3 documents"
    )
    codegen.add_argument(
        "--specs",
        type=Path,
        required=True,
        help="directory laid out like /openapi/v3 (api/v1.json, apis/<group>/<version>.json)",
    )
    codegen.add_argument(
        "--out", type=Path, default=DEFAULT_OUTPUT, help="output package directory"
    )
    codegen.add_argument(
        "--sources",
        type=Path,
        default=DEFAULT_SOURCES,
        help="manifest of attested inputs (BLAKE3 digest, size, path per line)",
    )
    codegen.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temporary directory; exit 1 with a diff if output differs",
    )
    codegen.set_defaults(handler=run_codegen)


def run_codegen(args: argparse.Namespace) -> int:
    if not args.specs.is_dir():
        print(f"error: --specs {args.specs} is not a directory", file=sys.stderr)
        return 2
    try:
        files = generate(args.specs, args.sources)
        if args.check:
            check_output(args.out, files)
            print(f"{args.out}: {len(files)} generated files are up to date")
            return 0
        write_output(args.out, files)
    except DriftError as exc:
        sys.stdout.write(exc.diff)
        print(f"error: {args.out} differs from a fresh run; run `engenho codegen`", file=sys.stderr)
        return 1
    except CodegenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(files)} files to {args.out}")
    return 0
