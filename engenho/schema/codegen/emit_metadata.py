"""Emit the schema metadata modules and the resource catalogue module."""

from __future__ import annotations

from collections.abc import Mapping

from engenho.schema.catalogue import ResourceType
from engenho.schema.codegen.source import header, literal, record
from engenho.schema.model import Definition

__all__ = [
    "emit_catalogue",
    "emit_models_index",
    "emit_package",
    "emit_schemas",
    "emit_schemas_index",
]


def emit_schemas(
    module_name: str, definitions: list[Definition], digests: Mapping[str, str]
) -> str:
    """Source of ``generated/schemas/<module>.py``: the Definition records of one module."""
    sources = [(d.source, digests[d.source]) for d in definitions]
    text = header(sources, f"Schema metadata of the {module_name} definitions.") + "\n"
    used = {"Definition"}
    rendered = []
    for definition in definitions:
        source = record(definition, "    ")
        rendered.append(f"    {source},")
        for name in ("FieldSchema", "GroupVersionKind", "TypeKind", "TypeSpec"):
            if f"{name}(" in source or f"{name}." in source:
                used.add(name)
    text += f"from engenho.schema.model import {', '.join(sorted(used))}\n\n"
    text += '__all__ = ["DEFINITIONS"]\n\n'
    text += "DEFINITIONS: tuple[Definition, ...] = (\n" + "\n".join(rendered) + "\n)\n"
    return text


def emit_schemas_index(modules: list[str], digests: Mapping[str, str]) -> str:
    text = header(digests.items(), "Every definition of the generated schema, by name.") + "\n"
    text += "from collections.abc import Mapping\n\n"
    text += "from engenho.schema.generated.schemas import " + ", ".join(modules) + "\n"
    text += "from engenho.schema.model import Definition\n\n"
    text += '__all__ = ["DEFINITIONS"]\n\n'
    text += "DEFINITIONS: Mapping[str, Definition] = {\n"
    text += "    definition.name: definition\n"
    text += "    for module in (" + ", ".join(modules) + ")\n"
    text += "    for definition in module.DEFINITIONS\n}\n"
    return text


def emit_models_index(definitions: list[Definition], digests: Mapping[str, str]) -> str:
    modules = sorted({d.module for d in definitions if d.class_name})
    text = header(digests.items(), "Every generated model class, by definition name.") + "\n"
    text += "from typing import Any\n\n"
    text += "from engenho.schema.generated.models import " + ", ".join(modules) + "\n\n"
    text += '__all__ = ["MODELS"]\n\n'
    text += "MODELS: dict[str, type[Any]] = {\n"
    for definition in definitions:
        if definition.class_name:
            text += (
                f"    {literal(definition.name)}: {definition.module}.{definition.class_name},\n"
            )
    text += "}\n"
    return text


def emit_catalogue(resources: list[ResourceType], digests: Mapping[str, str]) -> str:
    text = header(digests.items(), "The resource catalogue: every served resource type.") + "\n"
    text += "from engenho.schema.catalogue import ResourceType, Subresource\n"
    text += "from engenho.schema.model import GroupVersionKind\n\n"
    text += '__all__ = ["RESOURCES"]\n\n'
    text += "RESOURCES: tuple[ResourceType, ...] = (\n"
    for resource in sorted(resources, key=lambda r: (r.group, r.version, r.plural)):
        text += f"    {record(resource, '    ')},\n"
    text += ")\n"
    return text


def emit_package(digests: Mapping[str, str], kubernetes_version: str) -> str:
    text = header(
        digests.items(),
        "Generated from the upstream Kubernetes OpenAPI v3 documents by `engenho codegen`.\n\n"
        "``models`` holds the typed attrs classes, ``schemas`` the schema metadata and "
        "``catalogue`` the resource types. Regenerate with ``engenho codegen --specs DIR``.",
    )
    text += "\n"
    text += '__all__ = ["KUBERNETES_VERSION", "SOURCES"]\n\n'
    text += "# The version of the core document, the authority for core.v1 and meta.v1 types.\n"
    text += f"KUBERNETES_VERSION = {literal(kubernetes_version)}\n\n"
    text += "# (input path, BLAKE3 digest) of every document the package was generated from.\n"
    text += "SOURCES: tuple[tuple[str, str], ...] = (\n"
    for path, digest in sorted(digests.items()):
        text += f"    ({literal(path)}, {literal(digest)}),\n"
    text += ")\n"
    return text
