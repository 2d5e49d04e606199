"""Service account tokens (engenho.pki.service_accounts): the signing key under pki/ (created
once, kept, never replaced when unusable), the claims of bound and legacy tokens as upstream
writes them, and verification refusing expired, not-yet-valid, foreign-issuer, wrong-audience,
tampered, unsigned and other-key tokens (with upstream's one-minute leeway)."""

from __future__ import annotations

import base64
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from engenho.pki import (
    DEFAULT_ISSUER,
    LEGACY_ISSUER,
    BoundObject,
    CorruptPKIError,
    ServiceAccountKey,
    ServiceAccountTokenError,
    ServiceAccountTokens,
    ensure_service_account_key,
)
from engenho.pki.service_accounts import expires_after

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> ServiceAccountTokens:
    return ServiceAccountTokens(ensure_service_account_key(tmp_path_factory.mktemp("pki")))


def _issue(tokens: ServiceAccountTokens, **overrides: Any) -> str:
    options: dict[str, Any] = {
        "namespace": "team",
        "name": "robot",
        "uid": "sa-uid",
        "audiences": [DEFAULT_ISSUER],
        "expiration_seconds": 3600,
        "now": datetime.now(UTC),  # verification reads the real clock
    }
    options.update(overrides)
    return tokens.issue(**options)


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return _json(header), _json(payload)


def _json(part: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return value


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _refused(tokens: ServiceAccountTokens, token: str, match: str | None = None) -> None:
    with pytest.raises(ServiceAccountTokenError, match=match):
        tokens.verify(token)


# ---------------------------------------------------------------------- the key


def test_the_key_is_created_once_and_kept(tmp_path: Path) -> None:
    first = ensure_service_account_key(tmp_path)
    assert first.algorithm == "ES256"
    assert os.stat(tmp_path / "sa.key").st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "sa.pub").st_mode & 0o777 == 0o644
    assert (tmp_path / "sa.pub").read_bytes() == first.public_pem
    key_bytes = (tmp_path / "sa.key").read_bytes()

    again = ensure_service_account_key(tmp_path)
    assert again.key_id == first.key_id
    assert (tmp_path / "sa.key").read_bytes() == key_bytes
    # A token of the first start verifies after a restart.
    token = _issue(ServiceAccountTokens(first))
    assert ServiceAccountTokens(again).verify(token).name == "robot"


def test_the_public_half_is_rewritten_from_the_key(tmp_path: Path) -> None:
    key = ensure_service_account_key(tmp_path)
    (tmp_path / "sa.pub").write_bytes(b"something else")
    ensure_service_account_key(tmp_path)
    assert (tmp_path / "sa.pub").read_bytes() == key.public_pem
    (tmp_path / "sa.pub").unlink()
    ensure_service_account_key(tmp_path)
    assert (tmp_path / "sa.pub").read_bytes() == key.public_pem


def test_the_key_id_is_the_digest_of_the_public_key(tmp_path: Path) -> None:
    import hashlib

    key = ensure_service_account_key(tmp_path)
    der = key.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert key.key_id == expected


@pytest.mark.parametrize(
    "content",
    [b"not a key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"],
)
def test_an_unusable_key_is_refused_and_left_alone(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "sa.key").write_bytes(content)
    with pytest.raises(CorruptPKIError) as caught:
        ensure_service_account_key(tmp_path)
    assert caught.value.path == tmp_path / "sa.key"
    assert (tmp_path / "sa.key").read_bytes() == content


def test_a_key_of_another_type_is_refused(tmp_path: Path) -> None:
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "sa.key").write_bytes(pem)
    with pytest.raises(CorruptPKIError, match="RSA or ECDSA"):
        ensure_service_account_key(tmp_path)


@pytest.mark.parametrize(
    ("private", "algorithm"),
    [
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
        (ec.generate_private_key(ec.SECP384R1()), "ES384"),
    ],
)
def test_an_operators_key_signs_with_its_algorithm(
    tmp_path: Path, private: Any, algorithm: str
) -> None:
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    (tmp_path / "sa.key").write_bytes(pem)
    key = ensure_service_account_key(tmp_path)
    assert key.algorithm == algorithm
    token = _issue(ServiceAccountTokens(key))
    assert _parts(token)[0]["alg"] == algorithm
    assert ServiceAccountTokens(key).verify(token).uid == "sa-uid"


# ---------------------------------------------------------------------- bound tokens


def test_a_bound_token_carries_upstreams_claims(tokens: ServiceAccountTokens) -> None:
    token = _issue(tokens, pod=BoundObject("web-0", "pod-uid"), expiration_seconds=600, now=NOW)
    header, payload = _parts(token)
    assert header == {"alg": "ES256", "kid": tokens.key.key_id}
    issued = int(NOW.timestamp())
    assert uuid.UUID(payload.pop("jti")).version == 4
    assert payload == {
        "aud": [DEFAULT_ISSUER],
        "exp": issued + 600,
        "iat": issued,
        "nbf": issued,
        "iss": DEFAULT_ISSUER,
        "sub": "system:serviceaccount:team:robot",
        "kubernetes.io": {
            "namespace": "team",
            "serviceaccount": {"name": "robot", "uid": "sa-uid"},
            "pod": {"name": "web-0", "uid": "pod-uid"},
        },
    }


def test_verifying_gives_back_who_and_what(tokens: ServiceAccountTokens) -> None:
    now = datetime.now(UTC)
    claims = tokens.verify(_issue(tokens, secret=BoundObject("s", "secret-uid"), now=now))
    assert (claims.namespace, claims.name, claims.uid) == ("team", "robot", "sa-uid")
    assert claims.username == "system:serviceaccount:team:robot"
    assert claims.groups == ("system:serviceaccounts", "system:serviceaccounts:team")
    assert claims.secret == BoundObject("s", "secret-uid") and claims.pod is None
    assert not claims.legacy and claims.token_id
    assert claims.expires == expires_after(now, 3600)


def test_warn_after_is_a_private_claim(tokens: ServiceAccountTokens) -> None:
    token = _issue(tokens, pod=BoundObject("p", "u"), warn_after_seconds=3607, now=NOW)
    assert _parts(token)[1]["kubernetes.io"]["warnafter"] == int(NOW.timestamp()) + 3607


def test_every_token_has_its_own_id(tokens: ServiceAccountTokens) -> None:
    assert _parts(_issue(tokens))[1]["jti"] != _parts(_issue(tokens))[1]["jti"]


def test_a_token_binds_to_one_object(tokens: ServiceAccountTokens) -> None:
    with pytest.raises(ValueError, match="one object"):
        _issue(tokens, pod=BoundObject("p", "u"), secret=BoundObject("s", "v"))


def test_expired_tokens_are_refused_after_the_leeway(tokens: ServiceAccountTokens) -> None:
    now = datetime.now(UTC)  # verification reads the real clock: issue relative to it
    _refused(tokens, _issue(tokens, now=now - timedelta(hours=2)), "expired")
    # Expired 30 s ago: within the minute of clock skew upstream tolerates.
    just = now - timedelta(seconds=630)
    assert tokens.verify(_issue(tokens, now=just, expiration_seconds=600)).name == "robot"


def test_tokens_from_the_future_are_refused(tokens: ServiceAccountTokens) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    _refused(tokens, _issue(tokens, now=later), "not yet valid")


def test_another_issuer_is_refused(tokens: ServiceAccountTokens) -> None:
    other = ServiceAccountTokens(tokens.key, issuer="https://issuer.example")
    _refused(tokens, _issue(other), "issuer")
    assert other.verify(_issue(other)).name == "robot"


def test_a_token_for_other_audiences_is_refused(tokens: ServiceAccountTokens) -> None:
    token = _issue(tokens, audiences=["vault"])
    _refused(tokens, token, "audiences")
    vault = ServiceAccountTokens(tokens.key, audiences=("vault", DEFAULT_ISSUER))
    assert vault.verify(token).name == "robot"
    # One shared audience is enough.
    assert tokens.verify(_issue(tokens, audiences=["vault", DEFAULT_ISSUER])).name == "robot"


def test_a_tampered_payload_is_refused(tokens: ServiceAccountTokens) -> None:
    header, payload, signature = _issue(tokens).split(".")
    claims = _json(payload)
    claims["kubernetes.io"]["serviceaccount"]["name"] = "admin"
    claims["sub"] = "system:serviceaccount:team:admin"
    _refused(tokens, f"{header}.{_b64(claims)}.{signature}", "Signature")


def test_a_tampered_signature_is_refused(tokens: ServiceAccountTokens) -> None:
    header, payload, signature = _issue(tokens).split(".")
    flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
    _refused(tokens, f"{header}.{payload}.{flipped}")


def test_another_key_is_refused(tokens: ServiceAccountTokens, tmp_path: Path) -> None:
    other = ServiceAccountTokens(ensure_service_account_key(tmp_path))
    _refused(tokens, _issue(other), "no keys found")  # its kid names another key
    # Without a kid, the signature itself fails.
    _, payload = _parts(_issue(other))
    bare = jwt.encode(payload, other.key.private_key, algorithm="ES256")
    _refused(tokens, bare, "Signature")


def test_unsigned_and_malformed_tokens_are_refused(tokens: ServiceAccountTokens) -> None:
    _, payload = _parts(_issue(tokens))
    unsigned = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(payload) + "."
    _refused(tokens, unsigned)
    for garbage in ("", "a.b.c", "not a token", "eyJ.eyJ.eyJ", _issue(tokens)[:-20]):
        _refused(tokens, garbage)


def test_a_symmetric_forgery_with_the_public_key_is_refused(tokens: ServiceAccountTokens) -> None:
    # The classic: HS256 "signed" with the public key as the secret; only our algorithm counts.
    _, payload = _parts(_issue(tokens))
    header = {"alg": "HS256", "kid": tokens.key.key_id}
    import hashlib
    import hmac

    signing = _b64(header) + "." + _b64(payload)
    mac = hmac.new(tokens.key.public_pem, signing.encode(), hashlib.sha256).digest()
    forged = signing + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    _refused(tokens, forged, "alg value is not allowed")


def _signed(tokens: ServiceAccountTokens, payload: dict[str, Any]) -> str:
    return jwt.encode(payload, tokens.key.private_key, algorithm="ES256")


def test_our_issuers_tokens_always_expire(tokens: ServiceAccountTokens) -> None:
    _, payload = _parts(_issue(tokens))
    del payload["exp"]
    _refused(tokens, _signed(tokens, payload), '"exp"')


def test_bound_claims_must_name_the_account_they_are_for(tokens: ServiceAccountTokens) -> None:
    _, payload = _parts(_issue(tokens))
    payload["sub"] = "system:serviceaccount:kube-system:admin"
    _refused(tokens, _signed(tokens, payload), "sub")
    _, payload = _parts(_issue(tokens))
    del payload["kubernetes.io"]["serviceaccount"]["uid"]
    _refused(tokens, _signed(tokens, payload), "no service account")
    _, payload = _parts(_issue(tokens))
    payload["kubernetes.io"]["pod"] = {"name": "p"}
    _refused(tokens, _signed(tokens, payload), "malformed")


# ---------------------------------------------------------------------- legacy tokens


def test_a_legacy_token_carries_the_flat_claims(tokens: ServiceAccountTokens) -> None:
    token = tokens.issue_legacy(namespace="team", name="robot", uid="sa-uid", secret_name="tok")
    _, payload = _parts(token)
    assert payload == {
        "iss": LEGACY_ISSUER,
        "kubernetes.io/serviceaccount/namespace": "team",
        "kubernetes.io/serviceaccount/secret.name": "tok",
        "kubernetes.io/serviceaccount/service-account.name": "robot",
        "kubernetes.io/serviceaccount/service-account.uid": "sa-uid",
        "sub": "system:serviceaccount:team:robot",
    }
    claims = tokens.verify(token)
    assert claims.legacy and claims.expires is None
    assert (claims.namespace, claims.name, claims.uid) == ("team", "robot", "sa-uid")
    assert claims.secret == BoundObject("tok", "")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sub": "system:serviceaccount:team:other"}, "sub claim is invalid"),
        ({"kubernetes.io/serviceaccount/secret.name": ""}, "secretName claim is missing"),
        ({"kubernetes.io/serviceaccount/service-account.uid": None}, "UID claim is missing"),
    ],
)
def test_legacy_claims_must_agree(
    tokens: ServiceAccountTokens, change: dict[str, Any], message: str
) -> None:
    token = tokens.issue_legacy(namespace="team", name="robot", uid="u", secret_name="tok")
    _, payload = _parts(token)
    payload.update(change)
    _refused(tokens, _signed(tokens, payload), message)


def test_a_legacy_token_of_another_key_is_refused(tokens: ServiceAccountTokens) -> None:
    other = ServiceAccountTokens(
        ServiceAccountKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    )
    _refused(tokens, other.issue_legacy(namespace="n", name="a", uid="u", secret_name="s"))
