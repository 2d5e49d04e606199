"""Prometheus metrics: requests by verb, resource and code; request latency; the log's batch
sizes and sync latency; the applied index; open watches. Each server owns its registry (no
process-global state, so tests can run servers side by side)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from attrs import frozen
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["Metrics", "MetricsMiddleware"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "apiserver_request_total",
            "Requests by verb, group, resource, subresource and HTTP code.",
            ["verb", "group", "resource", "subresource", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "apiserver_request_duration_seconds",
            "Time to the response headers, by verb, group and resource (watches excluded).",
            ["verb", "group", "resource"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sync_latency = Histogram(
            "engenho_log_append_batch_seconds",
            "Time to write and fdatasync one group-commit batch.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_entries = Histogram(
            "engenho_log_fsync_batch_entries",
            "Entries made durable by one fdatasync (group commit batch size).",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.applied_index = Gauge(
            "engenho_projections_applied_index",
            "The last log index the projections applied.",
            registry=self.registry,
        )
        self.commit_index = Gauge(
            "engenho_log_commit_index", "The log's commit index.", registry=self.registry
        )
        self.watchers = Gauge(
            "apiserver_registered_watchers",
            "Open watch streams by group and resource.",
            ["group", "resource"],
            registry=self.registry,
        )

    def observe_batch(self, entries: int, _bytes: int, seconds: float) -> None:
        self.batch_entries.observe(entries)
        self.sync_latency.observe(seconds)

    def track(
        self,
        applied_index: Callable[[], int],
        commit_index: Callable[[], int],
        watchers: Callable[[], dict[str, int]],
    ) -> None:
        self.applied_index.set_function(lambda: float(applied_index()))
        self.commit_index.set_function(lambda: float(commit_index()))
        self._watchers = watchers

    async def endpoint(self, request: Request) -> Response:
        for key, count in getattr(self, "_watchers", dict)().items():
            group, _, resource = key.partition("/")
            self.watchers.labels(group, resource).set(count)
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _verb(method: str, query: bytes, labels: tuple[str, str, str] | None) -> str:
    if method == "GET":
        if b"watch=1" in query or b"watch=true" in query:
            return "watch"
        return "get" if labels is None else "list-or-get"
    return _VERBS.get(method, method.lower())


@frozen
class MetricsMiddleware:
    """Counts every request and times it to its response headers."""

    app: Any
    metrics: Metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def observed(message: Any) -> None:
            if message["type"] == "http.response.start":
                labels = scope.get("state", {}).get("metric_labels")
                group, resource, sub = labels or ("", "", "")
                verb = _verb(scope["method"], scope.get("query_string", b""), labels)
                if verb == "list-or-get":
                    verb = "list" if scope["path"].rstrip("/").endswith(resource) else "get"
                self.metrics.requests.labels(
                    verb, group, resource, sub, str(message["status"])
                ).inc()
                if verb != "watch":
                    self.metrics.latency.labels(verb, group, resource).observe(
                        time.perf_counter() - started
                    )
            await send(message)

        await self.app(scope, receive, observed)
