"""The service account token controller (``serviceaccount-token``): legacy token Secrets.

Upstream's ``TokensController`` (``pkg/controller/serviceaccount/tokens_controller.go``), for
Secrets of type ``kubernetes.io/service-account-token`` that name a service account in the
annotation ``kubernetes.io/service-account.name``:

- while the service account exists (with the uid in ``kubernetes.io/service-account.uid``,
  when the Secret has one), the Secret gets what it lacks: ``data.token`` (a non-expiring JWT
  in the legacy claim form, signed with the cluster's service account key), ``data.ca.crt``
  (the cluster CA, replaced when it differs) and ``data.namespace``, and both annotations;
  a token already there is never replaced;
- a Secret whose service account does not exist (or is another one by now: its uid differs)
  is deleted, with its uid as a precondition; so deleting a service account deletes its tokens;
- a deleted token Secret is taken out of its service account's ``secrets`` list.

Since 1.24 nothing creates such Secrets automatically (upstream's
``LegacyServiceAccountTokenNoAutoGeneration``): people create them, and this fills them in.
It runs as kube-controller-manager's own user, as upstream (its tokens controller uses the
controller manager's credentials, not a service account: it mints service account tokens).
"""

from __future__ import annotations

import base64
import binascii
import copy
from typing import Any

from attrs import evolve

from engenho.log import Actor
from engenho.pki import ServiceAccountTokens
from engenho.projections import StoredObject
from engenho.reconcilers.controller import Controller
from engenho.registry import ConflictError, DeleteOptions, NotFoundError, RequestContext
from engenho.schema import CATALOGUE

__all__ = [
    "NAME_ANNOTATION",
    "TOKEN_SECRET_TYPE",
    "UID_ANNOTATION",
    "ServiceAccountTokenController",
]

TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"  # noqa: S105 - a type name
NAME_ANNOTATION = "kubernetes.io/service-account.name"
UID_ANNOTATION = "kubernetes.io/service-account.uid"
_BY_ACCOUNT = "serviceaccount"
_Json = dict[str, Any]


def _annotations(stored: StoredObject) -> dict[str, str]:
    return (stored.object.get("metadata") or {}).get("annotations") or {}


def _account_of(stored: StoredObject) -> str | None:
    """``namespace/name`` of the service account a token Secret names, or None."""
    if stored.object.get("type") != TOKEN_SECRET_TYPE:
        return None
    name = _annotations(stored).get(NAME_ANNOTATION)
    return f"{stored.namespace}/{name}" if name else None


def _decoded(data: _Json, key: str) -> bytes:
    try:
        return base64.b64decode(data.get(key) or "", validate=True)
    except (binascii.Error, ValueError):
        return b""


def _encoded(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


class ServiceAccountTokenController(Controller):
    name = "serviceaccount-token"
    identity = Actor("system:kube-controller-manager", ("system:authenticated",))

    def __init__(self, *args: Any, tokens: ServiceAccountTokens, ca_pem: str, **kwargs: Any):
        self.tokens = tokens
        self.ca = ca_pem.encode()
        # Deleted token Secrets -> the (name, uid) of the service account they named: what
        # the reconcile of a key whose Secret is gone needs to find the reference to remove.
        self._deleted: dict[str, tuple[str, str]] = {}
        super().__init__(*args, **kwargs)

    def setup(self) -> None:
        self.secret_type = CATALOGUE.get("", "v1", "secrets")
        self.account_type = CATALOGUE.get("", "v1", "serviceaccounts")
        self.secrets = self.watch_primary(self.secret_type)
        self.secrets.add_index(_BY_ACCOUNT, lambda s: [a] if (a := _account_of(s)) else [])
        self.secrets.add_handler(self._secret_changed)
        self.accounts = self.informers.get(self.account_type)
        self.accounts.add_handler(self._account_changed)

    def _secret_changed(
        self, event: str, old: StoredObject | None, _new: StoredObject | None
    ) -> None:
        if event == "DELETED" and old is not None and _account_of(old) is not None:
            annotations = _annotations(old)
            self._deleted[f"{old.namespace}/{old.name}"] = (
                annotations[NAME_ANNOTATION],
                annotations.get(UID_ANNOTATION, ""),
            )

    def _account_changed(
        self, _event: str, old: StoredObject | None, new: StoredObject | None
    ) -> None:
        # Created (a waiting Secret can be filled in), replaced or deleted (its tokens go).
        stored = new if new is not None else old
        assert stored is not None
        for secret in self.secrets.by_index(_BY_ACCOUNT, f"{stored.namespace}/{stored.name}"):
            self.queue.add(f"{secret.namespace}/{secret.name}")

    async def reconcile(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        secret = self.secrets.get(namespace, name)
        if secret is None:
            gone = self._deleted.get(key)
            if gone is not None:
                await self._remove_reference(namespace, *gone, secret_name=name)
                self._deleted.pop(key, None)
            return
        self._deleted.pop(key, None)  # a Secret of that name exists again
        if _account_of(secret) is None:
            return  # not a service account token (or names no account: validation refuses it)
        annotations = _annotations(secret)
        account = await self._account(
            namespace, annotations[NAME_ANNOTATION], annotations.get(UID_ANNOTATION, "")
        )
        if account is None:
            await self._delete(secret)
        else:
            await self._fill_in(account, secret)

    async def _account(self, namespace: str, name: str, uid: str) -> StoredObject | None:
        """The service account (of that uid, when given): from the cache, else read (the
        Secret may be newer than the cache's copy of the accounts)."""
        cached = self.accounts.get(namespace, name)
        if cached is not None and (not uid or cached.uid == uid):
            return cached
        try:
            stored = await self.registry.get(self.account_type, namespace, name)
        except NotFoundError:
            return None
        return stored if not uid or stored.uid == uid else None

    async def _delete(self, secret: StoredObject) -> None:
        try:
            await self.registry.delete(
                self.context(),
                self.secret_type,
                secret.namespace,
                secret.name,
                DeleteOptions(precondition_uid=secret.uid),
            )
        except (NotFoundError, ConflictError):
            return  # gone already, or another Secret by that name now: its own key follows

    async def _fill_in(self, account: StoredObject, secret: StoredObject) -> None:
        data = secret.object.get("data") or {}
        needs_ca = bool(self.ca) and _decoded(data, "ca.crt") != self.ca
        needs_namespace = not data.get("namespace")
        needs_token = not data.get("token")
        if not (needs_ca or needs_namespace or needs_token):
            return
        body = copy.deepcopy(secret.object)  # with its resourceVersion: a stale copy is a 409
        filled: _Json = body.setdefault("data", {}) or {}
        body["data"] = filled
        if needs_ca:
            filled["ca.crt"] = _encoded(self.ca)
        if needs_namespace:
            filled["namespace"] = _encoded(secret.namespace.encode())
        if needs_token:
            token = self.tokens.issue_legacy(
                namespace=account.namespace,
                name=account.name,
                uid=account.uid,
                secret_name=secret.name,
            )
            filled["token"] = _encoded(token.encode())
        meta = body.setdefault("metadata", {})
        meta["annotations"] = {
            **(meta.get("annotations") or {}),
            NAME_ANNOTATION: account.name,
            UID_ANNOTATION: account.uid,
        }
        try:
            await self.registry.update(
                self.context(), self.secret_type, secret.namespace, secret.name, body
            )
        except NotFoundError:
            return  # deleted meanwhile: nothing to fill in

    async def _remove_reference(
        self, namespace: str, account_name: str, account_uid: str, *, secret_name: str
    ) -> None:
        account = self.accounts.get(namespace, account_name)
        if account is None or (account_uid and account.uid != account_uid):
            return
        listed = account.object.get("secrets") or []
        kept = [ref for ref in listed if (ref or {}).get("name") != secret_name]
        if len(kept) == len(listed):
            return
        body = copy.deepcopy(account.object)
        body["secrets"] = kept
        try:
            await self.registry.update(
                self.context(), self.account_type, namespace, account_name, body
            )
        except NotFoundError:
            return

    def context(self) -> RequestContext:
        # Upstream's managedFields name the controller manager (its client's user agent).
        return evolve(super().context(), field_manager="kube-controller-manager")
