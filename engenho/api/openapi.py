"""``/openapi/v3`` (index and per group-version documents) and ``/openapi/v2``.

The documents are re-emitted from the generated schema (:mod:`engenho.schema.openapi`) and
describe exactly the routable resources. Each is serialised once, on first request, and the
v3 index names it by a hash of its bytes so clients can cache it for good.

``/openapi/v2`` is served as JSON or, when asked, as gnostic's protobuf ``openapi.v2.Document``
(:mod:`engenho.api.openapi_protobuf`) encoded from that same JSON, as kube-openapi does:
client-go's ``OpenAPISchema()`` asks for protobuf only, and kubectl validates ``kind: List``
files with it. Each representation has its own ETag (a hash of its own bytes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from blake3 import blake3
from starlette.requests import Request
from starlette.responses import Response

from engenho.api.negotiation import parse_accept
from engenho.api.openapi_protobuf import encode_openapi_v2
from engenho.api.resources import json_response, status_response
from engenho.api.routing import NOT_FOUND_MESSAGE
from engenho.registry import NotAcceptableError, NotFoundError
from engenho.schema import openapi_v2_document, openapi_v3_document, openapi_v3_paths

__all__ = ["OpenAPI"]

_CACHE_FOREVER = "public, immutable, max-age=31536000"

_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
"""The Content-Type of the protobuf ``/openapi/v2``, whichever alias was asked for (as
kube-openapi answers)."""
_V2_PROTOBUF_ALIASES = (
    _V2_PROTOBUF,
    # The older spelling, which client-go still sends (and kube-openapi still serves).
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
)
_V2_JSON = "application/json"


def _v2_representation(accept: str | None) -> str | None:
    """What ``/openapi/v2`` answers for this Accept header: kube-openapi's choice (the
    highest-q range, more specific ranges first among equals, that matches JSON or either
    protobuf type, JSON for wildcards), or None for a 406."""
    ranked = []
    for order, media in enumerate(parse_accept(accept)):
        try:
            quality = float(media.params.get("q", "1"))
        except ValueError:
            quality = 0.0
        if quality <= 0:
            continue
        kind, _, subtype = media.type.partition("/")
        ranked.append((-quality, (kind == "*") + (subtype == "*"), order, media.type))
    for *_, media_type in sorted(ranked):
        if media_type in (_V2_JSON, "application/*", "*/*"):
            return _V2_JSON
        if media_type in _V2_PROTOBUF_ALIASES:
            return _V2_PROTOBUF
    return None


class OpenAPI:
    def __init__(self) -> None:
        self._documents: dict[str, tuple[bytes, str]] = {}
        self._paths = set(openapi_v3_paths())

    async def _cached(self, key: str, produce: Callable[[], bytes]) -> tuple[bytes, str]:
        cached = self._documents.get(key)
        if cached is None:
            # Building a document takes a while; keep the event loop serving meanwhile.
            data = await asyncio.to_thread(produce)
            cached = self._documents[key] = (data, blake3(data).hexdigest()[:32].upper())
        return cached

    async def _document(self, key: str, build: Callable[[], dict[str, Any]]) -> tuple[bytes, str]:
        return await self._cached(key, lambda: orjson.dumps(build(), option=orjson.OPT_SORT_KEYS))

    async def _v3_document(self, path: str) -> tuple[bytes, str]:
        parts = path.split("/")
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        return await self._document(path, lambda: openapi_v3_document(group, version))

    async def v3_index(self, request: Request) -> Response:
        paths = {}
        for path in sorted(self._paths):
            _, digest = await self._v3_document(path)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
        return json_response({"paths": paths})

    async def v3(self, request: Request) -> Response:
        path = request.path_params["path"]
        if path not in self._paths:
            return status_response(NotFoundError(NOT_FOUND_MESSAGE))
        data, digest = await self._v3_document(path)
        headers = {"ETag": f'"{digest}"'}
        if request.query_params.get("hash") == digest:
            headers["Cache-Control"] = _CACHE_FOREVER
        return json_response(data, headers=headers)

    async def v2(self, request: Request) -> Response:
        representation = _v2_representation(request.headers.get("accept"))
        if representation is None:
            return status_response(
                NotAcceptableError(
                    f"only application/json and {_V2_PROTOBUF} are served for /openapi/v2"
                )
            )
        # The same URL has two representations: shared caches must key on Accept.
        headers = {"Vary": "Accept"}
        json_data, json_digest = await self._document("v2", openapi_v2_document)
        if representation == _V2_PROTOBUF:
            # Encoded from the JSON bytes served, so both representations say the same thing.
            data, digest = await self._cached(
                "v2.protobuf", lambda: encode_openapi_v2(orjson.loads(json_data))
            )
            headers["ETag"] = f'"{digest}"'
            return Response(data, media_type=_V2_PROTOBUF, headers=headers)
        headers["ETag"] = f'"{json_digest}"'
        return json_response(json_data, headers=headers)
