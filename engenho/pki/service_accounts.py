"""Service account tokens: the cluster's signing key and the JWTs signed with it.

The key lives beside the CA as ``DATA_DIR/pki/sa.key`` (private, PKCS#8 PEM, mode 0600) and
``sa.pub`` (its public half, mode 0644): what kube-apiserver takes as
``--service-account-signing-key-file`` and ``--service-account-key-file``. It is created on
first start (ECDSA P-256, signing ES256) and kept across restarts, since every token and
legacy token Secret issued so far is signed by it. An operator may put an RSA or another ECDSA
key there instead (a kubeadm ``sa.key``); its algorithm follows from the key.

Two kinds of token, as upstream (``pkg/serviceaccount/claims.go`` and ``legacy.go``):

- **Bound tokens** (TokenRequest): issuer ``https://kubernetes.default.svc.cluster.local``,
  ``sub`` ``system:serviceaccount:NS:NAME``, ``aud``, ``exp``, ``iat``, ``nbf``, ``jti`` and the
  private claim ``kubernetes.io`` ``{namespace, serviceaccount{name, uid}, pod | secret{name,
  uid}, warnafter}``. They always expire.
- **Legacy tokens** (Secrets of type ``kubernetes.io/service-account-token``): issuer
  ``kubernetes/serviceaccount``, ``sub`` and four flat ``kubernetes.io/serviceaccount/...``
  claims, no audience, no expiry: valid while their Secret exists.

Verification here is what the token alone can prove (signature, issuer, times with upstream's
one-minute leeway, audience); whether the service account and bound objects still exist is for
the caller, who can see the cluster. PyJWT does the JWS work; nothing here imports the rest of
engenho.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from attrs import field, frozen
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from engenho.pki.errors import CorruptPKIError, ServiceAccountTokenError
from engenho.pki.files import PRIVATE_MODE, PUBLIC_MODE, write_atomically

__all__ = [
    "DEFAULT_EXPIRATION_SECONDS",
    "DEFAULT_ISSUER",
    "EXTENDED_EXPIRATION_SECONDS",
    "LEEWAY_SECONDS",
    "LEGACY_ISSUER",
    "MAX_EXPIRATION_SECONDS",
    "MIN_EXPIRATION_SECONDS",
    "WARN_ONLY_EXPIRATION_SECONDS",
    "BoundObject",
    "ServiceAccountKey",
    "ServiceAccountTokens",
    "TokenClaims",
    "ensure_service_account_key",
    "expires_after",
    "service_account_groups",
    "service_account_username",
]

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
"""kube-apiserver's ``--service-account-issuer`` as kubeadm sets it; also the API audience."""
LEGACY_ISSUER = "kubernetes/serviceaccount"
DEFAULT_EXPIRATION_SECONDS = 3600
"""What a TokenRequest without ``expirationSeconds`` gets (upstream's API default)."""
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 1 << 32
WARN_ONLY_EXPIRATION_SECONDS = 3607
"""The expiry the kubelet asks for by default; such pod-bound tokens for the API's own
audiences are issued for a year and carry ``warnafter`` instead (upstream's
``--service-account-extend-token-expiration``, on by default)."""
EXTENDED_EXPIRATION_SECONDS = 365 * 24 * 60 * 60
LEEWAY_SECONDS = 60
"""Clock skew tolerated on ``exp``, ``nbf`` and ``iat`` (go-jose's ``DefaultLeeway``)."""

_KEY, _PUB, _LOCK = "sa.key", "sa.pub", ".lock"
_CLAIMS = "kubernetes.io"
_LEGACY_PREFIX = "kubernetes.io/serviceaccount/"
_USER_PREFIX = "system:serviceaccount:"
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def service_account_username(namespace: str, name: str) -> str:
    """``system:serviceaccount:NS:NAME`` (upstream's ``MakeUsername``)."""
    return f"{_USER_PREFIX}{namespace}:{name}"


def service_account_groups(namespace: str) -> tuple[str, str]:
    """``system:serviceaccounts`` and ``system:serviceaccounts:NS`` (``MakeGroupNames``)."""
    return ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")


@frozen
class ServiceAccountKey:
    """The signing key, its JWS algorithm and key id."""

    private_key: PrivateKey = field(repr=False)
    algorithm: str
    key_id: str
    """base64url(SHA-256(DER SubjectPublicKeyInfo)): upstream's ``kid``, which says which key
    signed without revealing it."""

    @classmethod
    def from_private_key(cls, key: PrivateKey) -> ServiceAccountKey:
        if isinstance(key, rsa.RSAPrivateKey):
            algorithm = "RS256"  # the only RSA algorithm upstream signs with
        else:
            curve = key.curve.name
            if curve not in _EC_ALGORITHMS:
                raise ValueError(f"unsupported elliptic curve {curve} (use P-256, P-384, P-521)")
            algorithm = _EC_ALGORITHMS[curve]
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        key_id = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
        return cls(key, algorithm, key_id)

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def ensure_service_account_key(directory: Path) -> ServiceAccountKey:
    """Load ``sa.key`` from ``directory``, creating it (and ``sa.pub``) on the first call.

    ``sa.pub`` is derived data and is rewritten when missing or not the key's. An ``sa.key``
    that exists but cannot be used raises :class:`CorruptPKIError` and is left alone:
    replacing it would silently invalidate every token issued with it.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_path, pub_path = directory / _KEY, directory / _PUB
    with _locked(directory):
        if key_path.exists():
            key = _load(key_path)
        else:
            key = ServiceAccountKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))
            pem = key.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            write_atomically(key_path, pem, mode=PRIVATE_MODE)
        try:
            current = pub_path.read_bytes()
        except FileNotFoundError:
            current = b""
        if current != key.public_pem:
            write_atomically(pub_path, key.public_pem, mode=PUBLIC_MODE)
    return key


def _load(path: Path) -> ServiceAccountKey:
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise CorruptPKIError(path, f"not a usable PEM private key: {exc}") from exc
    if not isinstance(loaded, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CorruptPKIError(path, f"expected an RSA or ECDSA key, found {type(loaded).__name__}")
    try:
        return ServiceAccountKey.from_private_key(loaded)
    except ValueError as exc:
        raise CorruptPKIError(path, str(exc)) from exc


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Two servers starting on one data directory must not each mint a key (ensure_pki takes
    # the same lock file for the CA).
    with (directory / _LOCK).open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@frozen
class BoundObject:
    """The pod or Secret a token is bound to: it is valid only while that object exists."""

    name: str
    uid: str


@frozen
class TokenClaims:
    """What a verified token says about its holder."""

    namespace: str
    name: str
    """The service account's name."""
    uid: str
    """The service account's uid when the token was issued."""
    pod: BoundObject | None = None
    secret: BoundObject | None = None
    """The Secret a bound token is bound to, or a legacy token's own Secret (uid unknown: "")."""
    legacy: bool = False
    token_id: str = ""
    """``jti``; empty for legacy tokens."""
    expires: datetime | None = None
    """``exp`` (None for legacy tokens, which do not expire)."""

    @property
    def username(self) -> str:
        return service_account_username(self.namespace, self.name)

    @property
    def groups(self) -> tuple[str, str]:
        return service_account_groups(self.namespace)


class ServiceAccountTokens:
    """Issues and verifies the cluster's service account tokens with one signing key.

    ``audiences`` are the API server's own (kube-apiserver ``--api-audiences``, which default
    to the issuer): a TokenRequest without audiences gets them, and a bound token is accepted
    only if it names at least one of them.
    """

    def __init__(
        self,
        key: ServiceAccountKey,
        *,
        issuer: str = DEFAULT_ISSUER,
        audiences: Sequence[str] = (DEFAULT_ISSUER,),
    ) -> None:
        if not audiences:
            raise ValueError("the API server needs at least one audience")
        self.key = key
        self.issuer = issuer
        self.audiences = tuple(audiences)
        self._public = key.private_key.public_key()
        self._issuers = frozenset({issuer, LEGACY_ISSUER})

    # ------------------------------------------------------------------ issuing

    def issue(
        self,
        *,
        namespace: str,
        name: str,
        uid: str,
        audiences: Sequence[str],
        expiration_seconds: int,
        now: datetime,
        pod: BoundObject | None = None,
        secret: BoundObject | None = None,
        warn_after_seconds: int = 0,
    ) -> str:
        """A bound token for the service account ``namespace/name`` (uid ``uid``), valid from
        ``now`` for ``expiration_seconds``, optionally bound to a pod or a Secret."""
        if pod is not None and secret is not None:
            raise ValueError("a token can be bound to one object only")
        issued = int(now.timestamp())
        private: dict[str, Any] = {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": uid},
        }
        if pod is not None:
            private["pod"] = {"name": pod.name, "uid": pod.uid}
        if secret is not None:
            private["secret"] = {"name": secret.name, "uid": secret.uid}
        if warn_after_seconds:
            private["warnafter"] = issued + warn_after_seconds
        payload = {
            "aud": list(audiences),
            "exp": issued + expiration_seconds,
            "iat": issued,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            _CLAIMS: private,
            "nbf": issued,
            "sub": service_account_username(namespace, name),
        }
        return self._sign(payload)

    def issue_legacy(self, *, namespace: str, name: str, uid: str, secret_name: str) -> str:
        """A non-expiring token for a ``kubernetes.io/service-account-token`` Secret."""
        payload = {
            "iss": LEGACY_ISSUER,
            _LEGACY_PREFIX + "namespace": namespace,
            _LEGACY_PREFIX + "secret.name": secret_name,
            _LEGACY_PREFIX + "service-account.name": name,
            _LEGACY_PREFIX + "service-account.uid": uid,
            "sub": service_account_username(namespace, name),
        }
        return self._sign(payload)

    def _sign(self, payload: dict[str, Any]) -> str:
        # Upstream's header is {alg, kid}: no "typ" (PyJWT drops it when it is None).
        headers = {"kid": self.key.key_id, "typ": None}
        return jwt.encode(
            payload, self.key.private_key, algorithm=self.key.algorithm, headers=headers
        )

    # ------------------------------------------------------------------ verifying

    def verify(self, token: str) -> TokenClaims:
        """The claims of ``token`` if this key signed it, its issuer is ours (or the legacy
        one), it is within its validity (with :data:`LEEWAY_SECONDS`) and, for a bound token,
        it names one of our audiences. :class:`ServiceAccountTokenError` otherwise."""
        try:
            header = jwt.get_unverified_header(token)
            kid = header.get("kid")
            if kid is not None and kid != self.key.key_id:
                raise ServiceAccountTokenError("invalid signature, no keys found")
            payload = jwt.decode(
                token,
                self._public,
                algorithms=[self.key.algorithm],
                issuer=self._issuers,
                leeway=LEEWAY_SECONDS,
                # The audience rule differs by kind of token: checked below.
                options={"require": ["iss", "sub"], "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise ServiceAccountTokenError(str(exc)) from exc
        if payload["iss"] == LEGACY_ISSUER:
            return _legacy_claims(payload)
        return self._bound_claims(payload)

    def _bound_claims(self, payload: dict[str, Any]) -> TokenClaims:
        for claim in ("exp", "iat", "nbf"):
            if claim not in payload:
                # Tokens from this issuer always expire; one without times was not made here.
                raise ServiceAccountTokenError(f'the token has no "{claim}" claim')
        audiences = payload.get("aud")
        if isinstance(audiences, str):
            audiences = [audiences]
        if (
            not isinstance(audiences, list)
            or not all(isinstance(audience, str) for audience in audiences)
            or not set(audiences) & set(self.audiences)
        ):
            raise ServiceAccountTokenError(
                f"token audiences {audiences!r} is invalid for the target audiences "
                f"{list(self.audiences)!r}"
            )
        private = payload.get(_CLAIMS)
        if not isinstance(private, dict):
            raise ServiceAccountTokenError(f'the token has no "{_CLAIMS}" claim')
        account = private.get("serviceaccount")
        namespace = private.get("namespace")
        if (
            not isinstance(namespace, str)
            or not isinstance(account, dict)
            or not _texts(namespace, account.get("name"), account.get("uid"))
        ):
            raise ServiceAccountTokenError("the token names no service account")
        if payload["sub"] != service_account_username(namespace, account["name"]):
            raise ServiceAccountTokenError("sub claim is invalid")
        pod, secret = _bound(private.get("pod")), _bound(private.get("secret"))
        if pod is not None and secret is not None:
            raise ServiceAccountTokenError("the token is bound to more than one object")
        token_id = payload.get("jti")
        return TokenClaims(
            namespace=namespace,
            name=account["name"],
            uid=account["uid"],
            pod=pod,
            secret=secret,
            token_id=token_id if isinstance(token_id, str) else "",
            expires=datetime.fromtimestamp(int(payload["exp"]), UTC),
        )


def _texts(*values: Any) -> bool:
    return all(isinstance(value, str) and value for value in values)


def _bound(ref: Any) -> BoundObject | None:
    if ref is None:
        return None
    if not isinstance(ref, dict) or not _texts(ref.get("name"), ref.get("uid")):
        raise ServiceAccountTokenError("the token's bound object reference is malformed")
    return BoundObject(ref["name"], ref["uid"])


def _legacy_claims(payload: dict[str, Any]) -> TokenClaims:
    """Upstream's legacy validator: every claim present, and ``sub`` agreeing with them."""
    found: dict[str, str] = {}
    for claim, what in (
        ("namespace", "namespace"),
        ("secret.name", "secretName"),
        ("service-account.name", "serviceAccountName"),
        ("service-account.uid", "serviceAccountUID"),
    ):
        value = payload.get(_LEGACY_PREFIX + claim)
        if not isinstance(value, str) or not value:
            raise ServiceAccountTokenError(f"{what} claim is missing")
        found[claim] = value
    namespace, name = found["namespace"], found["service-account.name"]
    if payload["sub"] != service_account_username(namespace, name):
        raise ServiceAccountTokenError("sub claim is invalid")
    return TokenClaims(
        namespace=namespace,
        name=name,
        uid=found["service-account.uid"],
        secret=BoundObject(found["secret.name"], ""),
        legacy=True,
    )


def expires_after(now: datetime, seconds: int) -> datetime:
    """``now`` plus ``seconds``, to the second (JWT times and metav1.Time have no fraction)."""
    return datetime.fromtimestamp(int(now.timestamp()) + seconds, UTC)
