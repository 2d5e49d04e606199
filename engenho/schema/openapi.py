"""Re-emit OpenAPI documents from the generated metadata: ``/openapi/v3/...`` and ``/openapi/v2``.

kubectl reads these for ``explain``, client-side validation, strategic-merge metadata in
client-side apply, and to decide whether the server supports ``fieldValidation`` and
``dryRun`` (it looks for those query parameters on each kind's PATCH operation). Schemas are
rebuilt from :mod:`engenho.schema.model` records with their descriptions and ``x-kubernetes-*``
extensions; paths are built from the catalogue, so the documents describe exactly what is
routable. Output is deterministic (sorted), so a digest of its JSON can serve as the
``?hash=`` of the v3 index.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from engenho.schema.catalogue import ResourceType, Subresource
from engenho.schema.generated import KUBERNETES_VERSION
from engenho.schema.model import Definition, FieldSchema, TypeKind, TypeSpec
from engenho.schema.registry import CATALOGUE, DEFINITIONS

__all__ = ["openapi_v2_document", "openapi_v3_document", "openapi_v3_paths"]

_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_STATUS = _META + "Status"
_DELETE_OPTIONS = _META + "DeleteOptions"
_PATCH = _META + "Patch"
_PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
_LIST_PARAMETERS = (
    ("allowWatchBookmarks", "boolean"),
    ("continue", "string"),
    ("fieldSelector", "string"),
    ("labelSelector", "string"),
    ("limit", "integer"),
    ("resourceVersion", "string"),
    ("resourceVersionMatch", "string"),
    ("sendInitialEvents", "boolean"),
    ("timeoutSeconds", "integer"),
    ("watch", "boolean"),
)
_WRITE_PARAMETERS = (
    ("dryRun", "string"),
    ("fieldManager", "string"),
    ("fieldValidation", "string"),
)
_DELETE_PARAMETERS = (
    ("dryRun", "string"),
    ("gracePeriodSeconds", "integer"),
    ("orphanDependents", "boolean"),
    ("propagationPolicy", "string"),
)


def openapi_v3_paths() -> list[str]:
    """The keys of the ``/openapi/v3`` index: ``api/v1``, ``apis/apps/v1``, ..."""
    return [_prefix(group, version).lstrip("/") for group, version in CATALOGUE.group_versions()]


def openapi_v3_document(group: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3 document of one group-version (``/openapi/v3/apis/{group}/{version}``)."""
    resources = CATALOGUE.resources_in(group, version)
    paths: dict[str, Any] = {}
    for resource in resources:
        paths.update(_paths(resource, v2=False))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {name: _schema(DEFINITIONS[name], v2=False) for name in _closure(resources)},
            "securitySchemes": {
                "BearerToken": {
                    "description": "Bearer Token authentication",
                    "in": "header",
                    "name": "authorization",
                    "type": "apiKey",
                }
            },
        },
    }


def openapi_v2_document() -> dict[str, Any]:
    """The Swagger 2.0 document of every served group-version (``/openapi/v2``)."""
    resources = list(CATALOGUE)
    paths: dict[str, Any] = {}
    for resource in resources:
        paths.update(_paths(resource, v2=True))
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": dict(sorted(paths.items())),
        "definitions": {name: _schema(DEFINITIONS[name], v2=True) for name in _closure(resources)},
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer Token authentication",
                "in": "header",
                "name": "authorization",
                "type": "apiKey",
            }
        },
        "security": [{"BearerToken": []}],
    }


# ---------------------------------------------------------------------------------------------
# Schemas


def _ref(name: str, v2: bool) -> dict[str, Any]:
    return {"$ref": ("#/definitions/" if v2 else "#/components/schemas/") + name}


def _type_node(spec: TypeSpec, v2: bool) -> dict[str, Any]:
    node: dict[str, Any]
    if spec.ref and spec.kind is not TypeKind.ARRAY and spec.kind is not TypeKind.MAP:
        node = _ref(spec.ref, v2)
    elif spec.kind is TypeKind.ARRAY:
        assert spec.items is not None
        node = {"type": "array", "items": _element(spec.items, v2)}
    elif spec.kind is TypeKind.MAP:
        assert spec.items is not None
        node = {"type": "object", "additionalProperties": _element(spec.items, v2)}
    elif spec.kind is TypeKind.ANY:
        node = {"type": "object"}
    else:
        node = {"type": spec.kind.value}
        if spec.format:
            node["format"] = spec.format
        if spec.enum:
            node["enum"] = list(spec.enum)
    return node


def _element(spec: TypeSpec, v2: bool) -> dict[str, Any]:
    node = _type_node(spec, v2)
    if spec.default_json:
        node = _with_siblings(node, {"default": json.loads(spec.default_json)}, v2)
    return node


def _with_siblings(node: dict[str, Any], siblings: dict[str, Any], v2: bool) -> dict[str, Any]:
    """Attach description/default/extensions; OpenAPI 3 wraps a $ref in allOf to allow them."""
    if not siblings:
        return node
    if "$ref" in node and not v2:
        return {"allOf": [node], **siblings}
    return {**node, **siblings}


def _field_node(field: FieldSchema, v2: bool) -> dict[str, Any]:
    siblings: dict[str, Any] = {}
    if field.has_default:
        siblings["default"] = field.default
    if field.description:
        siblings["description"] = field.description
    for key, value in (
        ("x-kubernetes-list-map-keys", list(field.list_map_keys)),
        ("x-kubernetes-list-type", field.list_type),
        ("x-kubernetes-map-type", field.map_type),
        ("x-kubernetes-patch-merge-key", field.patch_merge_key),
        ("x-kubernetes-patch-strategy", field.patch_strategy),
    ):
        if value:
            siblings[key] = value  # noqa: PERF403 -- only set extensions, in this order
    return _with_siblings(_type_node(field.type, v2), siblings, v2)


def _schema(definition: Definition, v2: bool) -> dict[str, Any]:
    node: dict[str, Any] = {}
    if definition.description:
        node["description"] = definition.description
    if definition.kind is TypeKind.QUANTITY:
        if v2:
            node["type"] = "string"
        else:
            node["oneOf"] = [{"type": "string"}, {"type": "number"}]
        return node
    if definition.kind is TypeKind.INT_OR_STRING:
        node["format"] = "int-or-string"
        if v2:
            node["type"] = "string"
        else:
            node["oneOf"] = [{"type": "integer"}, {"type": "string"}]
        return node
    if definition.format:
        node["format"] = definition.format
    node["type"] = (
        "object" if definition.kind in (TypeKind.OBJECT, TypeKind.ANY) else definition.kind.value
    )
    if definition.fields:
        node["properties"] = {field.name: _field_node(field, v2) for field in definition.fields}
        if definition.required:
            node["required"] = list(definition.required)
    if definition.gvks:
        node["x-kubernetes-group-version-kind"] = [gvk.to_json() for gvk in definition.gvks]
    if definition.map_type:
        node["x-kubernetes-map-type"] = definition.map_type
    if definition.unions_json:
        node["x-kubernetes-unions"] = json.loads(definition.unions_json)
    return node


def _refs(spec: TypeSpec) -> Iterable[str]:
    if spec.ref:
        yield spec.ref
    if spec.items is not None:
        yield from _refs(spec.items)


def _closure(resources: Iterable[ResourceType]) -> list[str]:
    pending = [_STATUS, _DELETE_OPTIONS, _PATCH]
    for resource in resources:
        pending.extend(n for n in (resource.definition, _list_definition(resource)) if n)
        pending.extend(n for n in map(_subresource_definition, resource.subresources) if n)
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen or name not in DEFINITIONS:
            continue
        seen.add(name)
        for field in DEFINITIONS[name].fields:
            pending.extend(_refs(field.type))
    return sorted(seen)


# ---------------------------------------------------------------------------------------------
# Paths


def _prefix(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def _id_group(resource: ResourceType) -> str:
    if not resource.group:
        return f"Core{resource.version.capitalize()}"
    words = resource.group.removesuffix(".k8s.io").replace("-", ".").split(".")
    return "".join(word.capitalize() for word in words) + resource.version.capitalize()


def _definition_by_kind(api_version: str, kind: str) -> str:
    for definition in DEFINITIONS.values():
        if any(g.api_version == api_version and g.kind == kind for g in definition.gvks):
            return definition.name
    return ""


def _list_definition(resource: ResourceType) -> str:
    return (
        _definition_by_kind(resource.api_version, resource.list_kind) if resource.list_kind else ""
    )


def _subresource_definition(sub: Subresource) -> str:
    return _definition_by_kind(sub.kind.api_version, sub.kind.kind)


def _parameters(names: Iterable[tuple[str, str]], v2: bool) -> list[dict[str, Any]]:
    params = []
    for name, kind in names:
        param: dict[str, Any] = {"in": "query", "name": name, "uniqueItems": True}
        if v2:
            param["type"] = kind
        else:
            param["schema"] = {"type": kind}
        params.append(param)
    return params


def _body(schema: dict[str, Any], v2: bool, media: Iterable[str] = ("*/*",)) -> dict[str, Any]:
    if v2:
        return {"in": "body", "name": "body", "required": True, "schema": schema}
    return {"content": {m: {"schema": schema} for m in media}, "required": True}


def _operation(
    resource: ResourceType,
    operation_id: str,
    action: str,
    response: dict[str, Any] | None,
    v2: bool,
    *,
    parameters: Iterable[tuple[str, str]] = (),
    body: dict[str, Any] | None = None,
    body_media: Iterable[str] = ("*/*",),
    created: bool = False,
    kind: tuple[str, str, str] | None = None,
) -> dict[str, Any]:
    group, version, kind_name = kind or (resource.group, resource.version, resource.kind)
    params = _parameters(parameters, v2)
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [f"{resource.group.removesuffix('.k8s.io') or 'core'}_{resource.version}"],
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": group, "kind": kind_name, "version": version},
    }
    schema = response if response is not None else {"type": "string"}
    codes = ("200", "201") if created else ("200",)
    if v2:
        if body is not None:
            params.append(_body(body, v2))
        operation["consumes"] = list(body_media)
        operation["produces"] = ["application/json", "application/yaml"]
        operation["schemes"] = ["https"]
        operation["responses"] = {code: {"description": "OK", "schema": schema} for code in codes}
        operation["responses"]["401"] = {"description": "Unauthorized"}
    else:
        if body is not None:
            operation["requestBody"] = _body(body, v2, body_media)
        operation["responses"] = {
            code: {"description": "OK", "content": {"application/json": {"schema": schema}}}
            for code in codes
        }
        operation["responses"]["401"] = {"description": "Unauthorized"}
    if params:
        operation["parameters"] = params
    return operation


def _path_parameters(namespaced: bool, named: bool, v2: bool) -> list[dict[str, Any]]:
    params = []
    for name, present in (("name", named), ("namespace", namespaced)):
        if present:
            param: dict[str, Any] = {
                "in": "path",
                "name": name,
                "required": True,
                "uniqueItems": True,
            }
            if v2:
                param["type"] = "string"
            else:
                param["schema"] = {"type": "string"}
            params.append(param)
    params.append(_parameters((("pretty", "string"),), v2)[0])
    return params


def _paths(resource: ResourceType, v2: bool) -> dict[str, Any]:
    prefix = _prefix(resource.group, resource.version)
    scope = "/namespaces/{namespace}" if resource.namespaced else ""
    namespaced_word = "Namespaced" if resource.namespaced else ""
    ids = _id_group(resource)
    kind = resource.kind
    item_ref = _ref(resource.definition, v2) if resource.definition else None
    list_name = _list_definition(resource)
    list_ref = _ref(list_name, v2) if list_name else None
    status_ref = _ref(_STATUS, v2)
    verbs = set(resource.verbs)
    paths: dict[str, Any] = {}

    collection: dict[str, Any] = {}
    if "list" in verbs:
        collection["get"] = _operation(
            resource,
            f"list{ids}{namespaced_word}{kind}",
            "list",
            list_ref,
            v2,
            parameters=_LIST_PARAMETERS,
        )
    if "create" in verbs:
        collection["post"] = _operation(
            resource,
            f"create{ids}{namespaced_word}{kind}",
            "post",
            item_ref,
            v2,
            parameters=_WRITE_PARAMETERS,
            body=item_ref,
            created=True,
        )
    if "deletecollection" in verbs:
        collection["delete"] = _operation(
            resource,
            f"delete{ids}Collection{namespaced_word}{kind}",
            "deletecollection",
            status_ref,
            v2,
            parameters=_DELETE_PARAMETERS + _LIST_PARAMETERS,
            body=_ref(_DELETE_OPTIONS, v2),
        )
    if collection:
        collection["parameters"] = _path_parameters(resource.namespaced, False, v2)
        paths[f"{prefix}{scope}/{resource.plural}"] = collection
    if resource.namespaced and "list" in verbs:
        paths[f"{prefix}/{resource.plural}"] = {
            "get": _operation(
                resource,
                f"list{ids}{kind}ForAllNamespaces",
                "list",
                list_ref,
                v2,
                parameters=_LIST_PARAMETERS,
            ),
            "parameters": _path_parameters(False, False, v2),
        }

    item: dict[str, Any] = {}
    for verb, method, action, prefix_word in (
        ("get", "get", "get", "read"),
        ("update", "put", "put", "replace"),
        ("patch", "patch", "patch", "patch"),
        ("delete", "delete", "delete", "delete"),
    ):
        if verb not in verbs:
            continue
        operation_id = f"{prefix_word}{ids}{namespaced_word}{kind}"
        if method == "get":
            item[method] = _operation(resource, operation_id, action, item_ref, v2)
        elif method == "put":
            item[method] = _operation(
                resource,
                operation_id,
                action,
                item_ref,
                v2,
                parameters=_WRITE_PARAMETERS,
                body=item_ref,
                created=True,
            )
        elif method == "patch":
            item[method] = _operation(
                resource,
                operation_id,
                action,
                item_ref,
                v2,
                parameters=(*_WRITE_PARAMETERS, ("force", "boolean")),
                body=_ref(_PATCH, v2),
                body_media=_PATCH_TYPES,
                created=True,
            )
        else:
            item[method] = _operation(
                resource,
                operation_id,
                action,
                status_ref,
                v2,
                parameters=_DELETE_PARAMETERS,
                body=_ref(_DELETE_OPTIONS, v2),
            )
    if item:
        item["parameters"] = _path_parameters(resource.namespaced, True, v2)
        paths[f"{prefix}{scope}/{resource.plural}/{{name}}"] = item

    for sub in resource.subresources:
        paths[f"{prefix}{scope}/{resource.plural}/{{name}}/{sub.name}"] = _subresource_path(
            resource, sub, ids, namespaced_word, v2
        )
    return paths


def _subresource_path(
    resource: ResourceType, sub: Subresource, ids: str, namespaced_word: str, v2: bool
) -> dict[str, Any]:
    definition = _subresource_definition(sub)
    ref = _ref(definition, v2) if definition and sub.name != "log" else None
    suffix = "".join(part.capitalize() for part in sub.name.split("-"))
    kind = (sub.kind.group, sub.kind.version, sub.kind.kind)
    connect = sub.kind.kind.endswith("Options")
    path: dict[str, Any] = {}
    for verb in sub.verbs:
        method = {
            "get": "get",
            "create": "post",
            "update": "put",
            "patch": "patch",
            "delete": "delete",
        }[verb]
        if connect:
            operation_id = f"connect{method.capitalize()}{namespaced_word}{resource.kind}{suffix}"
            path[method] = _operation(resource, operation_id, "connect", None, v2, kind=kind)
            continue
        word = {
            "get": "read",
            "put": "replace",
            "patch": "patch",
            "post": "create",
            "delete": "delete",
        }[method]
        operation_id = f"{word}{ids}{namespaced_word}{resource.kind}{suffix}"
        if method == "patch":
            path[method] = _operation(
                resource,
                operation_id,
                "patch",
                ref,
                v2,
                parameters=(*_WRITE_PARAMETERS, ("force", "boolean")),
                body=_ref(_PATCH, v2),
                body_media=_PATCH_TYPES,
                created=True,
                kind=kind,
            )
        elif method in ("put", "post"):
            path[method] = _operation(
                resource,
                operation_id,
                "put" if method == "put" else "post",
                ref,
                v2,
                parameters=_WRITE_PARAMETERS,
                body=ref or {"type": "object"},
                created=True,
                kind=kind,
            )
        else:
            path[method] = _operation(resource, operation_id, method, ref, v2, kind=kind)
    path["parameters"] = _path_parameters(resource.namespaced, True, v2)
    return path
