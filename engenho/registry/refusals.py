"""The errors of the request path with upstream's exact wording (contract §10)."""

from __future__ import annotations

from collections.abc import Sequence

from engenho.registry.errors import (
    AlreadyExistsError,
    ConflictError,
    ExpiredError,
    ForbiddenError,
    GatewayTimeoutError,
    InvalidError,
    NotFoundError,
    StatusCause,
)
from engenho.schema import Cause, ResourceType, format_invalid

__all__ = [
    "already_exists",
    "conflict",
    "continue_expired",
    "invalid",
    "namespace_terminating",
    "not_found",
    "too_large_resource_version",
    "too_old_resource_version",
    "uid_conflict",
]

CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list."
)


def not_found(resource: ResourceType, name: str) -> NotFoundError:
    return NotFoundError(
        f'{resource.qualified_name} "{name}" not found',
        name=name,
        group=resource.group,
        kind=resource.plural,
    )


def already_exists(resource: ResourceType, name: str) -> AlreadyExistsError:
    return AlreadyExistsError(
        f'{resource.qualified_name} "{name}" already exists',
        name=name,
        group=resource.group,
        kind=resource.plural,
    )


def conflict(resource: ResourceType, name: str) -> ConflictError:
    return ConflictError(
        f'Operation cannot be fulfilled on {resource.qualified_name} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
        name=name,
        group=resource.group,
        kind=resource.plural,
    )


def uid_conflict(resource: ResourceType, name: str, expected: str, actual: str) -> ConflictError:
    return ConflictError(
        f'Operation cannot be fulfilled on {resource.qualified_name} "{name}": Precondition '
        f"failed: UID in precondition: {expected}, UID in object meta: {actual}",
        name=name,
        group=resource.group,
        kind=resource.plural,
    )


def invalid(resource: ResourceType, name: str, causes: Sequence[Cause]) -> InvalidError:
    return InvalidError(
        format_invalid(
            resource.kind if not resource.group else f"{resource.kind}.{resource.group}",
            name,
            causes,
        ),
        name=name,
        group=resource.group,
        kind=resource.kind,
        causes=[StatusCause(c.reason.value, c.message, c.field) for c in causes],
    )


def namespace_terminating(resource: ResourceType, name: str, namespace: str) -> ForbiddenError:
    return ForbiddenError(
        f'{resource.qualified_name} "{name}" is forbidden: unable to create new content in '
        f"namespace {namespace} because it is being terminated",
        name=name,
        group=resource.group,
        kind=resource.plural,
        causes=[
            StatusCause(
                "NamespaceTerminating",
                f"namespace {namespace} is being terminated",
                "metadata.namespace",
            )
        ],
    )


def too_old_resource_version(requested: int, oldest: int) -> ExpiredError:
    return ExpiredError(f"too old resource version: {requested} ({oldest})")


def continue_expired(fresh_token: str) -> ExpiredError:
    return ExpiredError(CONTINUE_EXPIRED, continue_token=fresh_token)


def too_large_resource_version(requested: int, current: int) -> GatewayTimeoutError:
    return GatewayTimeoutError(
        f"Timeout: Too large resource version: {requested}, current: {current}",
        causes=[
            StatusCause(
                "ResourceVersionTooLarge",
                f"Too large resource version: {requested}, current: {current}",
            )
        ],
        retry_after=1,
    )
