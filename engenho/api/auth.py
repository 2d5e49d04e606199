"""Authentication: who is asking (seed notes §3.7).

In order, the first that applies wins: a TLS client certificate signed by the cluster CA
(CN is the user, each O a group); a bearer token engenho issued (the admin's); a bearer JWT of
a service account (``service_accounts.py``); otherwise anonymous. A bearer token that is not
recognised is a 401. Anonymous requests are refused (401) everywhere except the health and
version endpoints.

Every authenticated identity is also in ``system:authenticated``. Authorization (RBAC) is not
enforced yet: every authenticated identity may do everything.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

import orjson
from attrs import frozen

from engenho.api.service_accounts import ServiceAccountAuthenticator, looks_like_jwt
from engenho.api.tls import client_certificate
from engenho.log import Actor
from engenho.pki import identity_from_certificate
from engenho.registry import UnauthorizedError

__all__ = ["ANONYMOUS", "PUBLIC_PATHS", "AuthenticationMiddleware", "Authenticator", "identity_of"]

ANONYMOUS = Actor("system:anonymous", ("system:unauthenticated",))
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")
_AUTHENTICATED = "system:authenticated"


class Authenticator:
    """``tokens``: the static bearer tokens and whom each stands for; ``service_accounts``:
    the verifier of service account JWTs (without one, only static tokens authenticate)."""

    def __init__(
        self,
        tokens: Mapping[str, Actor],
        service_accounts: ServiceAccountAuthenticator | None = None,
    ) -> None:
        self._tokens = dict(tokens)
        self._service_accounts = service_accounts

    def _by_token(self, token: str) -> Actor | None:
        for known, actor in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return actor
        return None

    async def authenticate(self, scope: Any) -> Actor:
        der = client_certificate(scope)
        if der is not None:
            user, groups = identity_from_certificate(der)
            return Actor(user, (*groups, _AUTHENTICATED))
        authorization = ""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        if authorization:
            scheme, _, token = authorization.partition(" ")
            token = token.strip()
            actor = self._by_token(token) if scheme.lower() == "bearer" else None
            if actor is None and scheme.lower() == "bearer" and looks_like_jwt(token):
                # Only after the static tokens: the admin's path costs what it did.
                accounts = self._service_accounts
                actor = await accounts.authenticate(token) if accounts is not None else None
            if actor is None:
                raise UnauthorizedError("Unauthorized")
            return Actor(actor.user, (*actor.groups, _AUTHENTICATED))
        return ANONYMOUS


def _public(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS)


def identity_of(scope: Any) -> Actor:
    """The identity the middleware attached to this request."""
    actor = scope.get("state", {}).get("identity")
    return actor if isinstance(actor, Actor) else ANONYMOUS


@frozen
class AuthenticationMiddleware:
    """Attaches the caller's identity to the scope; answers 401 before anything else runs."""

    app: Any
    authenticator: Authenticator

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):  # WebSockets: pods/exec
            await self.app(scope, receive, send)
            return
        try:
            actor = await self.authenticator.authenticate(scope)
        except UnauthorizedError as exc:
            await self._refuse(scope, send, exc)
            return
        if actor is ANONYMOUS and not _public(scope["path"]):
            await self._refuse(scope, send, UnauthorizedError("Unauthorized"))
            return
        scope.setdefault("state", {})["identity"] = actor
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Any, send: Any, exc: UnauthorizedError) -> None:
        body = orjson.dumps(exc.status())
        # A WebSocket is refused with an HTTP response too (the ASGI denial extension).
        prefix = "websocket." if scope["type"] == "websocket" else ""
        await send(
            {
                "type": prefix + "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": prefix + "http.response.body", "body": body})
