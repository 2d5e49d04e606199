"""``engenho image``: the node's local image store (``DATA_DIR/images``).

``engenho image import [--data-dir DIR] [--tag REF] FILE`` imports an oci-archive (``skopeo
copy docker://IMAGE oci-archive:FILE``, ``podman save --format oci-archive``) or a
docker-archive (``docker save``, ``podman save``), verifying every digest;
``engenho image import --wasm FILE --tag REF`` imports a WebAssembly module as an image.
``engenho image list`` prints REPOSITORY TAG DIGEST SIZE, as ``crictl images`` does.
``engenho image build-busybox --output FILE`` writes a busybox oci-archive from the host's
static busybox (``make run`` imports it as ``busybox:latest``).
``engenho image remove REF`` removes a name and the content only it used.
Exit status 0 on success, 1 when the store refuses (a damaged archive, an unknown name).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from engenho.node_agent.images import (
    ImageStore,
    ImageStoreError,
    ImportResult,
    StoredImage,
    build_busybox_archive,
    import_archive,
    import_wasm,
)
from engenho.node_agent.images.building import DEFAULT_BUSYBOX
from engenho.paths import DataDir, default_data_dir

__all__ = ["human_size", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    image = subparsers.add_parser("image", help="manage the node's local image store")
    commands = image.add_subparsers(dest="image_command", metavar="COMMAND", required=True)

    importing = commands.add_parser(
        "import", help="import an oci-archive, a docker-archive or (--wasm) a wasm module"
    )
    importing.add_argument("file", nargs="?", type=Path, help="the archive to import")
    importing.add_argument("--data-dir", type=Path, default=default_data_dir())
    importing.add_argument("--tag", help="name the image REPOSITORY[:TAG] (required with --wasm)")
    importing.add_argument("--wasm", type=Path, metavar="FILE", help="a WebAssembly module")
    importing.set_defaults(handler=run_import)

    listing = commands.add_parser("list", help="list stored images")
    listing.add_argument("--data-dir", type=Path, default=default_data_dir())
    listing.set_defaults(handler=run_list)

    removing = commands.add_parser("remove", help="remove an image name (and unused content)")
    removing.add_argument("reference")
    removing.add_argument("--data-dir", type=Path, default=default_data_dir())
    removing.set_defaults(handler=run_remove)

    building = commands.add_parser(
        "build-busybox", help="write a busybox oci-archive from the host's static busybox"
    )
    building.add_argument("--output", type=Path, required=True)
    building.add_argument("--busybox", type=Path, default=DEFAULT_BUSYBOX)
    building.add_argument("--tag", default="busybox:latest")
    building.set_defaults(handler=run_build_busybox)


def _store(args: argparse.Namespace) -> ImageStore:
    return ImageStore(DataDir(args.data_dir).images)


def run_import(args: argparse.Namespace) -> int:
    errors = Console(stderr=True)
    if (args.file is None) == (args.wasm is None):
        errors.print("give an archive FILE, or --wasm FILE --tag REF")
        return 2
    if args.wasm is not None and not args.tag:
        errors.print("--wasm needs --tag REF to name the image")
        return 2
    store = _store(args)
    try:
        if args.wasm is not None:
            result = import_wasm(store, args.wasm, tag=args.tag)
        else:
            result = _import_with_progress(store, args.file, args.tag, errors)
    except (ImageStoreError, OSError) as exc:
        errors.print(f"import failed: {exc}", markup=False, highlight=False)
        return 1
    _print_summary(result)
    return 0


def _import_with_progress(
    store: ImageStore, archive: Path, tag: str | None, console: Console
) -> ImportResult:
    if not console.is_terminal:
        return import_archive(store, archive, tag=tag)
    with Progress(
        TextColumn(f"importing {archive.name}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("import", total=archive.stat().st_size)
        return import_archive(store, archive, tag=tag, progress=lambda n: progress.advance(task, n))


def _print_summary(result: ImportResult) -> None:
    console = Console(soft_wrap=True)
    for image in result.images:
        name = str(image.reference) if image.reference else "<untagged>"
        console.print(
            f"imported {name} {image.manifest_digest} ({human_size(image.size)})",
            markup=False,
            highlight=False,
        )
    console.print(
        f"{result.format}: {result.blobs_added} new blob(s), {human_size(result.bytes_added)}; "
        f"{result.blobs_present} already present",
        markup=False,
        highlight=False,
    )


def run_list(args: argparse.Namespace) -> int:
    try:
        images = _store(args).images()
    except ImageStoreError as exc:
        print(f"list failed: {exc}", file=sys.stderr)
        return 1
    rows = [("REPOSITORY", "TAG", "DIGEST", "SIZE"), *(_row(image) for image in images)]
    widths = [max(len(row[n]) for row in rows) for n in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("   ".join([*cells, row[3]]))
    return 0


def _row(image: StoredImage) -> tuple[str, str, str, str]:
    reference = image.reference
    repository = reference.repository if reference else "<none>"
    tag = (reference.tag or "<none>") if reference else "<none>"
    digest = image.manifest_digest.partition(":")[2][:12]
    return repository, tag, digest, human_size(image.size)


def human_size(size: float) -> str:
    """docker/go-units ``HumanSize``: decimal units, four significant digits (``2.23MB``)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    index = 0
    while size >= 1000 and index < len(units) - 1:
        size /= 1000
        index += 1
    return f"{size:.4g}{units[index]}"


def run_remove(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        image = store.untag(args.reference)
        # Unpacked trees stay: a running container's overlay may still stand on one.
        freed = store.collect_garbage(rootfs=False)
    except ImageStoreError as exc:
        print(f"remove failed: {exc}", file=sys.stderr)
        return 1
    name = str(image.reference) if image.reference else image.manifest_digest
    print(f"removed {name}; freed {human_size(freed)}")
    return 0


def run_build_busybox(args: argparse.Namespace) -> int:
    if not args.busybox.exists():
        print(
            f"{args.busybox} does not exist: install busybox-static (make run does)",
            file=sys.stderr,
        )
        return 1
    digest = build_busybox_archive(args.output, busybox=args.busybox, reference=args.tag)
    print(f"wrote {args.output} ({args.tag}, {digest})")
    return 0
