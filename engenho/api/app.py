"""The Starlette application: routes, authentication, metrics and error bodies."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from engenho.api.auth import AuthenticationMiddleware, Authenticator
from engenho.api.discovery import Discovery
from engenho.api.health import Health
from engenho.api.metrics import Metrics, MetricsMiddleware
from engenho.api.openapi import OpenAPI
from engenho.api.proxying import NodeAgents
from engenho.api.resources import ResourceEndpoints, status_response
from engenho.api.routing import NOT_FOUND_MESSAGE
from engenho.api.tokens import TokenRequests
from engenho.pki import ServiceAccountTokens
from engenho.registry import InternalError, MethodNotAllowedError, NotFoundError, Registry
from engenho.schema import Catalogue

__all__ = ["build_app"]

_log = logging.getLogger("engenho.api")
_VERBS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return status_response(
            MethodNotAllowedError("the server does not allow this method on the requested resource")
        )
    return status_response(NotFoundError(NOT_FOUND_MESSAGE))


async def _internal_error(request: Request, exc: Exception) -> Response:
    _log.exception("internal error serving %s %s", request.method, request.url.path)
    return status_response(InternalError(f"Internal error occurred: {exc}"))


def build_app(
    *,
    registry: Registry,
    catalogue: Catalogue,
    authenticator: Authenticator,
    metrics: Metrics,
    health: Health,
    server_address: str,
    shutdown: asyncio.Event,
    node_agents: NodeAgents | None = None,
    service_account_tokens: ServiceAccountTokens | None = None,
) -> tuple[Any, ResourceEndpoints]:
    """The ASGI app and its resource endpoints (whose watcher counts feed the metrics).

    ``node_agents`` reaches the node agents for pods/log and pods/exec (without credentials
    for them, those requests fail with a Status saying so); ``service_account_tokens`` issues
    the tokens of serviceaccounts/token (without it, TokenRequests are refused with 503)."""
    node_agents = node_agents or NodeAgents(registry, catalogue, shutdown)
    token_requests = (
        TokenRequests(registry, service_account_tokens)
        if service_account_tokens is not None
        else None
    )
    resources = ResourceEndpoints(registry, catalogue, shutdown, node_agents, token_requests)
    discovery = Discovery(catalogue, server_address)
    openapi = OpenAPI()
    routes = [
        Route("/healthz", health.livez),
        Route("/livez", health.livez),
        Route("/readyz", health.readyz),
        Route("/version", health.version),
        Route("/metrics", metrics.endpoint),
        Route("/api", discovery.api),
        Route("/api/v1", discovery.core_resources),
        Route("/api/v1/{rest:path}", resources.core, methods=_VERBS),
        Route("/apis", discovery.apis),
        Route("/apis/{group}", discovery.group),
        Route("/apis/{group}/{version}", discovery.group_resources),
        Route("/apis/{group}/{version}/{rest:path}", resources.grouped, methods=_VERBS),
        WebSocketRoute(
            "/api/v1/namespaces/{namespace}/pods/{name}/exec", node_agents.exec_websocket
        ),
        Route("/openapi/v2", openapi.v2),
        Route("/openapi/v3", openapi.v3_index),
        Route("/openapi/v3/{path:path}", openapi.v3),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    wrapped = MetricsMiddleware(AuthenticationMiddleware(app, authenticator), metrics)
    return wrapped, resources
