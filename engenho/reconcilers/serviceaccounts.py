"""The ServiceAccount controller and the root CA publisher, run together as ``serviceaccount``.

Upstream runs them as two controllers (``serviceaccount-controller`` and
``root-ca-cert-publisher``); both are level-triggered loops over namespaces, so here they are one
loop keyed by namespace that does both jobs, each under its own upstream identity (which the log
records with every write), and one configuration switch turns both on or off:

- **ServiceAccounts**: an active namespace has a ``default`` ServiceAccount; one deleted is
  created again. Nothing is created in a terminating namespace (the API would refuse it).
- **Root CA**: every namespace has the ConfigMap ``kube-root-ca.crt`` whose ``ca.crt`` is the
  cluster CA (what projected service account volumes mount to verify the apiserver), with
  upstream's description annotation; one deleted or edited is put back.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

from engenho.log import Actor
from engenho.projections import StoredObject
from engenho.reconcilers.controller import Controller, kube_system_identity
from engenho.registry import (
    AlreadyExistsError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RequestContext,
    StatusError,
)
from engenho.schema import CATALOGUE

__all__ = [
    "DEFAULT_SERVICE_ACCOUNT",
    "DESCRIPTION",
    "DESCRIPTION_ANNOTATION",
    "PUBLISHER_IDENTITY",
    "ROOT_CA_CONFIGMAP",
    "ServiceAccountController",
]

DEFAULT_SERVICE_ACCOUNT = "default"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)
PUBLISHER_IDENTITY = kube_system_identity("root-ca-cert-publisher")
"""Who writes the ``kube-root-ca.crt`` ConfigMaps (upstream's root-ca-cert-publisher)."""


def _terminating(exc: StatusError) -> bool:
    return any(cause.reason == "NamespaceTerminating" for cause in exc.causes)


class ServiceAccountController(Controller):
    name = "serviceaccount"
    identity = kube_system_identity("service-account-controller")

    def __init__(self, *args: Any, ca_pem: str, **kwargs: Any) -> None:
        self.ca_pem = ca_pem
        super().__init__(*args, **kwargs)

    def setup(self) -> None:
        self.namespace_type = CATALOGUE.get("", "v1", "namespaces")
        self.account_type = CATALOGUE.get("", "v1", "serviceaccounts")
        self.configmap_type = CATALOGUE.get("", "v1", "configmaps")
        self.namespaces = self.watch_primary(self.namespace_type)
        self.accounts = self.informers.get(self.account_type)
        self.configmaps = self.informers.get(self.configmap_type)
        self.accounts.add_handler(self._account_changed)
        self.configmaps.add_handler(self._configmap_changed)

    def _account_changed(
        self, event: str, old: StoredObject | None, _new: StoredObject | None
    ) -> None:
        if event == "DELETED" and old is not None and old.name == DEFAULT_SERVICE_ACCOUNT:
            self.queue.add(old.namespace)

    def _configmap_changed(
        self, _event: str, old: StoredObject | None, new: StoredObject | None
    ) -> None:
        stored = new if new is not None else old
        if stored is not None and stored.name == ROOT_CA_CONFIGMAP:
            self.queue.add(stored.namespace)

    def _context(self, actor: Actor) -> RequestContext:
        now = datetime.now(UTC)
        manager = "root-ca-cert-publisher" if actor is PUBLISHER_IDENTITY else self.name
        return RequestContext(
            actor=actor, request_id=f"{manager}-{uuid.uuid4()}", now=now, field_manager=manager
        )

    async def reconcile(self, key: str) -> None:
        namespace = self.namespaces.get("", key)
        if namespace is None:
            return
        obj = namespace.object
        active = not (obj.get("metadata") or {}).get("deletionTimestamp") and (
            (obj.get("status") or {}).get("phase", "Active") == "Active"
        )
        if active:
            await self._ensure_account(key)
        await self._ensure_root_ca(key)

    async def _ensure_account(self, namespace: str) -> None:
        if self.accounts.get(namespace, DEFAULT_SERVICE_ACCOUNT) is not None:
            return
        body = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": namespace},
        }
        try:
            await self.registry.create(
                self._context(self.identity), self.account_type, namespace, body
            )
        except (AlreadyExistsError, NotFoundError):
            return  # there already (the cache was behind), or the namespace is gone
        except ForbiddenError as exc:
            if not _terminating(exc):
                raise

    async def _ensure_root_ca(self, namespace: str) -> None:
        data = {"ca.crt": self.ca_pem}
        current = self.configmaps.get(namespace, ROOT_CA_CONFIGMAP)
        ctx = self._context(PUBLISHER_IDENTITY)
        if current is None:
            body: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": ROOT_CA_CONFIGMAP,
                    "namespace": namespace,
                    "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
                },
                "data": data,
            }
            try:
                await self.registry.create(ctx, self.configmap_type, namespace, body)
            except (AlreadyExistsError, NotFoundError):
                # There already (the cache is behind, and the object's own event brings the
                # namespace back), or the namespace is gone.
                return
            except ForbiddenError as exc:
                if not _terminating(exc):
                    raise
            return
        annotations = (current.object.get("metadata") or {}).get("annotations") or {}
        if current.object.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION):
            return
        body = copy.deepcopy(current.object)
        body["data"] = data
        meta = body.setdefault("metadata", {})
        meta["annotations"] = {DESCRIPTION_ANNOTATION: DESCRIPTION, **annotations}
        try:
            await self.registry.update(ctx, self.configmap_type, namespace, ROOT_CA_CONFIGMAP, body)
        except NotFoundError as exc:
            raise ConflictError(f"{ROOT_CA_CONFIGMAP} in {namespace} went meanwhile") from exc
