"""Bearer tokens of service accounts: who a JWT signed with the cluster's key speaks for.

A token passes when its signature, issuer, times and audience check out (``engenho.pki``)
and the cluster still agrees with it (upstream's ``pkg/serviceaccount`` validators):

- **bound tokens** (TokenRequest): the service account exists with the uid in the token, and
  the pod or Secret it is bound to exists with its uid; none of them deleted more than a minute
  ago;
- **legacy tokens** (``kubernetes.io/service-account-token`` Secrets): the Secret exists, is
  not being deleted, holds exactly this token and is not labelled
  ``kubernetes.io/legacy-token-invalid-since``; the service account exists with the token's
  uid and is not being deleted.

The holder is ``system:serviceaccount:NS:NAME`` in ``system:serviceaccounts`` and
``system:serviceaccounts:NS``. Lookups read the registry's current in-memory state
(``resourceVersion=0``: no waiting, no database round trip), and a token that passed is
remembered for ten seconds (upstream's authentication cache TTL), so a deleted service
account's tokens stop working within that time.
"""

from __future__ import annotations

import base64
import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from engenho.log import Actor
from engenho.pki import ServiceAccountTokenError, ServiceAccountTokens, TokenClaims
from engenho.pki.service_accounts import LEEWAY_SECONDS
from engenho.projections import StoredObject
from engenho.registry import NotFoundError, Registry
from engenho.schema import CATALOGUE, ResourceType

__all__ = ["CACHE_SECONDS", "INVALID_SINCE_LABEL", "ServiceAccountAuthenticator", "looks_like_jwt"]

CACHE_SECONDS = 10.0
"""How long a token that passed is trusted without looking again (kube-apiserver's
``TokenSuccessCacheTTL``); failures are not cached, as upstream."""
INVALID_SINCE_LABEL = "kubernetes.io/legacy-token-invalid-since"
_CACHE_LIMIT = 4096


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated parts, not JSON: worth verifying as a JWT at all."""
    return token.count(".") == 2 and not token.startswith("{")


class ServiceAccountAuthenticator:
    def __init__(
        self,
        tokens: ServiceAccountTokens,
        registry: Registry,
        *,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tokens = tokens
        self.registry = registry
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[Actor, float]] = {}
        self._accounts = CATALOGUE.get("", "v1", "serviceaccounts")
        self._pods = CATALOGUE.get("", "v1", "pods")
        self._secrets = CATALOGUE.get("", "v1", "secrets")

    async def authenticate(self, token: str) -> Actor | None:
        """The service account ``token`` speaks for, or None when it is not a valid one."""
        now = self._clock()
        cached = self._cache.get(token)
        if cached is not None:
            if cached[1] > now:
                return cached[0]
            del self._cache[token]
        try:
            claims = self.tokens.verify(token)
        except ServiceAccountTokenError:
            return None
        if not await self._still_valid(claims, token):
            return None
        actor = Actor(claims.username, claims.groups)
        until = now + self.cache_seconds
        if claims.expires is not None:
            # Never trusted from the cache past its expiry (and the verifier's leeway).
            left = (claims.expires - datetime.now(UTC)).total_seconds() + LEEWAY_SECONDS
            until = min(until, now + left)
        if until > now:
            self._remember(token, actor, until, now)
        return actor

    def _remember(self, token: str, actor: Actor, until: float, now: float) -> None:
        if len(self._cache) >= _CACHE_LIMIT:
            for key in [k for k, (_, expiry) in self._cache.items() if expiry <= now]:
                del self._cache[key]
            while len(self._cache) >= _CACHE_LIMIT:
                del self._cache[next(iter(self._cache))]  # the oldest entry
        self._cache[token] = (actor, until)

    async def _current(self, rt: ResourceType, namespace: str, name: str) -> StoredObject | None:
        try:
            # resourceVersion "0": the projection's in-memory state as it is, without waiting.
            return await self.registry.get(rt, namespace, name, "0")
        except NotFoundError:
            return None

    async def _still_valid(self, claims: TokenClaims, token: str) -> bool:
        account = await self._current(self._accounts, claims.namespace, claims.name)
        if account is None or account.uid != claims.uid or _deleted(account, claims.legacy):
            return False
        if claims.legacy:
            assert claims.secret is not None
            secret = await self._current(self._secrets, claims.namespace, claims.secret.name)
            return secret is not None and _holds(secret, token)
        for rt, bound in ((self._pods, claims.pod), (self._secrets, claims.secret)):
            if bound is None:
                continue
            stored = await self._current(rt, claims.namespace, bound.name)
            if stored is None or stored.uid != bound.uid or _deleted(stored, False):
                return False
        return True


def _deleted(stored: StoredObject, at_once: bool) -> bool:
    """Deleted (waiting on finalizers) for more than the leeway, or at all with ``at_once``."""
    stamp = (stored.object.get("metadata") or {}).get("deletionTimestamp")
    if not stamp:
        return False
    if at_once:
        return True
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return True  # unreadable: treat the object as gone rather than trust the token
    return moment < datetime.now(UTC) - timedelta(seconds=LEEWAY_SECONDS)


def _holds(secret: StoredObject, token: str) -> bool:
    """A legacy token's Secret: live, unrevoked, and holding exactly this token."""
    obj = secret.object
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp") or (meta.get("labels") or {}).get(INVALID_SINCE_LABEL):
        return False
    stored = (obj.get("data") or {}).get("token") or ""
    try:
        held = base64.b64decode(stored, validate=True)
    except ValueError:
        return False
    return hmac.compare_digest(held, token.encode())
