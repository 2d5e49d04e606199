"""TokenRequest and service account authentication through the real app (httpx's
ASGITransport over a real log, projections and registry): tokens with upstream's defaults and
claims, upstream's refusals (none of which, nor any success, appends to the log), and bearer
JWTs that authenticate as their service account only while it, and the pod or Secret a token
is bound to, still exist; legacy Secret tokens while their Secret holds them. The cache is
driven by a fake clock."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from attrs import define

from engenho.api import Authenticator, Health, Metrics, ServiceAccountAuthenticator, build_app
from engenho.log import Actor, LogStore
from engenho.pki import DEFAULT_ISSUER, ServiceAccountTokens, ensure_service_account_key
from engenho.projections import Projections, StoredObject
from engenho.registry import DeleteOptions, Registry, RequestContext
from engenho.replication import SingleVoter
from engenho.schema import CATALOGUE
from engenho.server import bootstrap

ADMIN = Actor("admin", ("system:masters",))
ADMIN_TOKEN = "admin-token"
TOKEN_PATH = "/api/v1/namespaces/default/serviceaccounts/{}/token"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
_Json = dict[str, Any]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@define
class Api:
    client: httpx.AsyncClient
    log: LogStore
    registry: Registry
    tokens: ServiceAccountTokens
    clock: Clock

    @property
    def head(self) -> int:
        return self.log.last_index

    def ctx(self) -> RequestContext:
        return RequestContext(actor=ADMIN, request_id="test", now=datetime.now(UTC))

    async def request(
        self, method: str, path: str, body: Any = None, token: str | None = ADMIN_TOKEN
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return await self.client.request(method, path, json=body, headers=headers)

    async def token_request(self, account: str = "default", **spec: Any) -> httpx.Response:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        return await self.request("POST", TOKEN_PATH.format(account), body)

    async def create(self, plural: str, body: _Json, namespace: str = "default") -> StoredObject:
        rt = CATALOGUE.get("", "v1", plural)
        return await self.registry.create(self.ctx(), rt, namespace, body)

    async def delete(self, plural: str, name: str, namespace: str = "default") -> None:
        rt = CATALOGUE.get("", "v1", plural)
        options = DeleteOptions(grace_period_seconds=0)
        await self.registry.delete(self.ctx(), rt, namespace, name, options)

    async def account(self, name: str, namespace: str = "default") -> StoredObject:
        body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
        return await self.create("serviceaccounts", body, namespace)

    async def pod(self, name: str, account: str | None = None) -> StoredObject:
        spec: _Json = {"containers": [{"name": "app", "image": "nginx"}]}
        if account is not None:
            spec["serviceAccountName"] = account
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
        return await self.create("pods", body)

    async def works(self, token: str) -> bool:
        """Whether ``token`` authenticates (a list of ConfigMaps answers 200, not 401)."""
        status = (await self.request("GET", CONFIGMAPS, token=token)).status_code
        assert status in (200, 401), status
        return status == 200


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    log = await LogStore.open(tmp_path / "log")
    projections = await Projections.open(f"sqlite+aiosqlite:///{tmp_path}/p.db", log)
    registry = Registry(
        proposer=SingleVoter(log),
        projections=projections,
        commit_index=lambda: log.commit_index,
        token_key=b"k" * 32,
    )
    await bootstrap(registry)
    tokens = ServiceAccountTokens(ensure_service_account_key(tmp_path / "pki"))
    clock = Clock()
    app, _ = build_app(
        registry=registry,
        catalogue=CATALOGUE,
        authenticator=Authenticator(
            {ADMIN_TOKEN: ADMIN}, ServiceAccountAuthenticator(tokens, registry, clock=clock)
        ),
        metrics=Metrics(),
        health=Health([], []),
        server_address="apiserver.test",
        shutdown=asyncio.Event(),
        service_account_tokens=tokens,
    )
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://apiserver.test") as client:
        result = Api(client, log, registry, tokens, clock)
        await result.account("default")
        yield result
    await projections.close()
    await log.close()


def _claims(token: str) -> _Json:
    payload = token.split(".")[1]
    value: _Json = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return value


def _when(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _status(response: httpx.Response, code: int, reason: str) -> _Json:
    assert response.status_code == code, response.text
    body: _Json = response.json()
    assert (body["kind"], body["status"], body["code"], body["reason"]) == (
        "Status",
        "Failure",
        code,
        reason,
    ), body
    return body


# ---------------------------------------------------------------------- TokenRequest


async def test_a_token_request_is_answered_with_defaults_and_stores_nothing(api: Api) -> None:
    account = await api.create(
        "serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}},
    )
    head = api.head
    response = await api.token_request("robot")
    assert response.status_code == 201, response.text
    answer = response.json()
    assert api.head == head, "a TokenRequest appends nothing to the log"
    assert (answer["apiVersion"], answer["kind"]) == ("authentication.k8s.io/v1", "TokenRequest")
    assert answer["metadata"]["name"] == "robot"
    assert answer["metadata"]["namespace"] == "default"
    assert answer["spec"] == {"audiences": [DEFAULT_ISSUER], "expirationSeconds": 3600}
    created = _when(answer["metadata"]["creationTimestamp"])
    expires = _when(answer["status"]["expirationTimestamp"])
    assert expires - created == timedelta(seconds=3600)
    claims = _claims(answer["status"]["token"])
    assert claims["iss"] == DEFAULT_ISSUER
    assert claims["sub"] == "system:serviceaccount:default:robot"
    assert claims["aud"] == [DEFAULT_ISSUER]
    assert claims["exp"] == int(expires.timestamp())
    assert claims["iat"] == claims["nbf"] == int(created.timestamp())
    assert claims["jti"]
    assert claims["kubernetes.io"] == {
        "namespace": "default",
        "serviceaccount": {"name": "robot", "uid": account.uid},
    }


async def test_kubectls_request_with_nulls_and_its_own_audience(api: Api) -> None:
    body = {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {"audiences": ["vault"], "expirationSeconds": 600, "boundObjectRef": None},
        "status": {"token": "", "expirationTimestamp": None},
    }
    response = await api.request("POST", TOKEN_PATH.format("default"), body)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["spec"] == {"audiences": ["vault"], "expirationSeconds": 600}
    assert _claims(answer["status"]["token"])["aud"] == ["vault"]
    # Not for the API server: it does not authenticate here.
    assert not await api.works(answer["status"]["token"])


@pytest.mark.parametrize(
    ("seconds", "detail"),
    [
        (60, "may not specify a duration less than 10 minutes"),
        (-5, "may not specify a duration less than 10 minutes"),
        (2**32 + 1, "may not specify a duration larger than 2^32 seconds"),
    ],
)
async def test_expiration_out_of_range_is_invalid(api: Api, seconds: int, detail: str) -> None:
    head = api.head
    body = _status(await api.token_request(expirationSeconds=seconds), 422, "Invalid")
    assert body["message"] == (
        f'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: '
        f"Invalid value: {seconds}: {detail}"
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": f"Invalid value: {seconds}: {detail}",
            "field": "spec.expirationSeconds",
        }
    ]
    assert body["details"]["group"] == "authentication.k8s.io"
    assert body["details"]["kind"] == "TokenRequest"
    assert api.head == head


async def test_an_unknown_service_account_is_not_found(api: Api) -> None:
    head = api.head
    body = _status(await api.token_request("nobody", expirationSeconds=60), 404, "NotFound")
    assert body["message"] == 'serviceaccounts "nobody" not found'
    assert api.head == head


async def test_the_name_in_the_body_must_be_the_urls(api: Api) -> None:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"}
    body["metadata"] = {"name": "other"}  # type: ignore[assignment]
    refused = _status(await api.request("POST", TOKEN_PATH.format("default"), body), 422, "Invalid")
    assert refused["message"] == (
        'TokenRequest.authentication.k8s.io "default" is invalid: metadata.name: Invalid value: '
        '"other": must match the service account name if specified'
    )
    body["metadata"] = {"namespace": "kube-system"}  # type: ignore[assignment]
    refused = _status(await api.request("POST", TOKEN_PATH.format("default"), body), 422, "Invalid")
    assert "must match the service account namespace if specified" in refused["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], "must be a JSON or YAML object"),
        (
            {"apiVersion": "v1", "kind": "TokenRequest"},
            "the API version in the data (v1) does not match the expected API version "
            "(authentication.k8s.io/v1)",
        ),
        (
            {"spec": {"expirationSeconds": "soon"}},
            'TokenRequest in version "v1" cannot be handled as a TokenRequest: '
            'spec.expirationSeconds: Invalid value: "soon": must be of type integer',
        ),
    ],
)
async def test_a_malformed_body_is_a_bad_request(api: Api, body: Any, message: str) -> None:
    head = api.head
    refused = _status(
        await api.request("POST", TOKEN_PATH.format("default"), body), 400, "BadRequest"
    )
    assert message in refused["message"]
    assert api.head == head


async def test_only_post_is_allowed(api: Api) -> None:
    _status(await api.request("GET", TOKEN_PATH.format("default")), 405, "MethodNotAllowed")


async def test_a_token_bound_to_a_pod(api: Api) -> None:
    pod = await api.pod("web")
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": pod.uid}
    response = await api.token_request(boundObjectRef=ref, expirationSeconds=600)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["spec"]["boundObjectRef"] == ref
    claims = _claims(answer["status"]["token"])
    assert claims["kubernetes.io"]["pod"] == {"name": "web", "uid": pod.uid}
    assert claims["exp"] - claims["iat"] == 600


async def test_the_kubelets_default_expiry_is_extended_with_a_warning(api: Api) -> None:
    pod = await api.pod("web")
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": pod.uid}
    answer = (await api.token_request(boundObjectRef=ref, expirationSeconds=3607)).json()
    claims = _claims(answer["status"]["token"])
    assert claims["exp"] - claims["iat"] == 365 * 24 * 3600
    assert claims["kubernetes.io"]["warnafter"] - claims["iat"] == 3607
    # What the answer says is what was asked for.
    assert answer["spec"]["expirationSeconds"] == 3607
    created = _when(answer["metadata"]["creationTimestamp"])
    assert _when(answer["status"]["expirationTimestamp"]) - created == timedelta(seconds=3607)


async def test_a_token_bound_to_a_secret(api: Api) -> None:
    secret = await api.create(
        "secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    )
    ref = {"apiVersion": "v1", "kind": "Secret", "name": "s"}
    answer = (await api.token_request(boundObjectRef=ref)).json()
    claims = _claims(answer["status"]["token"])
    assert claims["kubernetes.io"]["secret"] == {"name": "s", "uid": secret.uid}
    assert "pod" not in claims["kubernetes.io"]


@pytest.mark.parametrize(
    ("ref", "code", "reason", "message"),
    [
        (
            {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": "not-its-uid"},
            409,
            "Conflict",
            'Operation cannot be fulfilled on Pod "web": the UID in the bound object reference '
            "(not-its-uid) does not match the UID in record. The object might have been deleted "
            "and then recreated",
        ),
        (
            {"apiVersion": "v1", "kind": "Pod", "name": "other"},
            400,
            "BadRequest",
            'cannot bind token for serviceaccount "default" to pod running with different '
            "serviceaccount name.",
        ),
        ({"apiVersion": "v1", "kind": "Pod", "name": "ghost"}, 404, "NotFound", 'pods "ghost"'),
        (
            {"apiVersion": "v1", "kind": "Secret", "name": "ghost"},
            404,
            "NotFound",
            'secrets "ghost" not found',
        ),
        (
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "x"},
            400,
            "BadRequest",
            "cannot bind token to object of type /v1, Kind=ConfigMap",
        ),
        (
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
            400,
            "BadRequest",
            "cannot bind token to object of type apps/v1, Kind=Deployment",
        ),
        (
            {"apiVersion": "v1", "kind": "Node", "name": "n"},
            400,
            "BadRequest",
            'cannot bind token to a Node object as the "ServiceAccountTokenNodeBinding" '
            "feature-gate is disabled",
        ),
    ],
)
async def test_bound_object_refusals(
    api: Api, ref: _Json, code: int, reason: str, message: str
) -> None:
    await api.pod("web")
    await api.account("robot")
    await api.pod("other", account="robot")
    head = api.head
    body = _status(await api.token_request(boundObjectRef=ref), code, reason)
    assert message in body["message"]
    assert api.head == head
    if code == 409:
        assert body["details"] == {"name": "web", "kind": "Pod"}


# ---------------------------------------------------------------------- authentication


async def _token(api: Api, account: str = "default", **spec: Any) -> str:
    response = await api.token_request(account, **spec)
    assert response.status_code == 201, response.text
    token: str = response.json()["status"]["token"]
    return token


async def test_a_token_acts_as_its_service_account(api: Api) -> None:
    token = await _token(api)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mine"}}
    response = await api.request("POST", CONFIGMAPS, body, token=token)
    assert response.status_code == 201, response.text
    (entry,) = await api.log.read(api.head, api.head)
    assert entry.command.actor == Actor(
        "system:serviceaccount:default:default",
        ("system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"),
    )


async def test_a_deleted_service_account_ends_its_tokens(api: Api) -> None:
    await api.account("robot")
    used, unused = await _token(api, "robot"), await _token(api, "robot")
    assert await api.works(used)
    await api.delete("serviceaccounts", "robot")
    assert not await api.works(unused)
    # Verified tokens are trusted for ten seconds without a second look, as upstream's cache.
    assert await api.works(used)
    api.clock.now += 10.5
    assert not await api.works(used)
    # A new account of that name is another one: the old tokens stay dead.
    await api.account("robot")
    assert not await api.works(unused)
    assert await api.works(await _token(api, "robot"))


async def test_a_pod_bound_token_ends_with_its_pod(api: Api) -> None:
    pod = await api.pod("web")
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": pod.uid}
    token = await _token(api, boundObjectRef=ref)
    await api.delete("pods", "web")
    await api.pod("web")  # the same name, another uid
    assert not await api.works(token)


async def test_a_secret_bound_token_ends_with_its_secret(api: Api) -> None:
    await api.create("secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
    token = await _token(api, boundObjectRef={"apiVersion": "v1", "kind": "Secret", "name": "s"})
    assert await api.works(token)
    await api.delete("secrets", "s")
    api.clock.now += 11
    assert not await api.works(token)


async def test_expired_and_foreign_tokens_are_unauthorized(api: Api, tmp_path: Path) -> None:
    account = await api.registry.get(
        CATALOGUE.get("", "v1", "serviceaccounts"), "default", "default"
    )
    expired = api.tokens.issue(
        namespace="default",
        name="default",
        uid=account.uid,
        audiences=[DEFAULT_ISSUER],
        expiration_seconds=600,
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    other = ServiceAccountTokens(ensure_service_account_key(tmp_path / "other"))
    foreign = other.issue(
        namespace="default",
        name="default",
        uid=account.uid,
        audiences=[DEFAULT_ISSUER],
        expiration_seconds=600,
        now=datetime.now(UTC),
    )
    for token in (expired, foreign, "a.b.c", "eyJ.e30.", "not-a-jwt"):
        body = _status(await api.request("GET", CONFIGMAPS, token=token), 401, "Unauthorized")
        assert body["message"] == "Unauthorized"
    assert (await api.request("GET", CONFIGMAPS)).status_code == 200  # the admin's still works


async def _legacy_secret(api: Api, token: str, **meta: Any) -> StoredObject:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {
            "name": "legacy",
            "annotations": {"kubernetes.io/service-account.name": "default"},
            **meta,
        },
        "data": {"token": base64.b64encode(token.encode()).decode()},
    }
    return await api.create("secrets", body)


async def test_a_legacy_token_works_while_its_secret_holds_it(api: Api) -> None:
    account = await api.registry.get(
        CATALOGUE.get("", "v1", "serviceaccounts"), "default", "default"
    )
    token = api.tokens.issue_legacy(
        namespace="default", name="default", uid=account.uid, secret_name="legacy"
    )
    assert not await api.works(token), "no Secret holds it yet"
    await _legacy_secret(api, token)
    assert await api.works(token)
    await api.delete("secrets", "legacy")
    api.clock.now += 11
    assert not await api.works(token)
    # A Secret of that name holding another token does not bring it back.
    await _legacy_secret(
        api,
        api.tokens.issue_legacy(
            namespace="default", name="default", uid=account.uid, secret_name="legacy"
        ),
    )
    assert not await api.works(token)


async def test_a_legacy_token_marked_invalid_is_refused(api: Api) -> None:
    account = await api.registry.get(
        CATALOGUE.get("", "v1", "serviceaccounts"), "default", "default"
    )
    token = api.tokens.issue_legacy(
        namespace="default", name="default", uid=account.uid, secret_name="legacy"
    )
    await _legacy_secret(
        api, token, labels={"kubernetes.io/legacy-token-invalid-since": "2024-01-01"}
    )
    assert not await api.works(token)


async def test_a_bound_token_for_the_legacy_secret_name_is_not_a_legacy_token(api: Api) -> None:
    # A token whose claims are flat legacy ones but whose issuer is ours is refused.
    account = await api.registry.get(
        CATALOGUE.get("", "v1", "serviceaccounts"), "default", "default"
    )
    legacy = api.tokens.issue_legacy(
        namespace="default", name="default", uid=account.uid, secret_name="legacy"
    )
    await _legacy_secret(api, legacy)
    claims = _claims(legacy)
    claims["iss"] = DEFAULT_ISSUER
    forged = jwt.encode(claims, api.tokens.key.private_key, algorithm="ES256")
    assert not await api.works(forged)
