"""A typed async client for any Kubernetes API server (engenho's and others), and the
watcher and informer built on it. See ``docs/client.md``.

::

    from engenho.client import KubeClient
    from engenho.schema.generated.models import core_v1

    async with KubeClient.from_kubeconfig() as client:
        pod = await client.get(core_v1.Pod, "web", namespace="default")   # a model
        async for cm in client.list("configmaps", label_selector="app=web"):  # dicts
            ...
        async with client.watch("pods") as events:
            async for event in events:
                ...

Layers, lowest first: ``kubeconfig`` and ``config`` (where and who), ``tls``, ``auth`` and
``exec_plugin`` (credentials), ``retrying`` and ``transport`` (HTTP), ``discovery`` and
``resources`` (addressing), ``listing``, ``logs``, ``watching``, ``store`` and ``informer``,
and ``client`` on top. Only :mod:`engenho.schema` and :mod:`engenho.selectors` are imported
from the rest of engenho.
"""

from engenho.client.auth import Credential, Credentials, TokenFile
from engenho.client.client import (
    ALL_NAMESPACES,
    DEFAULT_FIELD_MANAGER,
    KubeClient,
    PatchType,
    Preconditions,
    Propagation,
)
from engenho.client.config import (
    SERVICE_ACCOUNT_DIR,
    ClientConfig,
    from_kubeconfig,
    in_cluster_config,
    load_config,
)
from engenho.client.discovery import Discovery
from engenho.client.errors import (
    AlreadyExistsError,
    ApiError,
    BadRequestError,
    ClientError,
    ClientTimeoutError,
    ConfigError,
    ConflictError,
    CredentialError,
    ExecPluginError,
    ExpiredError,
    ForbiddenError,
    GatewayTimeoutError,
    GoneError,
    InternalError,
    InvalidError,
    MethodNotAllowedError,
    NotAcceptableError,
    NotFoundError,
    RequestEntityTooLargeError,
    ServerTimeoutError,
    ServiceUnavailableError,
    StatusCause,
    TooManyRequestsError,
    TransportError,
    UnauthorizedError,
    UnexpectedResponseError,
    UnknownResourceTypeError,
    UnsupportedMediaTypeError,
    error_for_status,
)
from engenho.client.exec_plugin import ExecPlugin, IssuedCredential
from engenho.client.informer import Handler, Informer
from engenho.client.kubeconfig import (
    ClusterEntry,
    ContextEntry,
    ExecConfig,
    Kubeconfig,
    UserEntry,
    load_kubeconfig,
    parse_kubeconfig,
)
from engenho.client.listing import Listing, Page
from engenho.client.logs import LogStream
from engenho.client.objects import Obj
from engenho.client.resources import ResourceRef, Resources, resource_path
from engenho.client.retrying import NO_RETRIES, Backoff, RetryPolicy
from engenho.client.store import Key, Store
from engenho.client.tls import CertificatePair, TLSConfig
from engenho.client.transport import DEFAULT_TIMEOUT, Transport
from engenho.client.watching import EventType, Watcher, WatchEvent

__all__ = [
    "ALL_NAMESPACES",
    "DEFAULT_FIELD_MANAGER",
    "DEFAULT_TIMEOUT",
    "NO_RETRIES",
    "SERVICE_ACCOUNT_DIR",
    "AlreadyExistsError",
    "ApiError",
    "Backoff",
    "BadRequestError",
    "CertificatePair",
    "ClientConfig",
    "ClientError",
    "ClientTimeoutError",
    "ClusterEntry",
    "ConfigError",
    "ConflictError",
    "ContextEntry",
    "Credential",
    "CredentialError",
    "Credentials",
    "Discovery",
    "EventType",
    "ExecConfig",
    "ExecPlugin",
    "ExecPluginError",
    "ExpiredError",
    "ForbiddenError",
    "GatewayTimeoutError",
    "GoneError",
    "Handler",
    "Informer",
    "InternalError",
    "InvalidError",
    "IssuedCredential",
    "Key",
    "KubeClient",
    "Kubeconfig",
    "Listing",
    "LogStream",
    "MethodNotAllowedError",
    "NotAcceptableError",
    "NotFoundError",
    "Obj",
    "Page",
    "PatchType",
    "Preconditions",
    "Propagation",
    "RequestEntityTooLargeError",
    "ResourceRef",
    "Resources",
    "RetryPolicy",
    "ServerTimeoutError",
    "ServiceUnavailableError",
    "StatusCause",
    "Store",
    "TLSConfig",
    "TokenFile",
    "TooManyRequestsError",
    "Transport",
    "TransportError",
    "UnauthorizedError",
    "UnexpectedResponseError",
    "UnknownResourceTypeError",
    "UnsupportedMediaTypeError",
    "UserEntry",
    "WatchEvent",
    "Watcher",
    "error_for_status",
    "from_kubeconfig",
    "in_cluster_config",
    "load_config",
    "load_kubeconfig",
    "parse_kubeconfig",
    "resource_path",
]
