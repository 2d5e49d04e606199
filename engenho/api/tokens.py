"""``POST .../serviceaccounts/{name}/token``: TokenRequest, as kube-apiserver serves it.

The answer is the request echoed with its defaults (audiences: the API's own; expiration:
3600 s) and ``status.token``, a bound JWT signed with the cluster's service account key
(``engenho.pki``). Nothing is stored, so nothing is appended to the log: the token is
verifiable by its signature alone, and valid only while the service account (and the pod or
Secret it is bound to) still exist with the same uid.

In upstream's order (``pkg/registry/core/serviceaccount/storage/token.go``): the body is
decoded (400 for a malformed one), its name and namespace must match the URL (422), the
service account must exist (404), ``spec.expirationSeconds`` must be between 10 minutes and
2^32 seconds (422), and a ``boundObjectRef`` must name an existing Pod (running as this
service account, else 400) or Secret (any other kind: 400) whose uid matches when one is given
(409).
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from engenho.pki import BoundObject, ServiceAccountTokens
from engenho.pki.service_accounts import (
    DEFAULT_EXPIRATION_SECONDS,
    EXTENDED_EXPIRATION_SECONDS,
    MAX_EXPIRATION_SECONDS,
    MIN_EXPIRATION_SECONDS,
    WARN_ONLY_EXPIRATION_SECONDS,
    expires_after,
)
from engenho.registry import (
    BadRequestError,
    ConflictError,
    InvalidError,
    Registry,
    StatusCause,
)
from engenho.schema import CATALOGUE, CauseReason, unknown_fields, validate

__all__ = ["TokenRequests"]

API_VERSION = "authentication.k8s.io/v1"
KIND = "TokenRequest"
_QUALIFIED = "TokenRequest.authentication.k8s.io"
_Json = dict[str, Any]


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _invalid(name: str, field: str, value: Any, detail: str) -> InvalidError:
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    message = f"Invalid value: {shown}: {detail}"
    return InvalidError(
        f'{_QUALIFIED} "{name}" is invalid: {field}: {message}',
        name=name,
        group="authentication.k8s.io",
        kind=KIND,
        causes=[StatusCause(CauseReason.INVALID.value, message, field)],
    )


def _decode(body: Any) -> _Json:
    """The request as upstream's typed decoder leaves it: identity checked, unknown fields
    dropped, wrongly typed fields refused (400, before any validation)."""
    if not isinstance(body, dict):
        raise BadRequestError("the body of the request must be a JSON or YAML object")
    api_version = body.setdefault("apiVersion", API_VERSION)
    kind = body.setdefault("kind", KIND)
    if api_version != API_VERSION:
        raise BadRequestError(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({API_VERSION})"
        )
    if kind != KIND:
        raise BadRequestError(
            f'{kind} in version "v1" cannot be handled as a {KIND}: the kind {kind!r} does not '
            f"match the subresource 'serviceaccounts/token'"
        )
    unknown_fields(body, prune=True)
    # The OpenAPI document marks spec.audiences required, but the typed decoder accepts null
    # (kubectl sends it): only type errors refuse a request here.
    errors = [c for c in validate(body) if c.reason is CauseReason.TYPE_INVALID]
    if errors:
        raise BadRequestError(
            f'{KIND} in version "v1" cannot be handled as a {KIND}: '
            + "; ".join(str(c) for c in errors)
        )
    return body


def _group_of(api_version: str) -> str | None:
    """The group of an ``apiVersion`` (``v1`` → core); None when it does not parse."""
    if not api_version or api_version == "v1":
        return ""
    group, slash, version = api_version.partition("/")
    if not slash:
        return ""  # a bare version: the core group
    if not group or not version or "/" in version:
        return None
    return group


class TokenRequests:
    """Answers TokenRequests for service accounts, issuing tokens with ``tokens``.

    ``extend_expiration`` is kube-apiserver's ``--service-account-extend-token-expiration``
    (on by default); ``max_expiration_seconds`` its ``--service-account-max-token-expiration``
    (0: no maximum)."""

    def __init__(
        self,
        registry: Registry,
        tokens: ServiceAccountTokens,
        *,
        extend_expiration: bool = True,
        max_expiration_seconds: int = 0,
    ) -> None:
        self.registry = registry
        self.tokens = tokens
        self.extend_expiration = extend_expiration
        self.max_expiration_seconds = max_expiration_seconds
        self._accounts = CATALOGUE.get("", "v1", "serviceaccounts")
        self._pods = CATALOGUE.get("", "v1", "pods")
        self._secrets = CATALOGUE.get("", "v1", "secrets")

    async def create(self, namespace: str, name: str, body: Any, now: datetime) -> _Json:
        """The TokenRequest answered (HTTP 201), or a StatusError saying why not."""
        request = _decode(copy.deepcopy(body))
        meta = request.get("metadata") or {}
        spec = request.get("spec") or {}
        if not isinstance(meta, dict) or not isinstance(spec, dict):
            raise BadRequestError(f"{KIND}: metadata and spec must be objects")
        if meta.get("name") and meta["name"] != name:
            raise _invalid(
                name,
                "metadata.name",
                meta["name"],
                "must match the service account name if specified",
            )
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise _invalid(
                name,
                "metadata.namespace",
                meta["namespace"],
                "must match the service account namespace if specified",
            )
        account = await self.registry.get(self._accounts, namespace, name)
        audiences = list(spec.get("audiences") or self.tokens.audiences)
        expiration = spec.get("expirationSeconds") or DEFAULT_EXPIRATION_SECONDS
        if expiration < MIN_EXPIRATION_SECONDS:
            raise _invalid(
                "",
                "spec.expirationSeconds",
                expiration,
                "may not specify a duration less than 10 minutes",
            )
        if expiration > MAX_EXPIRATION_SECONDS:
            raise _invalid(
                "",
                "spec.expirationSeconds",
                expiration,
                "may not specify a duration larger than 2^32 seconds",
            )
        ref = spec.get("boundObjectRef")
        pod, secret = await self._bound(namespace, name, ref) if ref else (None, None)
        if self.max_expiration_seconds and expiration > self.max_expiration_seconds:
            expiration = self.max_expiration_seconds
        lifetime, warn_after = expiration, 0
        if (
            self.extend_expiration
            and pod is not None
            and expiration == WARN_ONLY_EXPIRATION_SECONDS
            and set(audiences) <= set(self.tokens.audiences)
        ):
            # The kubelet's default: issued for a year, and flagged stale after the hour it
            # asked for, so that clients that never re-read their token keep working.
            lifetime, warn_after = EXTENDED_EXPIRATION_SECONDS, expiration
        token = self.tokens.issue(
            namespace=namespace,
            name=name,
            uid=account.uid,
            audiences=audiences,
            expiration_seconds=lifetime,
            now=now,
            pod=pod,
            secret=secret,
            warn_after_seconds=warn_after,
        )
        answered_spec: _Json = {**spec, "audiences": audiences, "expirationSeconds": expiration}
        if not ref:
            answered_spec.pop("boundObjectRef", None)
        return {
            "kind": KIND,
            "apiVersion": API_VERSION,
            "metadata": {
                **meta,
                "name": name,
                "namespace": namespace,
                "creationTimestamp": _timestamp(now),
            },
            "spec": answered_spec,
            "status": {
                "token": token,
                "expirationTimestamp": _timestamp(expires_after(now, expiration)),
            },
        }

    async def _bound(
        self, namespace: str, account: str, ref: Any
    ) -> tuple[BoundObject | None, BoundObject | None]:
        """The pod or Secret ``ref`` binds the token to (one of the two is None)."""
        if not isinstance(ref, dict):
            raise BadRequestError(f"{KIND}: spec.boundObjectRef must be an object")
        api_version, kind = str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
        name, uid = str(ref.get("name") or ""), str(ref.get("uid") or "")
        group = _group_of(api_version)
        if group == "" and kind == "Pod":
            stored = await self.registry.get(self._pods, namespace, name)
            spec = stored.object.get("spec") or {}
            # Upstream's ServiceAccount admission sets serviceAccountName to "default" on
            # every pod; a pod written without it runs as "default" here too.
            runs_as = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
            if runs_as != account:
                raise BadRequestError(
                    f'cannot bind token for serviceaccount "{account}" to pod running with '
                    "different serviceaccount name."
                )
        elif group == "" and kind == "Node":
            raise BadRequestError(
                'cannot bind token to a Node object as the "ServiceAccountTokenNodeBinding" '
                "feature-gate is disabled"
            )
        elif group == "" and kind == "Secret":
            stored = await self.registry.get(self._secrets, namespace, name)
        else:
            version = api_version.rpartition("/")[2] if group is not None else ""
            raise BadRequestError(
                f"cannot bind token to object of type {group or ''}/{version}, Kind={kind}"
            )
        if uid and uid != stored.uid:
            raise ConflictError(
                f'Operation cannot be fulfilled on {kind} "{name}": the UID in the bound object '
                f"reference ({uid}) does not match the UID in record. The object might have "
                "been deleted and then recreated",
                name=name,
                kind=kind,
            )
        bound = BoundObject(stored.name, stored.uid)
        return (bound, None) if kind == "Pod" else (None, bound)
