"""Errors of the request path, one class per Kubernetes Status reason.

Each class carries the HTTP code and ``reason`` upstream uses (apimachinery
``pkg/api/errors``), so the API turns any of them into a ``metav1.Status`` with one table and
in-process callers (controllers) can catch exactly the case they handle::

    StatusError                       base; code 500, reason InternalError
    ├── BadRequestError               400 BadRequest
    ├── UnauthorizedError             401 Unauthorized
    ├── ForbiddenError                403 Forbidden
    ├── NotFoundError                 404 NotFound
    ├── MethodNotAllowedError         405 MethodNotAllowed
    ├── NotAcceptableError            406 NotAcceptable
    ├── AlreadyExistsError            409 AlreadyExists
    ├── ConflictError                 409 Conflict
    ├── ExpiredError                  410 Expired
    ├── RequestEntityTooLargeError    413 RequestEntityTooLarge
    ├── UnsupportedMediaTypeError     415 UnsupportedMediaType
    ├── InvalidError                  422 Invalid (with causes)
    ├── TooManyRequestsError          429 TooManyRequests
    ├── InternalError                 500 InternalError
    ├── ServiceUnavailableError       503 ServiceUnavailable
    └── GatewayTimeoutError           504 Timeout
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from attrs import frozen

__all__ = [
    "AlreadyExistsError",
    "BadRequestError",
    "ConflictError",
    "ExpiredError",
    "ForbiddenError",
    "GatewayTimeoutError",
    "InternalError",
    "InvalidError",
    "MethodNotAllowedError",
    "NotAcceptableError",
    "NotFoundError",
    "RequestEntityTooLargeError",
    "ServiceUnavailableError",
    "StatusCause",
    "StatusError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UnsupportedMediaTypeError",
]


@frozen
class StatusCause:
    """One ``details.causes`` row: ``reason`` (FieldValueRequired, ...), message and field."""

    reason: str
    message: str
    field: str = ""

    def to_json(self) -> dict[str, str]:
        row = {"reason": self.reason, "message": self.message}
        if self.field:
            row["field"] = self.field
        return row


class StatusError(Exception):
    """An error that is answered with a ``metav1.Status``."""

    code: ClassVar[int] = 500
    reason: ClassVar[str] = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        name: str = "",
        group: str = "",
        kind: str = "",
        uid: str = "",
        causes: Sequence[StatusCause] = (),
        retry_after: int | None = None,
        continue_token: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.group = group
        self.kind = kind
        self.uid = uid
        self.causes = tuple(causes)
        self.retry_after = retry_after
        self.continue_token = continue_token

    def status(self) -> dict[str, Any]:
        """The ``metav1.Status`` body."""
        named = {"name": self.name, "group": self.group, "kind": self.kind, "uid": self.uid}
        details: dict[str, Any] = {key: value for key, value in named.items() if value}
        if self.causes:
            details["causes"] = [cause.to_json() for cause in self.causes]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {"continue": self.continue_token} if self.continue_token else {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            body["details"] = details
        return body


class BadRequestError(StatusError):
    """Malformed body, bad parameter or selector, name or namespace mismatch."""

    code = 400
    reason = "BadRequest"


class UnauthorizedError(StatusError):
    """A credential was presented and is not valid, or none was and one is required."""

    code = 401
    reason = "Unauthorized"


class ForbiddenError(StatusError):
    """The request is understood and refused (e.g. creating in a terminating namespace)."""

    code = 403
    reason = "Forbidden"


class NotFoundError(StatusError):
    """The object, its namespace, or the URL does not exist."""

    code = 404
    reason = "NotFound"


class MethodNotAllowedError(StatusError):
    """The resource does not support the HTTP method."""

    code = 405
    reason = "MethodNotAllowed"


class NotAcceptableError(StatusError):
    """The Accept header names nothing the server can produce."""

    code = 406
    reason = "NotAcceptable"


class AlreadyExistsError(StatusError):
    """A create named an object that exists."""

    code = 409
    reason = "AlreadyExists"


class ConflictError(StatusError):
    """A precondition (resourceVersion, uid) no longer holds, or an apply conflict."""

    code = 409
    reason = "Conflict"


class ExpiredError(StatusError):
    """The requested resourceVersion or continue token is older than the kept history."""

    code = 410
    reason = "Expired"


class RequestEntityTooLargeError(StatusError):
    """The body is larger than the server accepts."""

    code = 413
    reason = "RequestEntityTooLarge"


class UnsupportedMediaTypeError(StatusError):
    """The request Content-Type is not one the endpoint accepts."""

    code = 415
    reason = "UnsupportedMediaType"


class InvalidError(StatusError):
    """The object failed validation; ``causes`` lists every violation with its field."""

    code = 422
    reason = "Invalid"


class TooManyRequestsError(StatusError):
    """The server is overloaded; retry after ``retry_after`` seconds."""

    code = 429
    reason = "TooManyRequests"


class InternalError(StatusError):
    """A failure inside the server."""

    code = 500
    reason = "InternalError"


class ServiceUnavailableError(StatusError):
    """The log cannot accept writes right now (e.g. the disk is full)."""

    code = 503
    reason = "ServiceUnavailable"


class GatewayTimeoutError(StatusError):
    """The request could not complete in time (e.g. a resourceVersion not yet reached)."""

    code = 504
    reason = "Timeout"
