"""Run the generator: attest inputs, build the records, emit, write or compare.

:func:`generate` is pure (inputs in, ``{relative path: source}`` out); :func:`write_output`
replaces the output directory's contents; :func:`check_output` writes a fresh run into a
temporary directory and diffs it against the committed tree, unknown files included.
"""

from __future__ import annotations

import difflib
import tempfile
from collections import defaultdict
from pathlib import Path

from engenho.schema.codegen.attestation import load_manifest
from engenho.schema.codegen.documents import CORE_DOCUMENT, authoritative_schemas, load_documents
from engenho.schema.codegen.emit_metadata import (
    emit_catalogue,
    emit_models_index,
    emit_package,
    emit_schemas,
    emit_schemas_index,
)
from engenho.schema.codegen.emit_models import emit_models
from engenho.schema.codegen.resources import build_resources
from engenho.schema.codegen.translate import translate
from engenho.schema.errors import DriftError
from engenho.schema.model import Definition

__all__ = ["DEFAULT_OUTPUT", "DEFAULT_SOURCES", "check_output", "generate", "write_output"]

_PACKAGE = Path(__file__).resolve().parents[1]
DEFAULT_SOURCES = _PACKAGE / "SOURCES.blake3"
DEFAULT_OUTPUT = _PACKAGE / "generated"


def generate(specs_dir: Path, sources_manifest: Path = DEFAULT_SOURCES) -> dict[str, str]:
    """Every generated file, keyed by path relative to the output directory."""
    documents = load_documents(specs_dir, load_manifest(sources_manifest))
    digests = {document.path: document.digest for document in documents}
    definitions = translate(authoritative_schemas(documents))
    by_name = {d.name: d for d in definitions}
    resources = build_resources(documents, definitions)
    core = next(d for d in documents if d.path == CORE_DOCUMENT)
    by_module: dict[str, list[Definition]] = defaultdict(list)
    for definition in definitions:
        by_module[definition.module].append(definition)
    files = {
        "__init__.py": emit_package(digests, str(core.content.get("info", {}).get("version", ""))),
        "catalogue.py": emit_catalogue(resources, digests),
        "models/__init__.py": emit_models_index(definitions, digests),
        "schemas/__init__.py": emit_schemas_index(sorted(by_module), digests),
    }
    for module, members in sorted(by_module.items()):
        files[f"schemas/{module}.py"] = emit_schemas(module, members, digests)
        if any(member.class_name for member in members):
            files[f"models/{module}.py"] = emit_models(module, members, by_name, digests)
    return dict(sorted(files.items()))


def write_output(out_dir: Path, files: dict[str, str]) -> None:
    """Make ``out_dir`` hold exactly ``files`` (stale generated files are removed)."""
    if out_dir.exists():
        for stale in sorted(out_dir.rglob("*.py")):
            if stale.relative_to(out_dir).as_posix() not in files:
                stale.unlink()
    for relative, text in files.items():
        target = out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")


def check_output(out_dir: Path, files: dict[str, str]) -> None:
    """Raise :class:`DriftError` with a unified diff when ``out_dir`` differs from ``files``."""
    with tempfile.TemporaryDirectory(prefix="engenho-codegen-") as scratch:
        fresh = Path(scratch)
        write_output(fresh, files)
        diff = _diff_trees(out_dir, fresh)
    if diff:
        raise DriftError(diff)


def _tree(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def _diff_trees(committed_root: Path, fresh_root: Path) -> str:
    committed, fresh = _tree(committed_root), _tree(fresh_root)
    chunks: list[str] = []
    for relative in sorted(set(committed) | set(fresh)):
        old, new = committed.get(relative), fresh.get(relative)
        if old == new:
            continue
        chunks.extend(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                (new or "").splitlines(keepends=True),
                fromfile=f"committed/{relative}" if old is not None else "/dev/null",
                tofile=f"generated/{relative}" if new is not None else "/dev/null",
            )
        )
    return "".join(chunks)
