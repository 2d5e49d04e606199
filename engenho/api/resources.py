"""The REST verbs on resources: HTTP in, registry call, HTTP out (contract §3).

| method | collection | object |
|---|---|---|
| GET | list, or watch with ``?watch=1`` | get, or a single-object watch |
| POST | create | — |
| PUT | — | update |
| PATCH | — | patch |
| DELETE | deletecollection | delete |

Subresources (``status``, ``scale``, ``binding``, ``token``; ``log`` and ``exec`` through the
node agents) route through the same parser. Every refusal is a ``metav1.Status``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from attrs import evolve
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from engenho.api import encoding
from engenho.api.auth import identity_of
from engenho.api.negotiation import Response as Wanted
from engenho.api.negotiation import decode_body, patch_type, wants
from engenho.api.printing import INCLUDE_OBJECT_MODES
from engenho.api.routing import Target, parse_target
from engenho.projections import StoredObject
from engenho.registry import (
    BadRequestError,
    DeleteOptions,
    InvalidError,
    ListQuery,
    MethodNotAllowedError,
    NotFoundError,
    Registry,
    RequestContext,
    ServiceUnavailableError,
    StatusCause,
    StatusError,
    WatchQuery,
)
from engenho.schema import Catalogue, ResourceType
from engenho.streams import until

if TYPE_CHECKING:
    from engenho.api.proxying import NodeAgents
    from engenho.api.tokens import TokenRequests

__all__ = ["JSON", "ResourceEndpoints", "json_response", "status_response"]

JSON = "application/json"
_NOT_ALLOWED = "the server does not allow this method on the requested resource"
_NODE_AGENT_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward", "proxy"})


def json_response(
    body: bytes | dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(data, status_code=status, media_type=JSON, headers=headers)


def status_response(error: StatusError) -> Response:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return json_response(error.status(), error.code, headers)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true")


def _int_param(request: Request, name: str) -> int | None:
    text = request.query_params.get(name)
    if text in (None, ""):
        return None
    try:
        return int(text)
    except ValueError as exc:
        raise BadRequestError(f"invalid value for {name}: {text!r}") from exc


def _verb_allowed(rt: ResourceType, verb: str) -> None:
    if verb not in rt.verbs:
        raise MethodNotAllowedError(_NOT_ALLOWED)


def _warning_headers(ctx: RequestContext) -> list[tuple[str, str]]:
    """``Warning: 299 - "<text>"`` with the text as an RFC 7230 quoted-string (clients drop a
    header whose quotes do not parse)."""
    return [
        ("Warning", '299 - "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
        for text in ctx.warnings
    ]


class ResourceEndpoints:
    """The handler of every ``/api/v1/...`` and ``/apis/{group}/{version}/...`` request."""

    def __init__(
        self,
        registry: Registry,
        catalogue: Catalogue,
        shutdown: asyncio.Event,
        node_agents: NodeAgents | None = None,
        token_requests: TokenRequests | None = None,
    ) -> None:
        self.registry = registry
        self.catalogue = catalogue
        self.shutdown = shutdown
        self.node_agents = node_agents
        self.token_requests = token_requests
        self.watchers: dict[str, int] = {}

    # ------------------------------------------------------------------ dispatch

    async def core(self, request: Request) -> Response:
        return await self._handle(request, "", "v1", request.path_params["rest"])

    async def grouped(self, request: Request) -> Response:
        params = request.path_params
        return await self._handle(request, params["group"], params["version"], params["rest"])

    async def _handle(self, request: Request, group: str, version: str, rest: str) -> Response:
        try:
            target = parse_target(self.catalogue, group, version, rest.split("/"))
            request.state.metric_labels = (
                target.resource.group,
                target.resource.plural,
                target.subresource or "",
            )
            return await self._dispatch(request, target)
        except StatusError as exc:
            return status_response(exc)

    async def _dispatch(self, request: Request, target: Target) -> Response:
        method = request.method
        rt = target.resource
        if target.subresource is not None:
            return await self._subresource(request, target)
        if method == "GET":
            if _flag(request, "watch"):
                _verb_allowed(rt, "watch")
                return self._watch(request, target)
            if target.is_collection:
                _verb_allowed(rt, "list")
                return await self._list(request, target)
            _verb_allowed(rt, "get")
            return await self._get(request, target)
        if method == "POST" and target.is_collection:
            _verb_allowed(rt, "create")
            if rt.namespaced and target.namespace is None:
                raise MethodNotAllowedError(_NOT_ALLOWED)
            if rt.group == "" and rt.plural == "bindings":
                return await self._bind(request, target, None)  # the legacy form
            return await self._create(request, target)
        if method == "PUT" and not target.is_collection:
            _verb_allowed(rt, "update")
            return await self._update(request, target)
        if method == "PATCH" and not target.is_collection:
            _verb_allowed(rt, "patch")
            return await self._patch(request, target)
        if method == "DELETE":
            if target.is_collection:
                _verb_allowed(rt, "deletecollection")
                return await self._delete_collection(request, target)
            _verb_allowed(rt, "delete")
            return await self._delete(request, target)
        raise MethodNotAllowedError(_NOT_ALLOWED)

    # ------------------------------------------------------------------ request options

    def _context(self, request: Request) -> RequestContext:
        dry_run = request.query_params.getlist("dryRun")
        if any(value != "All" for value in dry_run):
            raise BadRequestError(f"invalid dry run value: {dry_run!r}; supported values: All")
        validation = request.query_params.get("fieldValidation") or "Warn"
        if validation not in ("Strict", "Warn", "Ignore"):
            raise BadRequestError(
                f'fieldValidation: Unsupported value: "{validation}": supported values: '
                '"Ignore", "Strict", "Warn"'
            )
        manager = request.query_params.get("fieldManager") or None
        if manager is not None and len(manager) > 128:
            raise BadRequestError("fieldManager: Too long: may not be more than 128 bytes")
        if manager is None and request.query_params.get("fieldManager") is None:
            # Upstream names an unnamed manager after the client's User-Agent product token
            # (but apply must be given one explicitly, so leave it unset for PATCH).
            agent = request.headers.get("user-agent", "").split("/", 1)[0].strip()
            if request.method != "PATCH" or "apply-patch" not in request.headers.get(
                "content-type", ""
            ):
                manager = agent or None
        return RequestContext(
            actor=identity_of(request.scope),
            request_id=request.headers.get("audit-id") or str(uuid.uuid4()),
            now=datetime.now(UTC),
            dry_run=bool(dry_run),
            field_manager=manager,
            field_validation=validation,
        )

    @staticmethod
    async def _body(request: Request, ctx: RequestContext | None = None) -> Any:
        """The decoded body; with a Strict or Warn fieldValidation, repeated fields are found
        and recorded on the context for the registry to refuse or warn about."""
        duplicates = (
            ctx.duplicate_fields
            if ctx is not None and ctx.field_validation in ("Strict", "Warn")
            else None
        )
        return decode_body(
            await request.body(), request.headers.get("content-type"), duplicates=duplicates
        )

    @staticmethod
    def _namespace(target: Target) -> str:
        return target.namespace or ""

    def _object_response(
        self, request: Request, target: Target, stored: StoredObject, status: int = 200
    ) -> Response:
        if wants(request.headers.get("accept"), table=True) == Wanted.TABLE:
            include = request.query_params.get("includeObject") or "Metadata"
            body = encoding.table_body(
                target.resource,
                [stored],
                stored.resource_version,
                "",
                include,
                datetime.now(UTC),
            )
            return json_response(body, status)
        return json_response(stored.data, status)

    # ------------------------------------------------------------------ reads

    async def _get(self, request: Request, target: Target) -> Response:
        stored = await self.registry.get(
            target.resource,
            self._namespace(target),
            target.name or "",
            request.query_params.get("resourceVersion"),
        )
        return self._object_response(request, target, stored)

    async def _list(self, request: Request, target: Target) -> Response:
        representation = wants(request.headers.get("accept"), table=True)
        include = request.query_params.get("includeObject") or "Metadata"
        if representation == Wanted.TABLE and include not in INCLUDE_OBJECT_MODES:
            raise BadRequestError(f"invalid includeObject: {include!r}")
        limit = _int_param(request, "limit")
        if limit is not None and limit < 0:
            raise BadRequestError("limit must not be negative")
        query = ListQuery(
            label_selector=request.query_params.get("labelSelector", ""),
            field_selector=request.query_params.get("fieldSelector", ""),
            limit=limit or None,
            continue_token=request.query_params.get("continue", ""),
            resource_version=request.query_params.get("resourceVersion"),
            resource_version_match=request.query_params.get("resourceVersionMatch") or None,
        )
        result = await self.registry.list(target.resource, target.namespace, query)
        if representation == Wanted.TABLE:
            body = encoding.table_body(
                target.resource,
                result.items,
                result.resource_version,
                result.continue_token,
                include,
                datetime.now(UTC),
                result.remaining_item_count,
            )
        else:
            body = encoding.list_body(
                target.resource,
                result.items,
                result.resource_version,
                result.continue_token,
                result.remaining_item_count,
            )
        return json_response(body)

    def _watch(self, request: Request, target: Target) -> Response:
        representation = wants(request.headers.get("accept"), table=True)
        include = request.query_params.get("includeObject") or "Metadata"
        timeout = _int_param(request, "timeoutSeconds")
        send_initial = request.query_params.get("sendInitialEvents")
        query = WatchQuery(
            label_selector=request.query_params.get("labelSelector", ""),
            field_selector=request.query_params.get("fieldSelector", ""),
            resource_version=request.query_params.get("resourceVersion"),
            resource_version_match=request.query_params.get("resourceVersionMatch") or None,
            allow_bookmarks=_flag(request, "allowWatchBookmarks"),
            send_initial_events=None
            if send_initial is None
            else _flag(request, "sendInitialEvents"),
            timeout_seconds=float(timeout) if timeout else None,
            name=target.name,
        )
        rt = target.resource
        events = self.registry.watch(rt, target.namespace, query)
        table_format = representation == Wanted.TABLE
        key = f"{rt.group}/{rt.plural}"

        async def stream() -> AsyncIterator[bytes]:
            self.watchers[key] = self.watchers.get(key, 0) + 1
            first = True
            try:
                async for event in self._until_shutdown(events):
                    yield encoding.watch_line(
                        rt,
                        event,
                        table_format=table_format,
                        include_object=include,
                        now=datetime.now(UTC),
                        first=first,
                    )
                    first = first and event.object is None
            except StatusError as exc:
                # Errors found once streaming has begun go in band (contract §8.6).
                yield b'{"type":"ERROR","object":' + orjson.dumps(exc.status()) + b"}\n"
            finally:
                self.watchers[key] -= 1

        return StreamingResponse(stream(), media_type=JSON)

    def _until_shutdown(self, events: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """Forward ``events`` until the server starts shutting down."""
        return until(events, self.shutdown)

    # ------------------------------------------------------------------ writes

    async def _create(self, request: Request, target: Target) -> Response:
        ctx = self._context(request)
        body = await self._body(request, ctx)
        stored = await self.registry.create(ctx, target.resource, self._namespace(target), body)
        response = self._object_response(request, target, stored, 201)
        response.headers.raw.extend(
            (k.lower().encode(), v.encode()) for k, v in _warning_headers(ctx)
        )
        return response

    async def _update(
        self, request: Request, target: Target, subresource: str | None = None
    ) -> Response:
        ctx = self._context(request)
        body = await self._body(request, ctx)
        stored, created = await self.registry.update(
            ctx,
            target.resource,
            self._namespace(target),
            target.name or "",
            body,
            subresource=subresource,
        )
        response = self._object_response(request, target, stored, 201 if created else 200)
        response.headers.raw.extend(
            (k.lower().encode(), v.encode()) for k, v in _warning_headers(ctx)
        )
        return response

    async def _patch(
        self, request: Request, target: Target, subresource: str | None = None
    ) -> Response:
        ctx = self._context(request)
        kind = patch_type(request.headers.get("content-type"))
        force = request.query_params.get("force")
        if force is not None and kind != "apply":
            raise InvalidError(
                'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified '
                "for non-apply patch",
                kind="PatchOptions",
                group="meta.k8s.io",
                causes=[
                    StatusCause(
                        "FieldValueForbidden",
                        "Forbidden: may not be specified for non-apply patch",
                        "force",
                    )
                ],
            )
        body = await self._body(request, ctx)
        namespace, name = self._namespace(target), target.name or ""
        status = 200
        if kind == "apply":
            stored, created = await self.registry.apply(
                ctx,
                target.resource,
                namespace,
                name,
                body,
                force=_flag(request, "force"),
                subresource=subresource,
            )
            status = 201 if created else 200
        else:
            stored = await self.registry.patch(
                ctx, target.resource, namespace, name, kind, body, subresource=subresource
            )
        response = self._object_response(request, target, stored, status)
        response.headers.raw.extend(
            (k.lower().encode(), v.encode()) for k, v in _warning_headers(ctx)
        )
        return response

    async def _delete_options(
        self, request: Request, ctx: RequestContext
    ) -> tuple[DeleteOptions, RequestContext]:
        """The DeleteOptions of a DELETE (query parameters or body), and the request's context
        with the body's ``dryRun`` taken into account (kubectl sends it there)."""
        raw = await request.body()
        body: Any = decode_body(raw, request.headers.get("content-type")) if raw.strip() else {}
        if not isinstance(body, dict):
            raise BadRequestError("the body of a DELETE must be a DeleteOptions object")
        dry_run = body.get("dryRun") or []
        if not isinstance(dry_run, list) or any(value != "All" for value in dry_run):
            raise BadRequestError(f"invalid dry run value: {dry_run!r}; supported values: All")
        if dry_run:
            ctx = evolve(ctx, dry_run=True)
        params = request.query_params
        grace = body.get("gracePeriodSeconds", _int_param(request, "gracePeriodSeconds"))
        policy = body.get("propagationPolicy") or params.get("propagationPolicy") or None
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise BadRequestError(
                f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                '"Foreground", "Background", "Orphan"'
            )
        orphan = body.get("orphanDependents")
        if orphan is None and params.get("orphanDependents") is not None:
            orphan = _flag(request, "orphanDependents")
        preconditions = body.get("preconditions") or {}
        if not isinstance(preconditions, dict) or (
            grace is not None and not isinstance(grace, int)
        ):
            raise BadRequestError("the DeleteOptions body is malformed")
        options = DeleteOptions(
            grace_period_seconds=grace,
            propagation_policy=policy,
            orphan_dependents=orphan,
            precondition_uid=preconditions.get("uid"),
            precondition_resource_version=preconditions.get("resourceVersion"),
        )
        return options, ctx

    async def _delete(self, request: Request, target: Target) -> Response:
        options, ctx = await self._delete_options(request, self._context(request))
        result = await self.registry.delete(
            ctx, target.resource, self._namespace(target), target.name or "", options
        )
        if result.status is not None:
            return json_response(result.status)
        assert result.object is not None
        return self._object_response(request, target, result.object)

    async def _delete_collection(self, request: Request, target: Target) -> Response:
        options, ctx = await self._delete_options(request, self._context(request))
        query = ListQuery(
            label_selector=request.query_params.get("labelSelector", ""),
            field_selector=request.query_params.get("fieldSelector", ""),
        )
        listed = await self.registry.list(target.resource, target.namespace, query)
        deleted: list[StoredObject] = []
        for item in listed.items:
            try:
                result = await self.registry.delete(
                    ctx, target.resource, item.namespace, item.name, options
                )
            except NotFoundError:
                continue  # removed by someone else meanwhile: the goal is reached
            if result.object is not None:
                deleted.append(result.object)
        body = encoding.list_body(target.resource, deleted, listed.resource_version, "")
        return json_response(body)

    # ------------------------------------------------------------------ subresources

    async def _subresource(self, request: Request, target: Target) -> Response:
        sub = target.subresource
        rt = target.resource
        method = request.method
        if sub == "status":
            if method == "GET":
                return await self._get(request, target)
            if method == "PUT":
                return await self._update(request, target, "status")
            if method == "PATCH":
                return await self._patch(request, target, "status")
            raise MethodNotAllowedError(_NOT_ALLOWED)
        if sub == "finalize" and method == "PUT":
            return await self._update(request, target, "finalize")
        if sub == "scale":
            return await self._scale(request, target)
        if sub == "binding" and method == "POST":
            return await self._bind(request, target, target.name)
        if sub == "token" and rt.plural == "serviceaccounts" and self.token_requests is not None:
            if method != "POST":
                raise MethodNotAllowedError(_NOT_ALLOWED)
            body, now = await self._body(request), datetime.now(UTC)
            answer = await self.token_requests.create(
                self._namespace(target), target.name or "", body, now
            )
            return json_response(answer, 201)  # nothing stored: the log is untouched
        if sub in _NODE_AGENT_SUBRESOURCES:
            return await self._node_agent_subresource(request, target)
        raise ServiceUnavailableError(f"{rt.plural}/{sub} is not served yet by this engenho server")

    async def _scale(self, request: Request, target: Target) -> Response:
        rt, namespace, name = target.resource, self._namespace(target), target.name or ""
        if request.method == "GET":
            return json_response(await self.registry.get_scale(rt, namespace, name))
        ctx = self._context(request)
        if request.method == "PUT":
            scale = await self.registry.scale(
                ctx, rt, namespace, name, body=await self._body(request, ctx)
            )
        elif request.method == "PATCH":
            kind = patch_type(request.headers.get("content-type"))
            scale = await self.registry.scale(
                ctx, rt, namespace, name, patch_type=kind, patch=await self._body(request, ctx)
            )
        else:
            raise MethodNotAllowedError(_NOT_ALLOWED)
        return json_response(scale)

    async def _bind(self, request: Request, target: Target, pod: str | None) -> Response:
        ctx = self._context(request)
        binding = await self._body(request, ctx)
        if pod is not None and isinstance(binding, dict):
            meta = binding.setdefault("metadata", {})
            if isinstance(meta, dict):
                if meta.get("name") not in (None, "", pod):
                    raise BadRequestError(
                        f"the name of the object ({meta['name']}) does not match the name on "
                        f"the URL ({pod})"
                    )
                meta["name"] = pod
        await self.registry.bind(ctx, self._namespace(target), binding)
        return json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "code": 201,
            },
            201,
        )

    async def _node_agent_subresource(self, request: Request, target: Target) -> Response:
        """Answered by the node agent a pod runs on (pods/log, pods/exec: see proxying.py);
        the others, not served yet, with a clear Status."""
        namespace, name = self._namespace(target), target.name or ""
        if self.node_agents is not None and target.resource.plural == "pods":
            if target.subresource == "log" and request.method == "GET":
                return await self.node_agents.logs(request, namespace, name)
            if target.subresource == "exec" and request.method in ("GET", "POST"):
                return await self.node_agents.exec_without_upgrade(request, namespace, name)
            if target.subresource in ("log", "exec"):
                raise MethodNotAllowedError(_NOT_ALLOWED)
        stored = await self.registry.get(
            target.resource, self._namespace(target), target.name or ""
        )
        node = (stored.object.get("spec") or {}).get("nodeName")
        if target.resource.plural == "pods" and not node:
            raise BadRequestError(f"pod {target.name} does not have a host assigned")
        raise ServiceUnavailableError(
            f"{target.resource.plural}/{target.subresource}: no node agent is serving "
            f"node {node or target.name!r}"
        )
