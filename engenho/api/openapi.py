"""``/openapi/v3`` (index and per group-version documents) and ``/openapi/v2``.

The documents are re-emitted from the generated schema (:mod:`engenho.schema.openapi`) and
describe exactly the routable resources. Each is serialised once, on first request, and the
v3 index names it by a hash of its bytes so clients can cache it for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from blake3 import blake3
from starlette.requests import Request
from starlette.responses import Response

from engenho.api.resources import json_response, status_response
from engenho.api.routing import NOT_FOUND_MESSAGE
from engenho.registry import NotAcceptableError, NotFoundError
from engenho.schema import openapi_v2_document, openapi_v3_document, openapi_v3_paths

__all__ = ["OpenAPI"]

_CACHE_FOREVER = "public, immutable, max-age=31536000"


class OpenAPI:
    def __init__(self) -> None:
        self._documents: dict[str, tuple[bytes, str]] = {}
        self._paths = set(openapi_v3_paths())

    async def _document(self, key: str, build: Callable[[], dict[str, Any]]) -> tuple[bytes, str]:
        cached = self._documents.get(key)
        if cached is None:
            # Building a document takes a while; keep the event loop serving meanwhile.
            data = await asyncio.to_thread(
                lambda: orjson.dumps(build(), option=orjson.OPT_SORT_KEYS)
            )
            cached = self._documents[key] = (data, blake3(data).hexdigest()[:32].upper())
        return cached

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
        accept = request.headers.get("accept", "*/*")
        if not any(
            t.strip().split(";")[0] in ("application/json", "*/*", "application/*")
            for t in accept.split(",")
        ):
            # Only the protobuf form was asked for; kubectl then falls back to JSON or v3.
            return status_response(
                NotAcceptableError("only application/json is served for /openapi/v2")
            )
        data, digest = await self._document("v2", openapi_v2_document)
        return json_response(data, headers={"ETag": f'"{digest}"'})
