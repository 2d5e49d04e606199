"""The agent's HTTPS endpoint (the kubelet's port 10250): container logs, exec, health, pods.

| path | what |
|---|---|
| ``GET /containerLogs/{namespace}/{pod}/{container}`` | the container's log |
| ``/exec/{namespace}/{pod}/{container}`` (WebSocket) | a command's streams (:mod:`.channels`) |
| ``GET /healthz`` | ``ok`` (the only path open to anonymous callers) |
| ``GET /pods`` | the pods the agent runs, as a PodList |

Log queries: ``follow``, ``tailLines`` (and the older ``tail``), ``timestamps``, ``previous``,
``sinceSeconds``, ``sinceTime``, ``limitBytes``, ``stream``. Exec queries: ``command``
(repeated), ``stdin``, ``stdout``, ``stderr``, ``tty``.

Callers authenticate with a client certificate chaining to the cluster CA (the apiserver's)
or a bearer token the agent was given; anonymous requests get 401. Every authenticated
caller may do everything (the apiserver authorizes ``pods/log`` and ``pods/exec``; the
kubelet's SubjectAccessReview of direct callers is not done).

Refusals are plain text with the kubelet's wording and codes, e.g. 400 ``container "app" in
pod "web" is waiting to start: ContainerCreating``; the apiserver wraps them in a Status.

The endpoint knows pods through :class:`ServedPods` (the agent core) and runs commands and
checks container states through :class:`StreamingRuntime` (any ``ContainerRuntime``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import ssl
import time
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson
import uvicorn
from attrs import frozen
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from engenho.node_agent import channels
from engenho.node_agent.credentials import PeerCertificateProtocol, client_certificate
from engenho.node_agent.executing import ExecOptions, run_exec_session
from engenho.node_agent.logs import LogOptions, parse_timestamp, read_log
from engenho.node_agent.runtime import (
    ByteSink,
    ContainerRuntimeError,
    ContainerState,
    ContainerStatus,
)
from engenho.pki import CertificateIdentityError, identity_from_certificate
from engenho.streams import until

__all__ = [
    "DEFAULT_PORT",
    "UPGRADE_REQUIRED",
    "AgentAuthenticator",
    "AgentServer",
    "Caller",
    "ServedPods",
    "StreamingRuntime",
    "build_agent_app",
    "log_container_id",
    "parse_bool",
]

_log = logging.getLogger("engenho.node_agent.serving")

DEFAULT_PORT = 10250
UPGRADE_REQUIRED = "Upgrade request required"
_PUBLIC_PATHS = ("/healthz",)
_AUTHENTICATED = "system:authenticated"
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_STATUS_LISTS = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")
_GRACEFUL_SECONDS = 2


@frozen
class Caller:
    """Who called the endpoint (the user and groups of a certificate, or a token's)."""

    user: str
    groups: tuple[str, ...] = ()


class ServedPods(Protocol):
    """What the agent core tells the endpoint about the pods it runs."""

    def pod(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The pod with the status the agent last computed for it; None when it runs no
        such pod."""

    def pods(self) -> Sequence[Mapping[str, Any]]:
        """Every pod the agent runs (for ``/pods``)."""

    def log_path(self, namespace: str, name: str, container: str, *, previous: bool) -> Path | None:
        """The log file of the container's current instance (or, with ``previous``, of the
        one before it); None when there is none."""


class StreamingRuntime(Protocol):
    """What the endpoint asks of the container runtime (``ContainerRuntime`` has it all)."""

    async def container_status(self, container_id: str) -> ContainerStatus: ...

    async def exec(
        self,
        container_id: str,
        argv: Sequence[str],
        *,
        stdin: Any = None,
        stdout: ByteSink | None = None,
        stderr: ByteSink | None = None,
        tty: bool = False,
        resize: Any = None,
    ) -> int: ...


class _RefusedError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def response(self) -> Response:
        return PlainTextResponse(self.message, self.code)


# -- query decoding -------------------------------------------------------------------------


def parse_bool(value: str | None) -> bool:
    """apimachinery's query booleans: absent, ``false`` and ``0`` are false; anything else,
    even an empty value, is true."""
    return value is not None and value.lower() not in ("false", "0")


def _int(params: QueryParams, name: str) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError as exc:
        raise _RefusedError(400, '{"message": "Unable to decode query."}') from exc


def _log_options(params: QueryParams) -> tuple[LogOptions, bool]:
    """The decoded ``/containerLogs`` query and its ``previous`` flag."""
    tail = _int(params, "tailLines")
    legacy = params.get("tail")  # the kubelet's older spelling; "all" means no tail
    if legacy:
        tail = None if legacy == "all" else _int(params, "tail")
    since_seconds = _int(params, "sinceSeconds")
    limit = _int(params, "limitBytes")
    since_time = params.get("sinceTime") or None
    stream = params.get("stream") or None
    invalid = (
        (tail is not None and tail < 0)
        or (limit is not None and limit < 1)
        or (since_seconds is not None and (since_seconds < 1 or since_time is not None))
        or stream not in (None, "All", "Stdout", "Stderr")
    )
    if invalid:
        raise _RefusedError(422, '{"message": "Invalid request."}')
    since_ns: int | None = None
    if since_time is not None:
        try:
            since_ns = parse_timestamp(since_time)
        except ValueError as exc:
            raise _RefusedError(400, '{"message": "Unable to decode query."}') from exc
    elif since_seconds is not None:
        since_ns = time.time_ns() - since_seconds * 1_000_000_000
    options = LogOptions(
        tail_lines=tail,
        since_ns=since_ns,
        timestamps=parse_bool(params.get("timestamps")),
        limit_bytes=limit,
        follow=parse_bool(params.get("follow")),
        stream={"Stdout": "stdout", "Stderr": "stderr"}.get(stream or ""),
    )
    return options, parse_bool(params.get("previous"))


# -- which instance's log -------------------------------------------------------------------


def _has_container(pod: Mapping[str, Any], container: str) -> bool:
    spec = pod.get("spec") or {}
    return any(c.get("name") == container for key in _CONTAINER_LISTS for c in spec.get(key) or ())


def _container_status(pod: Mapping[str, Any], container: str) -> Mapping[str, Any] | None:
    status = pod.get("status") or {}
    for key in _STATUS_LISTS:
        for entry in status.get(key) or ():
            if entry.get("name") == container:
                return entry  # type: ignore[no-any-return]
    return None


def log_container_id(pod: Mapping[str, Any], container: str, *, previous: bool) -> str:
    """The ``containerID`` whose log to serve, from the pod's status, or a 400 refusal in
    the kubelet's words (``validateContainerLogStatus``)."""
    name = (pod.get("metadata") or {}).get("name", "")
    entry = _container_status(pod, container)
    if entry is None:
        raise _RefusedError(400, f'container "{container}" in pod "{name}" is not available')
    state = entry.get("state") or {}
    last = (entry.get("lastState") or {}).get("terminated")
    last_id = (last or {}).get("containerID") or ""
    waiting, running, terminated = (
        state.get("waiting"),
        state.get("running"),
        state.get("terminated"),
    )
    if previous:
        if not last_id:
            raise _RefusedError(
                400, f'previous terminated container "{container}" in pod "{name}" not found'
            )
        return str(last_id)
    if running is not None:
        return str(entry.get("containerID") or "")
    if terminated is not None or last is not None:
        found = (terminated or {}).get("containerID") or last_id
        if not found:
            raise _RefusedError(400, f'container "{container}" in pod "{name}" is terminated')
        return str(found)
    if waiting is not None:
        reason = waiting.get("reason") or ""
        why = {
            "ErrImagePull": "image can't be pulled",
            "ImagePullBackOff": "trying and failing to pull image",
        }.get(reason, reason)
        raise _RefusedError(
            400, f'container "{container}" in pod "{name}" is waiting to start: {why}'
        )
    raise _RefusedError(
        400, f'container "{container}" in pod "{name}" is waiting to start - no logs yet'
    )


def _runtime_id(container_id: str) -> str:
    """``oci://abc`` -> ``abc`` (the status form carries the runtime's name)."""
    return container_id.partition("://")[2] or container_id


def _running_id(pod: Mapping[str, Any], container: str) -> str | None:
    entry = _container_status(pod, container)
    if entry is None or (entry.get("state") or {}).get("running") is None:
        return None
    return _runtime_id(str(entry.get("containerID") or "")) or None


# -- authentication -------------------------------------------------------------------------


class AgentAuthenticator:
    """A client certificate the TLS layer verified against the cluster CA, or one of the
    bearer tokens given; None for an anonymous caller. An unknown token is refused."""

    def __init__(self, tokens: Mapping[str, Caller] | None = None) -> None:
        self._tokens = dict(tokens or {})

    def authenticate(self, scope: Any) -> Caller | None:
        der = client_certificate(scope)
        if der is not None:
            try:
                user, groups = identity_from_certificate(der)
            except CertificateIdentityError as exc:
                raise _RefusedError(401, "Unauthorized") from exc
            return Caller(user, (*groups, _AUTHENTICATED))
        authorization = ""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer":
            for known, actor in self._tokens.items():
                if hmac.compare_digest(known.encode(), token.strip().encode()):
                    return Caller(actor.user, (*actor.groups, _AUTHENTICATED))
        raise _RefusedError(401, "Unauthorized")


def _refuse_anonymous(actor: Caller | None, path: str) -> None:
    if actor is None and path not in _PUBLIC_PATHS:
        raise _RefusedError(401, "Unauthorized")


@frozen
class _Authenticating:
    app: Any
    authenticator: AgentAuthenticator

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            actor = self.authenticator.authenticate(scope)
            _refuse_anonymous(actor, scope["path"])
        except _RefusedError as refusal:
            # A WebSocket is refused with an HTTP response too (the ASGI denial extension).
            await refusal.response()(scope, receive, send)
            return
        scope.setdefault("state", {})["identity"] = actor
        await self.app(scope, receive, send)


# -- the endpoints --------------------------------------------------------------------------


class _Endpoints:
    def __init__(self, pods: ServedPods, runtime: StreamingRuntime, stop: asyncio.Event) -> None:
        self.pods = pods
        self.runtime = runtime
        self.stop = stop

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def pod_list(self, request: Request) -> Response:
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": self.pods.pods()}
        return Response(orjson.dumps(body), media_type="application/json")

    def _pod(self, namespace: str, name: str, container: str) -> Mapping[str, Any]:
        pod = self.pods.pod(namespace, name)
        if pod is None:
            raise _RefusedError(404, f'pod "{name}" does not exist')
        if not _has_container(pod, container):
            raise _RefusedError(404, f'container "{container}" not found in pod "{name}"')
        return pod

    async def container_logs(self, request: Request) -> Response:
        params = request.path_params
        namespace, name, container = params["namespace"], params["pod"], params["container"]
        try:
            options, previous = _log_options(request.query_params)
            pod = self._pod(namespace, name, container)
            container_id = log_container_id(pod, container, previous=previous)
            path = await self._log_path(namespace, name, container, container_id, previous)
        except _RefusedError as refusal:
            return refusal.response()

        async def still_running() -> bool:
            if previous:
                return False
            try:
                status = await self.runtime.container_status(_runtime_id(container_id))
            except ContainerRuntimeError:
                return False
            return status.state is ContainerState.RUNNING

        chunks = read_log(path, options, still_running=still_running)
        return StreamingResponse(
            until(chunks, self.stop),
            media_type="text/plain",
            background=BackgroundTask(chunks.aclose),  # type: ignore[attr-defined]
        )

    async def _log_path(
        self, namespace: str, name: str, container: str, container_id: str, previous: bool
    ) -> Path:
        path = self.pods.log_path(namespace, name, container, previous=previous)
        if path is not None:
            return path
        # The runtime knows where an instance it still holds writes.
        with contextlib.suppress(ContainerRuntimeError):
            status = await self.runtime.container_status(_runtime_id(container_id))
            return status.log_path
        raise _RefusedError(400, f'the log of container "{container}" in pod "{name}" is gone')

    async def exec_upgrade_required(self, request: Request) -> Response:
        """``/exec`` without a WebSocket upgrade: the same checks, then the kubelet's 400
        (the apiserver asks this way to learn why an exec would be refused)."""
        try:
            self._exec_target(request.path_params, request.query_params)
        except _RefusedError as refusal:
            return refusal.response()
        return PlainTextResponse(UPGRADE_REQUIRED, 400)

    def _exec_target(
        self, params: Mapping[str, Any], query: QueryParams
    ) -> tuple[ExecOptions, str]:
        """What to run, and the runtime id of the container to run it in; refusals in the
        kubelet's words."""
        namespace, name, container = params["namespace"], params["pod"], params["container"]
        tty = parse_bool(query.get("tty"))
        options = ExecOptions(
            command=tuple(query.getlist("command")),
            stdin=parse_bool(query.get("stdin")),
            stdout=parse_bool(query.get("stdout")),
            # The kubelet drops stderr with a TTY: the terminal carries both.
            stderr=parse_bool(query.get("stderr")) and not tty,
            tty=tty,
        )
        if not (options.stdin or options.stdout or options.stderr):
            raise _RefusedError(400, "you must specify at least 1 of stdin, stdout, stderr")
        if not options.command:
            raise _RefusedError(400, "you must specify at least one command for the container")
        pod = self._pod(namespace, name, container)
        container_id = _running_id(pod, container)
        if container_id is None:
            raise _RefusedError(404, f'container not found ("{container}")')
        return options, container_id

    @staticmethod
    def _protocol(offered: Sequence[str]) -> channels.ChannelProtocol:
        protocol = channels.negotiate(offered)
        if protocol is None:
            raise _RefusedError(
                400,
                f"requested protocol(s) are not supported: {list(offered)}; "
                f"supports {sorted(channels.PROTOCOLS)}",
            )
        return protocol

    async def exec(self, websocket: WebSocket) -> None:
        offered = websocket.scope.get("subprotocols") or []
        try:
            options, container_id = self._exec_target(websocket.path_params, websocket.query_params)
            protocol = self._protocol(offered)
        except _RefusedError as refusal:
            await websocket.send_denial_response(refusal.response())
            return
        await websocket.accept(subprotocol=protocol.name if offered else None)

        async def run(argv: Sequence[str], **streams: Any) -> int:
            return await self.runtime.exec(container_id, argv, **streams)

        await run_exec_session(websocket, protocol, options, run, stop=self.stop)


def build_agent_app(
    pods: ServedPods,
    runtime: StreamingRuntime,
    *,
    authenticator: AgentAuthenticator,
    stop: asyncio.Event | None = None,
) -> Any:
    """The endpoint's ASGI app. Setting ``stop`` ends followed logs and exec sessions."""
    endpoints = _Endpoints(pods, runtime, stop or asyncio.Event())
    exec_path = "/exec/{namespace}/{pod}/{container}"
    app = Starlette(
        routes=[
            Route("/healthz", endpoints.healthz),
            Route("/pods", endpoints.pod_list),
            Route("/pods/", endpoints.pod_list),
            Route("/containerLogs/{namespace}/{pod}/{container}", endpoints.container_logs),
            WebSocketRoute(exec_path, endpoints.exec),
            Route(exec_path, endpoints.exec_upgrade_required, methods=["GET", "POST"]),
        ]
    )
    return _Authenticating(app, authenticator)


# -- the server -----------------------------------------------------------------------------


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the process (``engenho server`` or ``engenho
    agent``) owns the signals and stops the endpoint itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class AgentServer:
    """The endpoint on uvicorn. ``port`` 0 picks a free port; after :meth:`start`,
    :attr:`port` is the one bound (the agent reports it as the Node's
    ``status.daemonEndpoints.kubeletEndpoint.Port``)."""

    def __init__(
        self,
        pods: ServedPods,
        runtime: StreamingRuntime,
        *,
        ssl_context: ssl.SSLContext,
        authenticator: AgentAuthenticator,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
    ) -> None:
        self.host = host
        self.port = port
        self._stop = asyncio.Event()
        app = build_agent_app(pods, runtime, authenticator=authenticator, stop=self._stop)
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=PeerCertificateProtocol,
            ssl_context_factory=lambda _config, _default: ssl_context,
            lifespan="off",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=_GRACEFUL_SECONDS,
            proxy_headers=False,
            server_header=False,
        )
        self._server = _Server(self._config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    async def start(self) -> None:
        """Listen; returns once the socket is bound (raises OSError if it cannot be)."""
        self._config.load()
        self._task = asyncio.create_task(self._server.serve(), name="node-agent-endpoint")
        while not self._server.started:
            if self._task.done():
                await self._task
                raise OSError(f"the node agent endpoint could not listen on {self.url}")
            await asyncio.sleep(0.01)  # uvicorn has no started event
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        _log.info("node agent endpoint at %s", self.url)

    async def stop(self) -> None:
        """End followed logs and exec sessions, then stop listening."""
        self._stop.set()
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
