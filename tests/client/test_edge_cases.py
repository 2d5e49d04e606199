"""Edge cases a real server will not produce on demand, against a tiny ASGI server on
127.0.0.1 (uvicorn): slow answers and timeouts, 429 with Retry-After, 503 for idempotent
and other verbs, refused connections, watch streams cut mid-way, bookmarks, 410 in band and
as a status, transient and fatal ERROR events, followed logs, Warning headers; and
discovery documents (aggregated, legacy, a failing group) served through httpx's
ASGITransport, where the network is not the point."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from engenho.client import (
    Backoff,
    ClientConfig,
    ClientTimeoutError,
    EventType,
    ForbiddenError,
    KubeClient,
    RetryPolicy,
    ServiceUnavailableError,
    TooManyRequestsError,
    TransportError,
    WatchEvent,
)
from engenho.schema import Catalogue

from .fake import Recorder, WatchServer, configmap, event_line, json_response, serving, status

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
FAST = RetryPolicy(attempts=3, initial=0.01, cap=0.05)


def app(handler: Any, *paths: str) -> Starlette:
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(routes=[Route(path, handler, methods=methods) for path in paths])


def listing(rv: int, *items: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "ConfigMapList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": str(rv)},
        "items": list(items),
    }


async def take(events: AsyncIterator[WatchEvent[Any]], count: int) -> list[WatchEvent[Any]]:
    taken: list[WatchEvent[Any]] = []
    async with asyncio.timeout(10):
        async for event in events:
            taken.append(event)
            if len(taken) == count:
                break
    return taken


# ---------------------------------------------------------------------- requests


async def test_slow_answers_time_out_and_only_idempotent_verbs_retry() -> None:
    seen = Recorder()

    async def slow(request: Request) -> Response:
        seen(request)
        await asyncio.sleep(0.5 if request.query_params.get("slow") else 0)
        return json_response(configmap("c", 1), 201 if request.method == "POST" else 200)

    async with serving(app(slow, CONFIGMAPS, CONFIGMAPS + "/{name}")) as config:
        quick = httpx.Timeout(0.15)
        async with KubeClient(config, timeout=quick, retry=FAST) as client:
            assert (await client.get("configmaps", "c"))["metadata"]["name"] == "c"
            with pytest.raises(ClientTimeoutError, match="timed out"):
                await client.request("GET", CONFIGMAPS + "/c", params={"slow": "1"})
            assert len(seen.requests) == 1 + 3, "a GET is tried three times"
            seen.requests.clear()
            with pytest.raises(ClientTimeoutError):
                await client.request("POST", CONFIGMAPS, params={"slow": "1"}, body={})
            assert len(seen.requests) == 1, "a POST that was sent is never repeated"
        async with KubeClient(config, timeout=httpx.Timeout(2.0)) as patient:
            await patient.request("GET", CONFIGMAPS + "/c", params={"slow": "1"})


async def test_429_is_retried_after_retry_after_for_every_verb() -> None:
    seen = Recorder()

    async def busy(request: Request) -> Response:
        seen(request)
        if len(seen.requests) == 1:
            return json_response(
                status(429, "TooManyRequests", "slow down"), 429, {"Retry-After": "1"}
            )
        if request.query_params.get("always"):
            return json_response(status(429, "TooManyRequests"), 429, {"Retry-After": "3600"})
        return json_response(configmap("made", 1), 201)

    async with serving(app(busy, CONFIGMAPS)) as config, KubeClient(config, retry=FAST) as client:
        started = time.monotonic()
        made = await client.create(configmap("made", 0))
        assert made["metadata"]["name"] == "made" and len(seen.requests) == 2
        assert time.monotonic() - started >= 0.95, "Retry-After: 1 was honoured"
        # An ask beyond max_retry_after fails at once, carrying the delay asked for.
        with pytest.raises(TooManyRequestsError) as refused:
            await client.request("POST", CONFIGMAPS, params={"always": "1"}, body={})
        assert refused.value.retry_after == 3600 and len(seen.requests) == 3


async def test_503_is_retried_for_reads_only() -> None:
    seen = Recorder()

    async def flaky(request: Request) -> Response:
        seen(request)
        if len(seen.requests) % 2:
            return Response(b"", 503)  # not even a Status: a proxy in the way
        return json_response(listing(5), 200 if request.method == "GET" else 201)

    async with serving(app(flaky, CONFIGMAPS)) as config, KubeClient(config, retry=FAST) as client:
        assert await client.list("configmaps").collect() == []
        assert len(seen.requests) == 2
        with pytest.raises(ServiceUnavailableError) as unavailable:
            await client.create(configmap("x", 0))
        assert unavailable.value.reason == "ServiceUnavailable" and len(seen.requests) == 3


async def test_connection_refused_is_retried_then_raised() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = ClientConfig(server=f"http://127.0.0.1:{port}")
    async with KubeClient(config, retry=FAST) as client:
        with pytest.raises(TransportError, match=r"127\.0\.0\.1"):
            await client.create(configmap("x", 0))  # never sent: safe to retry, then raise


async def test_server_warnings_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def warns(request: Request) -> Response:
        return json_response(
            configmap("w", 1), 201, {"Warning": '299 - "unknown field \\"spec.x\\""'}
        )

    async with serving(app(warns, CONFIGMAPS)) as config, KubeClient(config) as client:
        with caplog.at_level(logging.WARNING, logger="engenho.client"):
            await client.create(configmap("w", 0))
    assert 'unknown field \\"spec.x\\"' in caplog.text


# ---------------------------------------------------------------------- watch streams


@pytest.fixture
async def watch_server() -> AsyncIterator[tuple[WatchServer, KubeClient]]:
    scripted = WatchServer()
    async with (
        serving(app(scripted.handle, CONFIGMAPS)) as config,
        KubeClient(config, retry=FAST) as client,
    ):
        yield scripted, client


def quick_backoff() -> Backoff:
    return Backoff(initial=0.02, cap=0.1)


async def test_a_cut_stream_resumes_from_the_last_event_and_bookmark(
    watch_server: tuple[WatchServer, KubeClient],
) -> None:
    scripted, client = watch_server
    scripted.streams = [
        [event_line("ADDED", configmap("a", 5)), event_line("ADDED", configmap("b", 6))],
        [
            event_line("MODIFIED", configmap("a", 7)),
            event_line("BOOKMARK", {"kind": "ConfigMap", "metadata": {"resourceVersion": "9"}}),
            b'{"type":"MODIFIED","object":{"kind":"Conf',  # cut in the middle of an event
            RuntimeError("connection lost"),
        ],
        [event_line("DELETED", configmap("b", 10))],
    ]
    async with client.watch("configmaps", resource_version="4", backoff=quick_backoff()) as w:
        events = await take(w, 4)
    assert [(e.type.value, e.key[1], e.resource_version) for e in events] == [
        ("ADDED", "a", "5"),
        ("ADDED", "b", "6"),
        ("MODIFIED", "a", "7"),
        ("DELETED", "b", "10"),
    ]
    watches = scripted.watches()
    assert [r.query_params["resourceVersion"] for r in watches] == ["4", "6", "9"]
    assert all(r.query_params["allowWatchBookmarks"] == "true" for r in watches)
    assert not scripted.seen.params("limit")[0], "no list: it started from a resourceVersion"


async def test_410_in_band_relists_and_yields_the_difference(
    watch_server: tuple[WatchServer, KubeClient],
) -> None:
    scripted, client = watch_server
    held = [configmap("same", 3), configmap("changed", 3), configmap("vanished", 3)]
    scripted.streams = [
        [event_line("ERROR", status(410, "Expired", "too old resource version: 3 (8)"))],
        [event_line("ADDED", configmap("later", 11))],
    ]
    scripted.lists = [
        json_response(
            listing(10, configmap("same", 3), configmap("changed", 9), configmap("new", 8))
        )
    ]
    watcher = client.watch("configmaps", resource_version="3", known=held, backoff=quick_backoff())
    async with watcher:
        events = await take(watcher, 4)
    assert [(e.type.value, e.key[1], e.synthetic) for e in events] == [
        ("MODIFIED", "changed", True),
        ("ADDED", "new", True),
        ("DELETED", "vanished", True),
        ("ADDED", "later", False),
    ]
    assert events[2].object == configmap("vanished", 3), "the last state known"
    assert [r.query_params.get("resourceVersion") for r in scripted.watches()] == ["3", "10"]
    assert set(watcher.known) == {("default", n) for n in ("same", "changed", "new", "later")}


async def test_410_as_a_status_and_transient_errors(
    watch_server: tuple[WatchServer, KubeClient],
) -> None:
    scripted, client = watch_server
    scripted.statuses = [
        json_response(status(429, "TooManyRequests"), 429, {"Retry-After": "0"}),
        json_response(status(410, "Gone", "gone"), 410),
    ]
    scripted.lists = [
        json_response(status(503, "ServiceUnavailable"), 503),  # retried by the transport
        json_response(status(410, "Expired", "continue token expired"), 410),  # by the watcher
        json_response(listing(20, configmap("x", 19))),
    ]
    scripted.streams = [
        [event_line("ERROR", status(500, "InternalError", "transient"))],
        [event_line("MODIFIED", configmap("x", 21))],
    ]
    watcher = client.watch("configmaps", resource_version="7", backoff=quick_backoff())
    async with watcher:
        events = await take(watcher, 2)
    assert [(e.type.value, e.resource_version, e.synthetic) for e in events] == [
        ("ADDED", "19", True),
        ("MODIFIED", "21", False),
    ]
    assert [r.query_params.get("resourceVersion") for r in scripted.watches()] == [
        "7",
        "7",
        "20",
        "20",
    ]


async def test_fatal_error_events_reach_the_consumer(
    watch_server: tuple[WatchServer, KubeClient],
) -> None:
    scripted, client = watch_server
    scripted.streams = [[event_line("ERROR", status(403, "Forbidden", "no watching for you"))]]
    async with client.watch("configmaps", resource_version="1") as watcher:
        with pytest.raises(ForbiddenError, match="no watching for you"):
            await take(watcher, 1)


async def test_typed_events_and_list_first(watch_server: tuple[WatchServer, KubeClient]) -> None:
    from engenho.schema.generated.models import core_v1

    scripted, client = watch_server
    scripted.lists = [json_response(listing(4, configmap("a", 2)))]
    scripted.streams = [[event_line("DELETED", configmap("a", 5))]]
    async with client.watch(core_v1.ConfigMap) as watcher:
        events = await take(watcher, 2)
    assert [e.type for e in events] == [EventType.ADDED, EventType.DELETED]
    assert all(isinstance(e.object, core_v1.ConfigMap) for e in events)
    assert scripted.seen.requests[0].query_params.get("limit") == "500"
    assert watcher.known == {}


# ---------------------------------------------------------------------- logs


async def test_followed_logs_arrive_line_by_line() -> None:
    first_read = asyncio.Event()
    seen = Recorder()

    async def log(request: Request) -> Response:
        seen(request)
        if request.query_params.get("follow") != "true":
            return Response(b"one\ntwo\n", media_type="text/plain")

        async def body() -> AsyncIterator[bytes]:
            yield b"line 1\nline"
            await first_read.wait()  # the client got line 1 while the stream is open
            yield b" 2\nline 3"

        return StreamingResponse(body(), media_type="text/plain")

    route = "/api/v1/namespaces/{ns}/pods/{name}/log"
    async with serving(app(log, route)) as config, KubeClient(config) as client:
        lines: list[str] = []
        async with client.log("web", container="c", follow=True, tail_lines=10) as stream:
            async for line in stream:
                lines.append(line)
                first_read.set()
        assert lines == ["line 1", "line 2", "line 3"]
        assert await client.read_log("web", namespace="other") == "one\ntwo\n"
    query = seen.requests[0].query_params
    assert (query["container"], query["tailLines"]) == ("c", "10")
    assert seen.paths() == [
        "/api/v1/namespaces/default/pods/web/log",
        "/api/v1/namespaces/other/pods/web/log",
    ]


# ---------------------------------------------------------------------- discovery


def resource(name: str, kind: str, *, short: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "name": name,
        "singularName": kind.lower(),
        "namespaced": True,
        "kind": kind,
        "verbs": ["get", "list", "watch"],
        "shortNames": list(short),
    }


LEGACY = {
    "/api": {"kind": "APIVersions", "versions": ["v1"]},
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            resource("pods", "Pod", short=("po",)),
            {"name": "pods/status", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
        ],
    },
    "/apis": {
        "kind": "APIGroupList",
        "groups": [
            {
                "name": "example.com",
                "versions": [{"version": "v1beta1"}, {"version": "v1"}],
                "preferredVersion": {"version": "v1"},
            },
            {"name": "broken.io", "versions": [{"version": "v1"}]},
        ],
    },
    "/apis/example.com/v1": {
        "kind": "APIResourceList",
        "groupVersion": "example.com/v1",
        "resources": [resource("widgets", "Widget", short=("wd",))],
    },
    "/apis/example.com/v1beta1": {
        "kind": "APIResourceList",
        "groupVersion": "example.com/v1beta1",
        "resources": [resource("widgets", "Widget", short=("wd",))],
    },
}

AGGREGATED = {
    "kind": "APIGroupDiscoveryList",
    "apiVersion": "apidiscovery.k8s.io/v2",
    "items": [
        {
            "metadata": {"name": "example.com"},
            "versions": [
                {
                    "version": "v2",
                    "resources": [
                        {
                            "resource": "gadgets",
                            "responseKind": {
                                "group": "example.com",
                                "version": "v2",
                                "kind": "Gadget",
                            },
                            "scope": "Cluster",
                            "singularResource": "gadget",
                            "verbs": ["get", "list"],
                            "shortNames": ["gd"],
                            "subresources": [
                                {
                                    "subresource": "status",
                                    "responseKind": {"kind": "Gadget"},
                                    "verbs": ["get"],
                                }
                            ],
                        }
                    ],
                }
            ],
        }
    ],
}


async def test_legacy_discovery(caplog: pytest.LogCaptureFixture) -> None:
    seen = Recorder()

    async def documents(request: Request) -> Response:
        seen(request)
        path = request.url.path
        if path == "/apis/broken.io/v1":
            return json_response(status(503, "ServiceUnavailable"), 503)
        if path in LEGACY:
            return json_response(LEGACY[path])
        return json_response({"kind": "WidgetList", "metadata": {"resourceVersion": "1"}})

    transport = httpx.ASGITransport(app(documents, "/{path:path}"))
    config = ClientConfig(server="http://apiserver.test")
    async with KubeClient(
        config, catalogue=Catalogue([]), http_transport=transport, retry=RetryPolicy(attempts=1)
    ) as client:
        with caplog.at_level(logging.WARNING, logger="engenho.client"):
            widgets = await client.resources.resolve("wd")
        assert (widgets.group, widgets.version, widgets.kind) == ("example.com", "v1", "Widget")
        assert "/apis/broken.io/v1 is unavailable" in caplog.text
        pods = await client.resources.resolve("po")
        assert pods.subresource("status") is not None and pods.namespaced
        await client.list("widgets").collect()
        assert (await client.resources.for_kind("example.com/v1beta1", "Widget")).version == (
            "v1beta1"
        )
    assert seen.paths()[-1] == "/apis/example.com/v1/namespaces/default/widgets"
    assert "as=APIGroupDiscoveryList" in seen.requests[0].headers["accept"]


async def test_aggregated_discovery() -> None:
    seen = Recorder()

    async def documents(request: Request) -> Response:
        seen(request)
        if request.url.path == "/api":
            return json_response({**AGGREGATED, "items": []})
        if request.url.path == "/apis":
            return json_response(AGGREGATED)
        return json_response({"kind": "GadgetList", "metadata": {}, "items": []})

    transport = httpx.ASGITransport(app(documents, "/{path:path}"))
    async with KubeClient(
        ClientConfig(server="http://apiserver.test"),
        catalogue=Catalogue([]),
        http_transport=transport,
    ) as client:
        gadgets = await client.resources.resolve("gd")
        assert (gadgets.group, gadgets.version, gadgets.namespaced) == ("example.com", "v2", False)
        sub = gadgets.subresource("status")
        assert sub is not None and sub.kind.group == "example.com"
        await client.list("gadgets", namespace="ignored-for-cluster-scope").collect()
    assert seen.paths() == ["/api", "/apis", "/apis/example.com/v2/gadgets"]
