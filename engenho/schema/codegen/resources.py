"""Derive the resource catalogue from the documents' paths.

Each operation carries ``x-kubernetes-action`` and ``x-kubernetes-group-version-kind``; the
path shape gives the plural, the scope (``{namespace}`` present) and the subresource. Watch
paths (``/watch/...``) only add the ``watch`` verb. Connect actions (exec, attach, proxy,
portforward) become subresource verbs by HTTP method, as upstream discovery lists them.
Older documents (coordination, policy) lack both extensions; there the action follows from
the method and path shape, and the kind from the response schema's definition.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from attrs import define, field

from engenho.schema.catalogue import ResourceType, Subresource
from engenho.schema.codegen.documents import Document
from engenho.schema.codegen.overlay import CATEGORIES, SHORT_NAMES
from engenho.schema.errors import SpecError
from engenho.schema.model import Definition, GroupVersionKind

__all__ = ["build_resources"]

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_ACTION_VERBS = {
    "list": "list",
    "post": "create",
    "deletecollection": "deletecollection",
    "get": "get",
    "put": "update",
    "patch": "patch",
    "delete": "delete",
    "watch": "watch",
    "watchlist": "watch",
}
_CONNECT_VERBS = {
    "get": "get",
    "post": "create",
    "put": "update",
    "patch": "patch",
    "delete": "delete",
}


@define
class _Draft:
    plural: str
    namespaced: bool = False
    kind: GroupVersionKind | None = None
    verbs: set[str] = field(factory=set)
    subresources: dict[str, tuple[GroupVersionKind, set[str]]] = field(factory=dict)


def _split(path: str, document: Document) -> tuple[bool, list[str], bool] | None:
    """(namespaced, segments after the scope, is-watch) for a resource path, else None."""
    prefix = f"/apis/{document.group}/{document.version}/" if document.group else "/api/v1/"
    if not path.startswith(prefix):
        raise SpecError(f"{document.path}: path {path} outside {prefix}")
    segments = [s for s in path.removeprefix(prefix).split("/") if s]
    watch = bool(segments) and segments[0] == "watch"
    if watch:
        segments = segments[1:]
    if not segments:
        return None
    if len(segments) >= 3 and segments[:2] == ["namespaces", "{namespace}"]:
        return True, segments[2:], watch
    return False, segments, watch


def _resources_of(document: Document) -> dict[str, _Draft]:
    drafts: dict[str, _Draft] = {}
    paths: Mapping[str, Any] = document.content.get("paths", {})
    for path in sorted(paths):
        split = _split(path, document)
        if split is None:
            continue
        namespaced, segments, watch = split
        plural = segments[0]
        draft = drafts.setdefault(plural, _Draft(plural))
        draft.namespaced = draft.namespaced or namespaced
        subresource = segments[2] if len(segments) >= 3 else None
        for method in _METHODS:
            operation = paths[path].get(method)
            if not isinstance(operation, dict):
                continue
            action, gvk = _action(document, method, operation, segments, watch)
            if gvk is None:
                draft.verbs.add(_ACTION_VERBS[action])
                continue
            if subresource is None:
                if watch and action not in ("watch", "watchlist"):
                    raise SpecError(
                        f"{document.path}: {method} {path}: action {action} on a watch path"
                    )
                draft.kind = draft.kind or gvk
                draft.verbs.add(_ACTION_VERBS[action])
                continue
            verb = _CONNECT_VERBS.get(method) if action == "connect" else _ACTION_VERBS[action]
            if verb is None:
                continue  # HEAD and OPTIONS of proxy are not discovery verbs
            _, verbs = draft.subresources.setdefault(subresource, (gvk, set()))
            verbs.add(verb)
    return drafts


def _action(
    document: Document,
    method: str,
    operation: Mapping[str, Any],
    segments: list[str],
    watch: bool,
) -> tuple[str, GroupVersionKind | None]:
    """The operation's action and kind; None as kind when only the verb can be known."""
    if "x-kubernetes-action" in operation:
        gvk_json = operation["x-kubernetes-group-version-kind"]
        gvk = GroupVersionKind(gvk_json["group"], gvk_json["version"], gvk_json["kind"])
        return operation["x-kubernetes-action"], gvk
    collection = len(segments) == 1
    if watch:
        return ("watchlist" if collection else "watch"), None
    if method == "get":
        action = "list" if collection else "get"
    elif method == "delete":
        action = "deletecollection" if collection else "delete"
    elif method in ("post", "put", "patch"):
        action = method
    else:
        raise SpecError(f"{document.path}: cannot infer the action of {method} {segments}")
    responses = operation.get("responses", {})
    for code in ("200", "201"):
        content = responses.get(code, {}).get("content", {}).get("application/json", {})
        ref = content.get("schema", {}).get("$ref", "")
        schema = document.schemas.get(ref.rpartition("/")[2], {})
        for gvk_json in schema.get("x-kubernetes-group-version-kind", ())[:1]:
            kind = gvk_json["kind"]
            if action == "list":
                kind = kind.removesuffix("List")
            return action, GroupVersionKind(gvk_json["group"], gvk_json["version"], kind)
    return action, None


def build_resources(
    documents: Iterable[Document], definitions: list[Definition]
) -> list[ResourceType]:
    by_gvk: dict[GroupVersionKind, str] = {}
    for definition in definitions:
        for gvk in definition.gvks:
            by_gvk.setdefault(gvk, definition.name)
    resources = []
    for document in documents:
        for plural, draft in sorted(_resources_of(document).items()):
            if draft.kind is None:
                raise SpecError(f"{document.path}: {plural} has subresources but no operations")
            kind = draft.kind
            if (kind.group, kind.version) != (document.group, document.version):
                raise SpecError(f"{document.path}: {plural} serves {kind} from another group")
            list_gvk = GroupVersionKind(kind.group, kind.version, kind.kind + "List")
            key = (document.group, plural)
            resources.append(
                ResourceType(
                    group=document.group,
                    version=document.version,
                    kind=kind.kind,
                    plural=plural,
                    singular=kind.kind.lower(),
                    namespaced=draft.namespaced,
                    verbs=tuple(sorted(draft.verbs)),
                    short_names=SHORT_NAMES.get(key, ()),
                    categories=CATEGORIES.get(key, ()),
                    subresources=tuple(
                        Subresource(name, gvk, tuple(sorted(verbs)))
                        for name, (gvk, verbs) in sorted(draft.subresources.items())
                    ),
                    definition=by_gvk.get(kind, ""),
                    list_kind=list_gvk.kind if "list" in draft.verbs and list_gvk in by_gvk else "",
                )
            )
    overlay_keys = set(SHORT_NAMES) | set(CATEGORIES)
    missing = overlay_keys - {(r.group, r.plural) for r in resources}
    if missing:
        raise SpecError(f"overlay names resources the documents do not serve: {sorted(missing)}")
    return resources
