"""HTTP to one API server: credentials, TLS, keep-alive pooling, retries, Status errors.

One httpx ``AsyncClient`` (HTTP/1.1 keep-alive, pooled) per client certificate in use:
a certificate is part of the TLS handshake, so an exec plugin that issues a new one gets a
new pool while requests in flight finish on the old one.

Retries (:class:`~engenho.client.retrying.RetryPolicy`):

| failure | retried for |
|---|---|
| 429 TooManyRequests | every verb (the server did nothing) |
| connection refused, connect timeout, pool timeout | every verb (nothing was sent) |
| 503, or a 500/504 that carries ``Retry-After`` | idempotent verbs |
| reset or timeout after sending | idempotent verbs |
| 401 Unauthorized | once, every verb, when refreshing the credential changed it |

Idempotent verbs are GET, HEAD, PUT and DELETE (a PUT carries the resourceVersion it
replaces; a repeated DELETE finds the object gone). Every other failure raises at once: a
Status as the matching :class:`~engenho.client.errors.ApiError`, no answer as
:class:`~engenho.client.errors.TransportError`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager

import httpx

from engenho.client.auth import Credential, Credentials
from engenho.client.config import ClientConfig
from engenho.client.errors import (
    ApiError,
    ClientTimeoutError,
    TransportError,
    error_for_status,
    status_for_response,
)
from engenho.client.retrying import RetryPolicy, parse_retry_after
from engenho.client.tls import CertificatePair, ssl_context

__all__ = ["DEFAULT_TIMEOUT", "IDEMPOTENT_METHODS", "USER_AGENT", "Params", "Transport"]

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
USER_AGENT = "engenho-client/0.1.0"
_log = logging.getLogger("engenho.client")
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

Params = Mapping[str, str | int | bool | Sequence[str] | None]


def _query(params: Params | None) -> httpx.QueryParams:
    """Query parameters as the apiserver reads them: booleans as true/false, lists
    repeated, None left out."""
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, str | int):
            pairs.append((key, str(value)))
        else:
            pairs.extend((key, str(item)) for item in value)
    return httpx.QueryParams(pairs)


class Transport:
    """Sends requests to ``config.server`` as ``config``'s user."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        credentials: Credentials | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, shared safely
        limits: httpx.Limits | None = None,
        user_agent: str = USER_AGENT,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.credentials = credentials if credentials is not None else config.credentials()
        self.timeout = timeout
        self.retry = retry
        # Watches hold a connection each for minutes: the pool must not cap them.
        self._limits = limits or httpx.Limits(max_connections=None, max_keepalive_connections=32)
        self._headers = {"User-Agent": user_agent}
        self._http_transport = http_transport
        self._clients: dict[CertificatePair | None, httpx.AsyncClient] = {}
        self._retired: list[httpx.AsyncClient] = []
        self._building = asyncio.Lock()
        self._closed = False

    # ------------------------------------------------------------------ pools

    async def _client_for(self, certificate: CertificatePair | None) -> httpx.AsyncClient:
        client = self._clients.get(certificate)
        if client is not None:
            return client
        async with self._building:
            client = self._clients.get(certificate)
            if client is None:
                if self._closed:
                    raise TransportError("the client is closed")
                client = await self._build(certificate)
                await self._retire(keep=certificate)
                self._clients[certificate] = client
            return client

    async def _retire(self, keep: CertificatePair | None) -> None:
        """A new client certificate replaces the previous one (an exec plugin rotated it):
        the previous pool stays open for requests in flight, any older one is closed."""
        if keep is None:
            return
        older = [cert for cert in self._clients if cert is not None and cert != keep]
        for cert in older:
            self._retired.append(self._clients.pop(cert))
        while len(self._retired) > 1:
            await self._retired.pop(0).aclose()

    async def _build(self, certificate: CertificatePair | None) -> httpx.AsyncClient:
        if self._http_transport is not None:
            return httpx.AsyncClient(
                base_url=self.config.server,
                transport=self._http_transport,
                headers=self._headers,
                timeout=self.timeout,
            )
        verify: ssl.SSLContext | bool = True
        if self.config.server.startswith("https:"):
            # Building a context may read the system trust store: keep it off the loop.
            verify = await asyncio.to_thread(ssl_context, self.config.tls, certificate)
        return httpx.AsyncClient(
            base_url=self.config.server,
            verify=verify,
            headers=self._headers,
            timeout=self.timeout,
            limits=self._limits,
            proxy=self.config.proxy_url,
            # Environment proxies apply when the kubeconfig names none, as with kubectl.
            trust_env=self.config.proxy_url is None,
        )

    async def aclose(self) -> None:
        """Close every pool; requests in flight fail."""
        self._closed = True
        async with self._building:
            clients, self._clients = [*self._clients.values(), *self._retired], {}
            self._retired = []
        for client in clients:
            await client.aclose()

    # ------------------------------------------------------------------ requests

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str = "application/json",
        http_timeout: httpx.Timeout | float | None = None,
    ) -> httpx.Response:
        """Send one request and read the whole answer; raise for any failure Status."""
        response = await self._send(method, path, params, body, content_type, accept, http_timeout)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        accept: str = "application/json",
        http_timeout: httpx.Timeout | float | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """Send one request whose successful answer is read as a stream (watch, logs);
        ``retry`` replaces the client's policy (a watcher has its own)."""
        response = await self._send(
            method, path, params, None, None, accept, http_timeout, stream=True, retry=retry
        )
        try:
            yield response
        finally:
            await response.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        params: Params | None,
        body: bytes | None,
        content_type: str | None,
        accept: str,
        http_timeout: httpx.Timeout | float | None,
        *,
        stream: bool = False,
        retry: RetryPolicy | None = None,
    ) -> httpx.Response:
        policy = retry or self.retry
        idempotent = method in IDEMPOTENT_METHODS
        backoff = policy.backoff()
        attempt, refreshed = 0, False
        headers = {"Accept": accept}
        if content_type is not None:
            headers["Content-Type"] = content_type
        extensions = {}
        if self.config.tls.server_name:
            extensions["sni_hostname"] = self.config.tls.server_name
        while True:
            attempt += 1
            credential = await self.credentials.current()
            client = await self._client_for(credential.certificate)
            request = client.build_request(
                method,
                path,
                params=_query(params),
                content=body,
                headers=_with_authorization(headers, credential),
                timeout=self.timeout if http_timeout is None else http_timeout,
                extensions=extensions,
            )
            response = None
            try:
                response = await client.send(request, stream=True)
                if response.status_code < 400 and not stream:
                    await response.aread()
            except httpx.TransportError as exc:
                if response is not None:
                    await response.aclose()
                unsent = isinstance(exc, _NOT_SENT)
                retriable = (unsent or idempotent) and not _is_tls_failure(exc)
                if attempt < policy.attempts and retriable:
                    await asyncio.sleep(backoff.next())
                    continue
                raise _transport_error(method, request.url, exc) from exc
            if response.status_code < 400:
                for warning in response.headers.get_list("warning"):
                    # What kubectl prints as "Warning: ..." (deprecations, unknown fields).
                    _log.warning("%s %s: server warning: %s", method, path, warning)
                return response
            error = await _error(response)
            if error.code == 401 and not refreshed and not self.credentials.anonymous:
                refreshed = True
                if await self.credentials.refresh(credential):
                    attempt -= 1  # a new credential is a new request, not a retry
                    continue
            delay = _retry_delay(policy, error, response, idempotent, attempt, backoff.next)
            if delay is None:
                raise error
            await asyncio.sleep(delay)


def _retry_delay(
    policy: RetryPolicy,
    error: ApiError,
    response: httpx.Response,
    idempotent: bool,
    attempt: int,
    next_backoff: Callable[[], float],
) -> float | None:
    """How long to wait before retrying ``error``, or None to raise it."""
    if attempt >= policy.attempts:
        return None
    asked = "retry-after" in response.headers
    retriable = error.code == 429 or (
        idempotent and (error.code == 503 or (error.code in (500, 504) and asked))
    )
    if not retriable:
        return None
    if error.retry_after is not None:
        return error.retry_after if error.retry_after <= policy.max_retry_after else None
    return next_backoff()


def _with_authorization(headers: dict[str, str], credential: Credential) -> dict[str, str]:
    if credential.authorization is None:
        return headers
    return {**headers, "Authorization": credential.authorization}


async def _error(response: httpx.Response) -> ApiError:
    """The ApiError an error answer carries (its body read and the response closed)."""
    try:
        body = await response.aread()
    except httpx.TransportError:
        body = b""
    finally:
        await response.aclose()
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    status = status_for_response(response.status_code, body)
    return error_for_status(status, retry_after=retry_after)


def _is_tls_failure(exc: BaseException) -> bool:
    """A failed handshake (an untrusted or misnamed certificate) will fail again."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _transport_error(method: str, url: httpx.URL, exc: httpx.TransportError) -> TransportError:
    where = f"{method} {url.copy_with(query=None)}"
    if isinstance(exc, httpx.TimeoutException):
        return ClientTimeoutError(f"{where}: timed out ({type(exc).__name__})")
    # A peer that resets the connection (a refused client certificate under TLS 1.3, a
    # server killed mid-request) surfaces as a bare ReadError/WriteError with no text.
    detail = str(exc) or f"the server disconnected ({type(exc).__name__})"
    return TransportError(f"{where}: {detail}")
