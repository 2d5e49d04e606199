"""``pods/log`` and ``pods/exec``: answered by the node agent of the pod's node, through us.

The apiserver decides what it can alone, with upstream's words (``pkg/registry/core/pod``):
the pod must exist (404), the container must be named when the pod has several
(``a container name must be specified for pod web, choose one of: [init app sidecar]``) and
must be the pod's (``container x is not valid for pod web``), and the query must be valid
(``PodLogOptions "web" is invalid: tailLines: ...``, 422). A pod on no node has an empty log
(upstream streams nothing from an empty location) and cannot be exec'd into (``pod web does
not have a host assigned``, 400).

The agent is found from the Node: an address from ``status.addresses`` (InternalIP, then
ExternalIP, Hostname, InternalDNS, ExternalDNS, as k3s prefers them) and the port
``status.daemonEndpoints.kubeletEndpoint.Port`` (10250 when unset). We connect over TLS with
a client certificate of the cluster CA (``kube-apiserver-kubelet-client``, group
``system:masters``) and check the agent's certificate against the same CA, unless the log
request says ``insecureSkipTLSVerifyBackend``.

Logs are streamed as they come (chunked; ``follow`` streams until the container stops, the
client leaves or the server shuts down). The agent's refusals become Statuses as upstream's
``GenericHttpResponseChecker`` makes them: 400 BadRequest and 500 InternalError with the
agent's text, so ``kubectl logs`` prints ``Error from server (BadRequest): container "app" in
pod "web" is waiting to start: ContainerCreating``.

Exec is a WebSocket (``v5.channel.k8s.io`` for kubectl 1.30+, ``v4.channel.k8s.io`` and the
older ones for other clients): we open a WebSocket to the agent offering the client's
subprotocols, accept the client with the one the agent chose, and relay messages both ways
unchanged. kubectl before 1.30 asks for SPDY/3.1 instead: that upgrade is taken over below
the app (``spdy_exec.py``), with the same checks (:meth:`NodeAgents.exec_url`) and the same
agent WebSocket (:meth:`NodeAgents.connect_exec`). A plain request, or another kind of
upgrade, is checked the same way, then told that an upgrade to a WebSocket is required.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import websockets
from starlette.background import BackgroundTask
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from engenho.api.resources import status_response
from engenho.node_agent.logs import parse_timestamp
from engenho.node_agent.serving import UPGRADE_REQUIRED, parse_bool
from engenho.pki import ClusterPKI, issue_client_certificate
from engenho.pki.certificates import is_issued_by, load_certificate, needs_renewal
from engenho.pki.files import PRIVATE_MODE, PUBLIC_MODE, write_atomically
from engenho.registry import (
    BadRequestError,
    InternalError,
    InvalidError,
    NotFoundError,
    Registry,
    StatusCause,
    StatusError,
)
from engenho.schema import Catalogue
from engenho.streams import until

__all__ = [
    "ADDRESS_PREFERENCE",
    "AGENT_CLIENT_GROUPS",
    "AGENT_CLIENT_USER",
    "DEFAULT_AGENT_PORT",
    "NodeAgents",
    "agent_client_context",
    "choose_container",
]

_log = logging.getLogger("engenho.api.proxying")

DEFAULT_AGENT_PORT = 10250
ADDRESS_PREFERENCE = ("InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS")
AGENT_CLIENT_USER = "kube-apiserver-kubelet-client"
AGENT_CLIENT_GROUPS = ("system:masters",)
_CLIENT_CERT, _CLIENT_KEY = "apiserver-kubelet-client.crt", "apiserver-kubelet-client.key"
_CONNECT_SECONDS = 10.0
_ERROR_BODY_LIMIT = 64 * 1024
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_UNSENDABLE_CLOSE_CODES = (1005, 1006, 1015)


def agent_client_context(pki: ClusterPKI) -> ssl.SSLContext:
    """A TLS client context for talking to node agents: the apiserver's client certificate
    (issued into the PKI directory on first use, reissued when it no longer fits) and the
    cluster CA as the only trusted issuer of agents' serving certificates."""
    cert_path = pki.directory / _CLIENT_CERT
    key_path = pki.directory / _CLIENT_KEY
    if not _usable(cert_path, key_path, pki):
        certificate, key = issue_client_certificate(
            pki, user=AGENT_CLIENT_USER, groups=AGENT_CLIENT_GROUPS
        )
        write_atomically(key_path, key, mode=PRIVATE_MODE)
        write_atomically(cert_path, certificate, mode=PUBLIC_MODE)
    context = ssl.create_default_context(cadata=pki.ca_pem.decode("ascii"))
    context.load_cert_chain(cert_path, key_path)
    return context


def _usable(cert_path: Path, key_path: Path, pki: ClusterPKI) -> bool:
    try:
        certificate = load_certificate(cert_path.read_bytes())
        ca = load_certificate(pki.ca_pem)
    except (FileNotFoundError, ValueError):
        return False
    return (
        key_path.exists()
        and is_issued_by(certificate, ca)
        and not needs_renewal(certificate, now=datetime.now(UTC))
    )


def _parse_int(params: QueryParams, name: str) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError as exc:
        raise BadRequestError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from exc


def choose_container(pod: Mapping[str, Any], requested: str) -> str:
    """The container a request is for: the one named, else the pod's only container
    (upstream's ``validateContainer``)."""
    spec = pod.get("spec") or {}
    pod_name = (pod.get("metadata") or {}).get("name", "")
    names = [str(c.get("name", "")) for key in _CONTAINER_LISTS for c in spec.get(key) or () if c]
    if requested:
        if requested not in names:
            raise BadRequestError(f"container {requested} is not valid for pod {pod_name}")
        return requested
    containers = spec.get("containers") or []
    if len(containers) == 1:
        return str(containers[0].get("name", ""))
    if not containers:
        raise BadRequestError(f"a container name must be specified for pod {pod_name}")
    raise BadRequestError(
        f"a container name must be specified for pod {pod_name}, choose one of: [{' '.join(names)}]"
    )


def _agent_refusal(code: int, body: str) -> StatusError:
    """A Status for the agent's refusal (upstream's ``GenericHttpResponseChecker``)."""
    if code == 400:
        return BadRequestError(body)
    if code == 404:
        return NotFoundError(body)
    if code == 500:
        return InternalError(body)
    return InternalError(f"the node agent answered {code}: {body}".rstrip(": "))


def _host(host: str) -> str:
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


class NodeAgents:
    """The apiserver's way to the node agents. ``tls`` is the client context (see
    :func:`agent_client_context`); ``insecure_tls`` the same identity without verifying the
    agent (built from ``client_cert``/``client_key`` when given)."""

    def __init__(
        self,
        registry: Registry,
        catalogue: Catalogue,
        shutdown: asyncio.Event,
        *,
        tls: ssl.SSLContext | None = None,
        client_cert: tuple[Path, Path] | None = None,
    ) -> None:
        self.registry = registry
        self.shutdown = shutdown
        self._pods = catalogue.get("", "v1", "pods")
        self._nodes = catalogue.get("", "v1", "nodes")
        self._tls = tls
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        if client_cert is not None:
            insecure.load_cert_chain(*client_cert)
        self._insecure_tls = insecure

    @classmethod
    def from_pki(
        cls, registry: Registry, catalogue: Catalogue, shutdown: asyncio.Event, pki: ClusterPKI
    ) -> NodeAgents:
        context = agent_client_context(pki)
        return cls(
            registry,
            catalogue,
            shutdown,
            tls=context,
            client_cert=(pki.directory / _CLIENT_CERT, pki.directory / _CLIENT_KEY),
        )

    # -- where ------------------------------------------------------------------------------

    async def _pod(self, namespace: str, name: str) -> dict[str, Any]:
        stored = await self.registry.get(self._pods, namespace, name)
        return stored.object

    async def agent_address(self, node_name: str) -> tuple[str, int]:
        """``(host, port)`` of the agent serving ``node_name``."""
        node = (await self.registry.get(self._nodes, "", node_name)).object
        status = node.get("status") or {}
        endpoint = (status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}
        port = endpoint.get("Port") or DEFAULT_AGENT_PORT
        addresses = [a for a in status.get("addresses") or () if isinstance(a, dict)]
        for kind in ADDRESS_PREFERENCE:
            for address in addresses:
                if address.get("type") == kind and address.get("address"):
                    return str(address["address"]), int(port)
        known = " ".join(f"{a.get('type')}:{a.get('address')}" for a in addresses)
        raise InternalError(f"no preferred addresses found; known addresses: [{known}]")

    def _context(self, insecure: bool) -> ssl.SSLContext:
        if insecure:
            return self._insecure_tls
        if self._tls is None:
            raise InternalError("this server has no credentials for node agents")
        return self._tls

    # -- logs -------------------------------------------------------------------------------

    async def logs(self, request: Request, namespace: str, name: str) -> Response:
        params = request.query_params
        query, insecure = _log_query(params, name)
        pod = await self._pod(namespace, name)
        container = choose_container(pod, params.get("container") or "")
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            return Response(b"", media_type="text/plain")
        host, port = await self.agent_address(node)
        path = "/".join(quote(part, safe="") for part in (namespace, name, container))
        url = f"https://{_host(host)}:{port}/containerLogs/{path}"
        if query:
            url += "?" + urlencode(query)
        client = httpx.AsyncClient(
            verify=self._context(insecure),
            timeout=httpx.Timeout(_CONNECT_SECONDS, read=None),
            trust_env=False,
        )
        try:
            answer = await client.send(client.build_request("GET", url), stream=True)
        except httpx.HTTPError as exc:
            await client.aclose()
            raise InternalError(f'Get "{url}": {exc}') from exc
        if not 200 <= answer.status_code <= 206:
            try:
                body = await answer.aread()
            finally:
                await answer.aclose()
                await client.aclose()
            text = body[:_ERROR_BODY_LIMIT].decode("utf-8", "replace")
            raise _agent_refusal(answer.status_code, text)

        async def close() -> None:
            await answer.aclose()
            await client.aclose()

        return StreamingResponse(
            _until(answer.aiter_raw(), self.shutdown),
            media_type="text/plain",
            background=BackgroundTask(close),
        )

    # -- exec -------------------------------------------------------------------------------

    async def exec_url(self, params: QueryParams, namespace: str, name: str) -> str:
        """The agent's exec URL for a ``pods/exec`` request, after the apiserver's own checks:
        the pod exists, the container is chosen and valid, the pod has a node."""
        pod = await self._pod(namespace, name)
        container = choose_container(pod, params.get("container") or "")
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            raise BadRequestError(f"pod {name} does not have a host assigned")
        host, port = await self.agent_address(node)
        query: list[tuple[str, str]] = [
            (flag, "1")
            for flag in ("stdin", "stdout", "stderr", "tty")
            if parse_bool(params.get(flag))
        ]
        query += [("command", part) for part in params.getlist("command")]
        path = "/".join(quote(part, safe="") for part in (namespace, name, container))
        return f"wss://{_host(host)}:{port}/exec/{path}?{urlencode(query)}"

    async def exec_without_upgrade(self, request: Request, namespace: str, name: str) -> Response:
        """``pods/exec`` asked without a WebSocket upgrade, or with SPDY, which we do not
        speak (kubectl before 1.30 by default, or falling back after a refused WebSocket).
        The agent is asked the same way, so that its refusal (``container not found``) is
        what the client sees; when it would have run the command, a 400 says what to do."""
        url = (await self.exec_url(request.query_params, namespace, name)).replace(
            "wss://", "https://", 1
        )
        async with httpx.AsyncClient(
            verify=self._context(False), timeout=_CONNECT_SECONDS, trust_env=False
        ) as client:
            try:
                answer = await client.get(url)
            except httpx.HTTPError as exc:
                raise InternalError(f'error dialing backend "{url}": {exc}') from exc
        body = answer.content[:_ERROR_BODY_LIMIT].decode("utf-8", "replace")
        if (answer.status_code, body) != (400, UPGRADE_REQUIRED):
            raise _agent_refusal(answer.status_code, body)
        # As upstream: exec needs a WebSocket or SPDY/3.1 upgrade (the latter is taken over
        # before the app sees it, engenho.api.upgrading).
        raise BadRequestError(UPGRADE_REQUIRED)

    async def connect_exec(self, url: str, offered: Sequence[Subprotocol]) -> ClientConnection:
        """A WebSocket to the agent's exec at ``url`` (from :meth:`exec_url`), offering the
        ``offered`` subprotocols; the agent's refusal as a Status."""
        return await _open_agent(url, self._context(False), offered)

    async def exec_websocket(self, websocket: WebSocket) -> None:
        """``GET pods/{name}/exec`` with a WebSocket upgrade: relay to the agent."""
        namespace = websocket.path_params["namespace"]
        name = websocket.path_params["name"]
        offered = [Subprotocol(p) for p in websocket.scope.get("subprotocols") or ()]
        try:
            url = await self.exec_url(websocket.query_params, namespace, name)
            agent = await self.connect_exec(url, offered)
        except StatusError as exc:
            await websocket.send_denial_response(status_response(exc))
            return
        try:
            await websocket.accept(subprotocol=agent.subprotocol)
            await _relay(websocket, agent, self.shutdown)
        finally:
            await agent.close()


def _log_query(params: QueryParams, name: str) -> tuple[list[tuple[str, str]], bool]:
    """The agent's query for a ``pods/log`` request (upstream's ``LogLocation``), after
    ``ValidatePodLogOptions``; and whether to skip verifying the agent."""
    tail = _parse_int(params, "tailLines")
    limit = _parse_int(params, "limitBytes")
    since_seconds = _parse_int(params, "sinceSeconds")
    since_text = params.get("sinceTime") or None
    since_time: datetime | None = None
    if since_text is not None:
        try:
            since_time = datetime.fromtimestamp(parse_timestamp(since_text) // 10**9, UTC)
        except ValueError as exc:
            raise BadRequestError(
                f'parsing time "{since_text}" as "2006-01-02T15:04:05Z07:00": cannot parse'
            ) from exc
    stream = params.get("stream") or None
    causes: list[StatusCause] = []
    if tail is not None and tail < 0:
        causes.append(_invalid("tailLines", tail, "must be greater than or equal to 0"))
    if limit is not None and limit < 1:
        causes.append(_invalid("limitBytes", limit, "must be greater than 0"))
    if since_seconds is not None and since_time is not None:
        causes.append(
            StatusCause(
                "FieldValueForbidden",
                "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
                "sinceSeconds",
            )
        )
    elif since_seconds is not None and since_seconds < 1:
        causes.append(_invalid("sinceSeconds", since_seconds, "must be greater than 0"))
    if stream not in (None, "All", "Stdout", "Stderr"):
        causes.append(
            StatusCause(
                "FieldValueNotSupported",
                f'Unsupported value: "{stream}": supported values: "All", "Stderr", "Stdout"',
                "stream",
            )
        )
    if causes:
        texts = [f"{cause.field}: {cause.message}" for cause in causes]
        shown = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
        raise InvalidError(
            f'PodLogOptions "{name}" is invalid: {shown}',
            name=name,
            kind="PodLogOptions",
            causes=causes,
        )
    query: list[tuple[str, str]] = [
        (flag, "true")
        for flag in ("follow", "previous", "timestamps")
        if parse_bool(params.get(flag))
    ]
    if since_seconds is not None:
        query.append(("sinceSeconds", str(since_seconds)))
    if since_time is not None:
        query.append(("sinceTime", since_time.strftime("%Y-%m-%dT%H:%M:%SZ")))
    if tail is not None:
        query.append(("tailLines", str(tail)))
    if limit is not None:
        query.append(("limitBytes", str(limit)))
    if stream is not None:
        query.append(("stream", stream))
    return query, parse_bool(params.get("insecureSkipTLSVerifyBackend"))


def _invalid(field: str, value: int, detail: str) -> StatusCause:
    return StatusCause("FieldValueInvalid", f"Invalid value: {value}: {detail}", field)


async def _open_agent(
    url: str, context: ssl.SSLContext, offered: Sequence[Subprotocol]
) -> ClientConnection:
    try:
        return await connect(
            url,
            ssl=context,
            subprotocols=list(offered) or None,
            compression=None,
            proxy=None,
            user_agent_header=None,
            open_timeout=_CONNECT_SECONDS,
            max_size=None,
        )
    except websockets.exceptions.InvalidStatus as exc:
        body = exc.response.body or b""
        raise _agent_refusal(
            exc.response.status_code, body[:_ERROR_BODY_LIMIT].decode("utf-8", "replace")
        ) from exc
    except (OSError, TimeoutError, websockets.exceptions.InvalidHandshake) as exc:
        raise InternalError(f'error dialing backend "{url}": {exc}') from exc


async def _relay(client: WebSocket, agent: ClientConnection, shutdown: asyncio.Event) -> None:
    """Messages both ways, unchanged, until either side closes; the agent's close code is
    passed on to the client (1000 after the exec's status)."""

    async def from_client() -> None:
        while True:
            message = await client.receive()
            if message["type"] != "websocket.receive":
                return
            data = message.get("bytes")
            await agent.send(data if data is not None else message.get("text") or "")

    async def from_agent() -> None:
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            async for message in agent:
                if isinstance(message, bytes):
                    await client.send_bytes(message)
                else:
                    await client.send_text(message)

    upstream = asyncio.create_task(from_agent(), name="exec-relay-from-agent")
    downstream = asyncio.create_task(from_client(), name="exec-relay-from-client")
    stopping = asyncio.ensure_future(shutdown.wait())
    try:
        done, _ = await asyncio.wait(
            {upstream, downstream, stopping}, return_when=asyncio.FIRST_COMPLETED
        )
        if upstream in done and upstream.exception() is None:
            code = agent.close_code
            if code is None or code in _UNSENDABLE_CLOSE_CODES:
                code = 1000 if code is None else 1011
            with contextlib.suppress(Exception):
                await client.close(code)
    finally:
        for task in (upstream, downstream, stopping):
            task.cancel()
        await asyncio.gather(upstream, downstream, stopping, return_exceptions=True)


async def _until(chunks: AsyncIterator[bytes], shutdown: asyncio.Event) -> AsyncIterator[bytes]:
    """``chunks`` until the server starts shutting down (a followed log never ends)."""
    try:
        async for chunk in until(chunks, shutdown):
            yield chunk
    except httpx.HTTPError as exc:
        # The agent went away mid-stream: the client sees the stream end.
        _log.info("log stream from the node agent ended: %s", exc)
