"""A tiny ASGI server on 127.0.0.1 for the edge cases a real API server will not produce on
demand (slow answers, connections cut mid-stream, 429s, expired history on cue)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import uvicorn
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from engenho.client import ClientConfig


def status(code: int, reason: str, message: str = "", **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message or reason,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def json_response(body: Any, code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), code, headers, media_type="application/json")


def configmap(name: str, rv: int, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": str(rv),
            "labels": labels,
        },
    }


def event_line(kind: str, obj: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


@contextlib.asynccontextmanager
async def serving(app: Callable[..., Any]) -> AsyncIterator[ClientConfig]:
    """Serve ``app`` over plain HTTP on a free port; yield a client configuration for it."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", log_level="critical", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="fake apiserver")
    try:
        while not server.started:
            if task.done():
                await task
                raise AssertionError("the fake server did not start")
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield ClientConfig(server=f"http://127.0.0.1:{port}", token="fake-token")
    finally:
        server.should_exit = True
        server.force_exit = True
        await task


class Recorder:
    """Remembers every request an app saw (method, path, query, headers)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> None:
        self.requests.append(request)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]

    def params(self, name: str) -> list[str | None]:
        return [r.query_params.get(name) for r in self.requests]


class WatchServer:
    """Serves a scripted list and a scripted watch stream per connection."""

    def __init__(self) -> None:
        self.seen = Recorder()
        self.lists: list[Response] = []
        self.streams: list[list[bytes | Exception | float]] = []
        self.statuses: list[Response] = []

    async def handle(self, request: Request) -> Response:
        self.seen(request)
        if request.query_params.get("watch") != "1":
            return self.lists.pop(0)
        if self.statuses:
            return self.statuses.pop(0)
        script = self.streams.pop(0) if self.streams else [3600.0]

        async def body() -> AsyncIterator[bytes]:
            for step in script:
                if isinstance(step, Exception):
                    raise step  # uvicorn cuts the connection mid-stream
                if isinstance(step, float):
                    await asyncio.sleep(step)
                else:
                    yield step

        return StreamingResponse(body(), media_type="application/json")

    def watches(self) -> list[Request]:
        return [r for r in self.seen.requests if r.query_params.get("watch") == "1"]
