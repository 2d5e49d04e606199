"""Media types: what a request body is, and what a response may be (contract §3.3).

Bodies are JSON (also when no Content-Type is sent) or YAML; anything else is a 415. Responses
are JSON, a ``meta.k8s.io`` Table when asked, or aggregated discovery when asked; an Accept
header that admits none of these is a 406.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import orjson
import yaml
from attrs import frozen

from engenho.registry import (
    BadRequestError,
    NotAcceptableError,
    RequestEntityTooLargeError,
    UnsupportedMediaTypeError,
)

__all__ = [
    "MAX_BODY_BYTES",
    "PATCH_TYPES",
    "MediaRange",
    "Response",
    "decode_body",
    "parse_accept",
    "patch_type",
    "wants",
]

MAX_BODY_BYTES = 3 * 1024 * 1024
"""Upstream's default request size limit (3 MiB)."""

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}


@frozen
class MediaRange:
    type: str
    params: dict[str, str]


def _split(header: str) -> Iterator[MediaRange]:
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        if not pieces[0]:
            continue
        params = {}
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        yield MediaRange(pieces[0].lower(), params)


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header, in the client's order (q values are ignored,
    as upstream's negotiation does for these types)."""
    return list(_split(header or "*/*")) or [MediaRange("*/*", {})]


class Response:
    """The response representations engenho can produce."""

    JSON = "json"
    TABLE = "table"
    DISCOVERY = "discovery"


def wants(header: str | None, *, table: bool = False, discovery: bool = False) -> str:
    """The first representation in the client's Accept list that this endpoint offers."""
    for media in parse_accept(header):
        if media.type in ("application/json", "application/*", "*/*"):
            kind = media.params.get("as")
            group = media.params.get("g")
            if (
                kind == "Table"
                and group == "meta.k8s.io"
                and media.params.get("v")
                in (
                    "v1",
                    "v1beta1",
                )
            ):
                if table:
                    return Response.TABLE
                continue
            if kind == "APIGroupDiscoveryList" and group == "apidiscovery.k8s.io":
                if discovery and media.params.get("v") == "v2":
                    return Response.DISCOVERY
                continue
            if kind is None:
                return Response.JSON
    raise NotAcceptableError(
        "only the following media types are accepted: application/json, "
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    )


class _Pairs(dict[str, Any]):
    """An object that remembers which of its keys appeared more than once."""

    duplicates: tuple[str, ...] = ()


def _pairs(items: list[tuple[str, Any]]) -> _Pairs:
    result = _Pairs(items)
    if len(result) != len(items):
        seen: set[str] = set()
        repeated: list[str] = []
        for key, _ in items:
            if key in seen:
                repeated.append(key)
            seen.add(key)
        result.duplicates = tuple(repeated)
    return result


class _Loader(yaml.SafeLoader):
    """YAML as Kubernetes reads it: timestamps stay strings (sigs.k8s.io/yaml goes via JSON),
    and mappings remember repeated keys for fieldValidation."""


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[_Pairs]:
    data = _Pairs()
    yield data  # yielded first so that recursive (aliased) structures resolve, as PyYAML does
    loader.flatten_mapping(node)
    pairs = [(loader.construct_object(k), loader.construct_object(v)) for k, v in node.value]
    built = _pairs(pairs)
    data.update(built)
    data.duplicates = built.duplicates


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _check_json_values(value: Any) -> Any:
    """YAML can express what JSON cannot (NaN, binary, non-string keys): refuse it."""
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequestError("NaN and infinite numbers are not valid JSON values")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise BadRequestError(f"object keys must be strings, got {key!r}")
            _check_json_values(item)
    elif isinstance(value, list):
        for item in value:
            _check_json_values(item)
    elif not isinstance(value, str | int | float | bool | type(None)):
        raise BadRequestError(f"value of type {type(value).__name__} is not valid JSON")
    return value


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _without_duplicates(value: Any, path: str, out: list[str]) -> Any:
    """``value`` with plain dicts (the schema checks exact types), noting repeated fields."""
    if isinstance(value, dict):
        out.extend(f"{path}.{key}" if path else key for key in getattr(value, "duplicates", ()))
        return {
            key: _without_duplicates(item, f"{path}.{key}" if path else key, out)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without_duplicates(item, f"{path}[{i}]", out) for i, item in enumerate(value)]
    return value


def decode_body(
    data: bytes,
    content_type: str | None,
    *,
    yaml_ok: bool = True,
    duplicates: list[str] | None = None,
) -> Any:
    """Parse a request body; 413 when too large, 415 for other types, 400 when malformed.

    With a ``duplicates`` list, the paths of fields a JSON or YAML object repeats are added to
    it (for fieldValidation; the last occurrence wins, as upstream's decoder does). Finding
    them needs a slower parser, so callers ask only when they will report them.
    """
    if len(data) > MAX_BODY_BYTES:
        raise RequestEntityTooLargeError(f"Request entity too large: limit is {MAX_BODY_BYTES}")
    media = _media(content_type)
    if media in ("", "application/json", "*/*") or media in PATCH_TYPES:
        if media == "application/apply-patch+yaml":
            return _decode_yaml(data, duplicates)
        if duplicates is not None:
            try:
                value = json.loads(data, object_pairs_hook=_pairs)
            except (ValueError, UnicodeDecodeError) as exc:
                raise BadRequestError(f"the request body is not valid JSON: {exc}") from exc
            return _check_json_values(_without_duplicates(value, "", duplicates))
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise BadRequestError(f"the request body is not valid JSON: {exc}") from exc
    if yaml_ok and media in ("application/yaml", "application/x-yaml", "text/yaml"):
        return _decode_yaml(data, duplicates)
    raise UnsupportedMediaTypeError(
        f"the body of the request was in an unknown format - accepted media types include: "
        f"application/json, application/yaml (got {media!r})"
    )


def _decode_yaml(data: bytes, duplicates: list[str] | None = None) -> Any:
    try:
        value = yaml.load(data, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise BadRequestError(f"the request body is not valid YAML: {exc}") from exc
    return _check_json_values(_without_duplicates(value, "", duplicates or []))


def patch_type(content_type: str | None) -> str:
    """The patch algorithm a PATCH's Content-Type names; 415 for anything else."""
    media = _media(content_type)
    found = PATCH_TYPES.get(media)
    if found is None:
        raise UnsupportedMediaTypeError(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(PATCH_TYPES)}"
        )
    return found
