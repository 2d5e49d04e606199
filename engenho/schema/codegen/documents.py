"""Load the attested input documents and pick one authoritative copy of each definition.

Every document repeats the shared schemas (ObjectMeta, PodSpec, ...) at its own Kubernetes
version. The rule (k8s-openapi README): a definition comes from its home document when that
document carries it (``io.k8s.api.batch.v1.*`` from ``apis/batch/v1.json``), else from core
``api/v1.json`` (v1.29.2, the authority for ``core.v1`` and ``meta.v1``), else from the first
document, by path, that has it. Only definitions reachable from some document's own kinds
and operations are emitted, so newer shared types that the authoritative copies never
reference are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from engenho.schema.codegen.attestation import Source, read_verified
from engenho.schema.errors import SpecError

__all__ = ["CORE_DOCUMENT", "Document", "authoritative_schemas", "load_documents", "ref_name"]

CORE_DOCUMENT = "api/v1.json"
_REF_PREFIX = "#/components/schemas/"


@frozen
class Document:
    path: str  # ``apis/apps/v1.json``
    digest: str
    group: str  # ``""`` for core
    version: str
    content: Mapping[str, Any]

    @property
    def schemas(self) -> Mapping[str, Any]:
        schemas: Mapping[str, Any] = self.content.get("components", {}).get("schemas", {})
        return schemas

    @property
    def short_group(self) -> str:
        """The group as definition names spell it: ``rbac`` for rbac.authorization.k8s.io."""
        return self.group.split(".")[0] if self.group else "core"


def load_documents(specs_dir: Path, sources: list[Source]) -> list[Document]:
    documents = []
    for source in sources:
        data = read_verified(specs_dir, source)
        parts = source.path.removesuffix(".json").split("/")
        if parts[0] == "api" and len(parts) == 2:
            group, version = "", parts[1]
        elif parts[0] == "apis" and len(parts) == 3:
            group, version = parts[1], parts[2]
        else:
            raise SpecError(
                f"{source.path}: expected api/<version>.json or apis/<group>/<version>.json"
            )
        try:
            content = json.loads(data)
        except ValueError as exc:
            raise SpecError(f"{source.path}: not JSON: {exc}") from exc
        if not str(content.get("openapi", "")).startswith("3."):
            raise SpecError(f"{source.path}: not an OpenAPI 3 document")
        documents.append(Document(source.path, source.digest, group, version, content))
    return documents


def ref_name(node: Mapping[str, Any]) -> str | None:
    """The definition a schema node points at, in either upstream style.

    Older documents put ``$ref`` beside sibling keys; newer ones wrap it as
    ``allOf: [{$ref}]`` so the siblings (description, default) stay valid OpenAPI 3.
    """
    ref = node.get("$ref")
    if ref is None:
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
            ref = all_of[0]["$ref"]
        elif all_of is not None:
            raise SpecError(f"unsupported allOf (only a single $ref is handled): {all_of!r}")
    if ref is None:
        return None
    if not isinstance(ref, str) or not ref.startswith(_REF_PREFIX):
        raise SpecError(f"unsupported $ref {ref!r}")
    return ref.removeprefix(_REF_PREFIX)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        name = ref_name(node)
        if name is not None:
            yield name
        for key, value in node.items():
            if key not in ("$ref", "allOf"):
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _home(name: str, documents: list[Document]) -> Document | None:
    parts = name.split(".")
    if not name.startswith("io.k8s.api.") or len(parts) < 6:
        return None
    for document in documents:
        if (document.short_group, document.version) == (parts[3], parts[4]):
            return document
    return None


def _authority(name: str, documents: list[Document]) -> Document:
    home = _home(name, documents)
    if home is not None and name in home.schemas:
        return home
    for document in documents:
        if document.path == CORE_DOCUMENT and name in document.schemas:
            return document
    for document in documents:
        if name in document.schemas:
            return document
    raise SpecError(f"$ref to {name}, which no input document defines")


def authoritative_schemas(
    documents: list[Document],
) -> dict[str, tuple[Document, Mapping[str, Any]]]:
    """Every emitted definition name -> (the document it comes from, its schema)."""
    roots: list[str] = []
    for document in documents:
        for name, schema in sorted(document.schemas.items()):
            if _authority(name, documents) is not document:
                continue
            if _home(name, documents) is document or "x-kubernetes-group-version-kind" in schema:
                roots.append(name)
        # Request and response bodies of the operations (Patch, Status, DeleteOptions, ...).
        roots.extend(_refs(document.content.get("paths", {})))
    chosen: dict[str, tuple[Document, Mapping[str, Any]]] = {}
    pending = sorted(roots)
    while pending:
        name = pending.pop()
        if name in chosen:
            continue
        document = _authority(name, documents)
        schema = document.schemas[name]
        chosen[name] = (document, schema)
        pending.extend(ref for ref in _refs(schema) if ref not in chosen)
    return dict(sorted(chosen.items()))
