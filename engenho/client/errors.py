"""Errors raised by the client, one class per ``metav1.Status`` reason (contract §10).

::

    ClientError                         base of every error raised by engenho.client
    ├── ConfigError                     a kubeconfig or in-cluster setting is missing or malformed
    ├── CredentialError                 a credential could not be obtained (unreadable token file)
    │   └── ExecPluginError             an exec credential plugin failed or answered badly
    ├── UnknownResourceTypeError        no served resource matches a name, kind or model class
    ├── TransportError                  no HTTP answer: refused, reset, TLS failure (after retries)
    │   └── ClientTimeoutError          connecting, sending or reading took longer than allowed
    ├── UnexpectedResponseError         an answer that is not Kubernetes JSON where JSON was due
    └── ApiError                        the server answered with a Status (``.status``, ``.code``)
        ├── BadRequestError             400 BadRequest
        ├── UnauthorizedError           401 Unauthorized
        ├── ForbiddenError              403 Forbidden
        ├── NotFoundError               404 NotFound
        ├── MethodNotAllowedError       405 MethodNotAllowed
        ├── NotAcceptableError          406 NotAcceptable
        ├── AlreadyExistsError          409 AlreadyExists
        ├── ConflictError               409 Conflict
        ├── GoneError                   410 Gone
        │   └── ExpiredError            410 Expired (history or a continue token is too old)
        ├── RequestEntityTooLargeError  413 RequestEntityTooLarge
        ├── UnsupportedMediaTypeError   415 UnsupportedMediaType
        ├── InvalidError                422 Invalid (``.causes`` names every bad field)
        ├── TooManyRequestsError        429 TooManyRequests (``.retry_after``)
        ├── InternalError               500 InternalError
        ├── ServerTimeoutError          500 ServerTimeout (``.retry_after``)
        ├── ServiceUnavailableError     503 ServiceUnavailable
        └── GatewayTimeoutError         504 Timeout (e.g. a resourceVersion not reached yet)

A Status whose ``reason`` is empty or unknown is classed by its HTTP code, as client-go does;
a code with no class of its own is a plain :class:`ApiError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson
from attrs import frozen

__all__ = [
    "AlreadyExistsError",
    "ApiError",
    "BadRequestError",
    "ClientError",
    "ClientTimeoutError",
    "ConfigError",
    "ConflictError",
    "CredentialError",
    "ExecPluginError",
    "ExpiredError",
    "ForbiddenError",
    "GatewayTimeoutError",
    "GoneError",
    "InternalError",
    "InvalidError",
    "MethodNotAllowedError",
    "NotAcceptableError",
    "NotFoundError",
    "RequestEntityTooLargeError",
    "ServerTimeoutError",
    "ServiceUnavailableError",
    "StatusCause",
    "TooManyRequestsError",
    "TransportError",
    "UnauthorizedError",
    "UnexpectedResponseError",
    "UnknownResourceTypeError",
    "UnsupportedMediaTypeError",
    "error_for_status",
    "status_for_response",
]


class ClientError(Exception):
    """Base class of every error raised by :mod:`engenho.client`."""


class ConfigError(ClientError):
    """A kubeconfig file, context, cluster or user is missing or malformed, or the in-cluster
    environment is incomplete. Raised while loading, before any request is made."""


class CredentialError(ClientError):
    """A credential could not be obtained: a token file or client certificate is unreadable."""


class ExecPluginError(CredentialError):
    """An exec credential plugin could not be run, exited non-zero, or printed something that
    is not a valid ExecCredential of the configured apiVersion."""


class UnknownResourceTypeError(ClientError, LookupError):
    """No resource the catalogue or the server's discovery knows matches what was asked for."""


class TransportError(ClientError):
    """The request got no HTTP answer (connection refused or reset, TLS handshake failure,
    broken proxy), after any retries the verb allows. Chained from the httpx error."""


class ClientTimeoutError(TransportError):
    """Connecting, sending or reading took longer than the configured timeout."""


class UnexpectedResponseError(ClientError):
    """The server answered with a body that is not the JSON the request calls for."""

    def __init__(self, message: str, *, code: int, body: bytes = b"") -> None:
        super().__init__(message)
        self.code = code
        self.body = body


@frozen
class StatusCause:
    """One ``details.causes`` row: a machine reason (``FieldValueRequired``), a message and the
    field it concerns (``spec.containers[0].image``; empty when none)."""

    reason: str
    message: str
    field: str = ""


class ApiError(ClientError):
    """The server refused the request with a ``metav1.Status``.

    ``status`` is the Status exactly as received; ``code``, ``reason`` and ``message`` are
    read from it (the HTTP code when the body has none). ``retry_after`` is the delay the
    server asked for (``Retry-After`` or ``details.retryAfterSeconds``), in seconds.
    """

    http_code: ClassVar[int] = 0
    """The HTTP code of this class's reason (what a Status without a code is taken to mean)."""
    reasons: ClassVar[tuple[str, ...]] = ()

    def __init__(self, status: Mapping[str, Any], *, retry_after: float | None = None) -> None:
        self.status: dict[str, Any] = dict(status)
        message = str(status.get("message") or "")
        super().__init__(message)
        self.message = message
        raw_code = status.get("code")
        self.code: int = raw_code if isinstance(raw_code, int) else self.http_code
        self.reason = str(status.get("reason") or "")
        details = status.get("details")
        self.details: dict[str, Any] = dict(details) if isinstance(details, Mapping) else {}
        if retry_after is None:
            seconds = self.details.get("retryAfterSeconds")
            if isinstance(seconds, int | float) and seconds > 0:
                retry_after = float(seconds)
        self.retry_after = retry_after

    @property
    def causes(self) -> tuple[StatusCause, ...]:
        """``details.causes``, in the server's order."""
        rows = self.details.get("causes") or ()
        return tuple(
            StatusCause(
                str(row.get("reason") or row.get("type") or ""),
                str(row.get("message") or ""),
                str(row.get("field") or ""),
            )
            for row in rows
            if isinstance(row, Mapping)
        )

    def __str__(self) -> str:
        reason = self.reason or type(self).__name__.removesuffix("Error")
        return f"({reason}) {self.message}" if self.message else f"({reason}) HTTP {self.code}"


class BadRequestError(ApiError):
    """A malformed body, parameter or selector."""

    http_code = 400
    reasons = ("BadRequest",)


class UnauthorizedError(ApiError):
    """No valid credential: none was sent, or the one sent was refused (after one refresh)."""

    http_code = 401
    reasons = ("Unauthorized",)


class ForbiddenError(ApiError):
    """The identity may not do this (RBAC, admission, a terminating namespace)."""

    http_code = 403
    reasons = ("Forbidden",)


class NotFoundError(ApiError):
    """The object, its namespace or the URL does not exist."""

    http_code = 404
    reasons = ("NotFound",)


class MethodNotAllowedError(ApiError):
    """The resource does not support the verb."""

    http_code = 405
    reasons = ("MethodNotAllowed",)


class NotAcceptableError(ApiError):
    """The server cannot produce the requested media type."""

    http_code = 406
    reasons = ("NotAcceptable",)


class AlreadyExistsError(ApiError):
    """A create named an object that exists."""

    http_code = 409
    reasons = ("AlreadyExists",)


class ConflictError(ApiError):
    """A precondition no longer holds (stale resourceVersion, uid) or an apply conflicts with
    another field manager: read again, re-apply the change, retry."""

    http_code = 409
    reasons = ("Conflict",)


class GoneError(ApiError):
    """The resource or the history asked for is gone."""

    http_code = 410
    reasons = ("Gone",)


class ExpiredError(GoneError):
    """A resourceVersion or continue token is older than the history the server keeps: list
    again (a watcher does this by itself)."""

    reasons = ("Expired",)


class RequestEntityTooLargeError(ApiError):
    """The request body is larger than the server accepts."""

    http_code = 413
    reasons = ("RequestEntityTooLarge",)


class UnsupportedMediaTypeError(ApiError):
    """The server does not accept the body's Content-Type (e.g. strategic merge on a CRD)."""

    http_code = 415
    reasons = ("UnsupportedMediaType",)


class InvalidError(ApiError):
    """The object failed validation; :attr:`causes` lists every violation with its field."""

    http_code = 422
    reasons = ("Invalid",)


class TooManyRequestsError(ApiError):
    """The server is overloaded or a budget forbids the request; retry after
    :attr:`retry_after` seconds. Raised once the client's own retries are used up."""

    http_code = 429
    reasons = ("TooManyRequests",)


class InternalError(ApiError):
    """A failure inside the server."""

    http_code = 500
    reasons = ("InternalError",)


class ServerTimeoutError(ApiError):
    """The server could not complete the operation in time and advises a retry."""

    http_code = 500
    reasons = ("ServerTimeout",)


class ServiceUnavailableError(ApiError):
    """The server cannot serve now (storage unavailable, shutting down)."""

    http_code = 503
    reasons = ("ServiceUnavailable",)


class GatewayTimeoutError(ApiError):
    """The request took too long, e.g. a resourceVersion the server has not reached yet."""

    http_code = 504
    reasons = ("Timeout",)


_CLASSES: tuple[type[ApiError], ...] = (
    BadRequestError,
    UnauthorizedError,
    ForbiddenError,
    NotFoundError,
    MethodNotAllowedError,
    NotAcceptableError,
    AlreadyExistsError,
    ConflictError,
    GoneError,
    ExpiredError,
    RequestEntityTooLargeError,
    UnsupportedMediaTypeError,
    InvalidError,
    TooManyRequestsError,
    InternalError,
    ServerTimeoutError,
    ServiceUnavailableError,
    GatewayTimeoutError,
)
_BY_REASON = {reason: cls for cls in _CLASSES for reason in cls.reasons}
# A Status without a known reason is classed by code, as client-go's reasonForError does.
_BY_CODE = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    406: NotAcceptableError,
    409: ConflictError,
    410: GoneError,
    413: RequestEntityTooLargeError,
    415: UnsupportedMediaTypeError,
    422: InvalidError,
    429: TooManyRequestsError,
    500: InternalError,
    503: ServiceUnavailableError,
    504: GatewayTimeoutError,
}
_GENERIC_MESSAGES = {
    400: "the server rejected our request for an unknown reason",
    401: "the server has asked for the client to provide credentials",
    403: "the server does not allow access to the requested resource",
    404: "the server could not find the requested resource",
    405: "the server does not allow this method on the requested resource",
    406: "the server was unable to respond with a content type that the client supports",
    409: "the server reported a conflict",
    410: "the server has asked for the client to list again",
    413: "the server has rejected the request because the request body is too large",
    415: "the server was unable to process the request because of its content type",
    422: "the server rejected our request due to an error in our request",
    429: "the server has received too many requests and has asked us to try again later",
    500: "an error on the server has prevented the request from succeeding",
    503: "the server is currently unable to handle the request",
    504: "the server was unable to return a response in the time allotted, but may still be "
    "processing the request",
}


def error_for_status(status: Mapping[str, Any], *, retry_after: float | None = None) -> ApiError:
    """The exception for a failure ``Status`` (by reason, else by code)."""
    reason = status.get("reason")
    cls = _BY_REASON.get(reason) if isinstance(reason, str) else None
    if cls is None:
        code = status.get("code")
        cls = _BY_CODE.get(code, ApiError) if isinstance(code, int) else ApiError
    return cls(status, retry_after=retry_after)


def status_for_response(code: int, body: bytes) -> dict[str, Any]:
    """The Status carried by an error response, or one made up from the HTTP code when the
    body is not a Status (a proxy's HTML page, an empty 503), with client-go's wording."""
    try:
        decoded = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        decoded = None
    if isinstance(decoded, dict) and decoded.get("kind") == "Status":
        status = dict(decoded)
        status.setdefault("code", code)
        return status
    message = _GENERIC_MESSAGES.get(code, f"the server responded with HTTP {code}")
    text = body.decode("utf-8", errors="replace").strip()
    if text and len(text) < 512:
        message = f"{message} ({text})"
    reason = _BY_CODE[code].reasons[0] if code in _BY_CODE else ""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
