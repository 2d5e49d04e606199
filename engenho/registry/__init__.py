"""The request path shared by the apiserver and in-process controllers.

Reads and watches come from the projections with Kubernetes resourceVersion semantics;
writes become fully decided commands, proposed through replication and answered once applied.
"""

from engenho.registry.admission import AdmissionSettings
from engenho.registry.allocation import NetworkSettings
from engenho.registry.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ExpiredError,
    ForbiddenError,
    GatewayTimeoutError,
    InternalError,
    InvalidError,
    MethodNotAllowedError,
    NotAcceptableError,
    NotFoundError,
    RequestEntityTooLargeError,
    ServiceUnavailableError,
    StatusCause,
    StatusError,
    TooManyRequestsError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from engenho.registry.reading import ListResult
from engenho.registry.registry import Registry
from engenho.registry.requests import DeleteOptions, ListQuery, RequestContext, WatchQuery
from engenho.registry.watching import WatchEvent
from engenho.registry.writing import DeleteResult

__all__ = [
    "AdmissionSettings",
    "AlreadyExistsError",
    "BadRequestError",
    "ConflictError",
    "DeleteOptions",
    "DeleteResult",
    "ExpiredError",
    "ForbiddenError",
    "GatewayTimeoutError",
    "InternalError",
    "InvalidError",
    "ListQuery",
    "ListResult",
    "MethodNotAllowedError",
    "NetworkSettings",
    "NotAcceptableError",
    "NotFoundError",
    "Registry",
    "RequestContext",
    "RequestEntityTooLargeError",
    "ServiceUnavailableError",
    "StatusCause",
    "StatusError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UnsupportedMediaTypeError",
    "WatchEvent",
    "WatchQuery",
]
