"""The service account token controller (``serviceaccount-token``): a legacy token Secret gets
its token, CA, namespace and uid annotation under kube-controller-manager's identity (and a
token once there is kept); a Secret whose service account is missing, or is another one by
now, is deleted, as are a deleted account's tokens; a deleted token Secret leaves its account's
``secrets`` list; other Secrets are left alone."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from engenho.pki import ServiceAccountTokens, ensure_service_account_key
from engenho.reconcilers import ServiceAccountTokenController

from .conftest import Cluster, actor_of, eventually, resync, running, tracked

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
Tokens = tracked(ServiceAccountTokenController)
TOKEN_TYPE = "kubernetes.io/service-account-token"
NAME = "kubernetes.io/service-account.name"
UID = "kubernetes.io/service-account.uid"


@pytest.fixture
def tokens(tmp_path: Path) -> ServiceAccountTokens:
    return ServiceAccountTokens(ensure_service_account_key(tmp_path / "pki"))


def _secret(name: str, account: str, **extra: Any) -> dict[str, Any]:
    annotations = {NAME: account, **extra.pop("annotations", {})}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": TOKEN_TYPE,
        "metadata": {"name": name, "annotations": annotations},
        **extra,
    }


async def _account(cluster: Cluster, name: str, **extra: Any) -> Any:
    body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}, **extra}
    return await cluster.create("serviceaccounts", "default", body)


def _filled(cluster: Cluster, name: str) -> Any:
    async def check() -> bool:
        secret = await cluster.get("secrets", "default", name)
        return secret is not None and bool((secret.object.get("data") or {}).get("token"))

    return check


def _gone(cluster: Cluster, plural: str, name: str) -> Any:
    async def check() -> bool:
        return await cluster.get(plural, "default", name) is None

    return check


def _data(secret: Any, key: str) -> bytes:
    return base64.b64decode(secret.object["data"][key])


async def test_a_token_secret_is_filled_in(cluster: Cluster, tokens: ServiceAccountTokens) -> None:
    account = await _account(cluster, "robot")
    async with running(cluster, Tokens, tokens=tokens, ca_pem=CA) as (controller,):
        await cluster.create("secrets", "default", _secret("robot-token", "robot"))
        await eventually(_filled(cluster, "robot-token"))
        secret = await cluster.get("secrets", "default", "robot-token")
        assert secret is not None
        assert _data(secret, "ca.crt") == CA.encode()
        assert _data(secret, "namespace") == b"default"
        annotations = secret.object["metadata"]["annotations"]
        assert annotations[NAME] == "robot" and annotations[UID] == account.uid
        claims = tokens.verify(_data(secret, "token").decode())
        assert claims.legacy and claims.username == "system:serviceaccount:default:robot"
        assert (claims.uid, claims.secret and claims.secret.name) == (account.uid, "robot-token")
        assert await actor_of(cluster, secret) == "system:kube-controller-manager"
        managers = [m["manager"] for m in secret.object["metadata"]["managedFields"]]
        assert "kube-controller-manager" in managers

        head = cluster.head
        await resync(controller, "default/robot-token")
        assert cluster.head == head, "a filled-in Secret is left as it is"


async def test_a_token_already_there_is_kept_and_the_ca_put_right(
    cluster: Cluster, tokens: ServiceAccountTokens
) -> None:
    await _account(cluster, "robot")
    own = base64.b64encode(b"my-own-token").decode()
    stale_ca = base64.b64encode(b"an old CA").decode()
    body = _secret("robot-token", "robot", data={"token": own, "ca.crt": stale_ca})
    await cluster.create("secrets", "default", body)
    async with running(cluster, Tokens, tokens=tokens, ca_pem=CA):

        async def fixed() -> bool:
            secret = await cluster.get("secrets", "default", "robot-token")
            return secret is not None and _data(secret, "ca.crt") == CA.encode()

        await eventually(fixed)
        secret = await cluster.get("secrets", "default", "robot-token")
        assert secret is not None
        assert _data(secret, "token") == b"my-own-token"
        assert _data(secret, "namespace") == b"default"


async def test_a_secret_without_its_account_is_deleted(
    cluster: Cluster, tokens: ServiceAccountTokens
) -> None:
    async with running(cluster, Tokens, tokens=tokens, ca_pem=CA):
        await cluster.create("secrets", "default", _secret("orphan-token", "nobody"))
        await eventually(_gone(cluster, "secrets", "orphan-token"))


async def test_a_secret_for_an_account_since_replaced_is_deleted(
    cluster: Cluster, tokens: ServiceAccountTokens
) -> None:
    await _account(cluster, "robot")
    body = _secret("robot-token", "robot", annotations={UID: "the-old-accounts-uid"})
    async with running(cluster, Tokens, tokens=tokens, ca_pem=CA):
        await cluster.create("secrets", "default", body)
        await eventually(_gone(cluster, "secrets", "robot-token"))


async def test_deleting_an_account_deletes_its_tokens(
    cluster: Cluster, tokens: ServiceAccountTokens
) -> None:
    await _account(cluster, "robot")
    await _account(cluster, "keeper")
    async with running(cluster, Tokens, tokens=tokens, ca_pem=CA):
        for name, account in (("a", "robot"), ("b", "robot"), ("c", "keeper")):
            await cluster.create("secrets", "default", _secret(name, account))
            await eventually(_filled(cluster, name))
        await cluster.delete("serviceaccounts", "default", "robot")
        await eventually(_gone(cluster, "secrets", "a"))
        await eventually(_gone(cluster, "secrets", "b"))
        assert await cluster.get("secrets", "default", "c") is not None


async def test_a_deleted_token_leaves_its_accounts_list(
    cluster: Cluster, tokens: ServiceAccountTokens
) -> None:
    await _account(cluster, "robot", secrets=[{"name": "robot-token"}, {"name": "other"}])
    async with running(cluster, Tokens, tokens=tokens, ca_pem=CA):
        await cluster.create("secrets", "default", _secret("robot-token", "robot"))
        await eventually(_filled(cluster, "robot-token"))
        await cluster.delete("secrets", "default", "robot-token")

        async def unlisted() -> bool:
            account = await cluster.get("serviceaccounts", "default", "robot")
            return account is not None and account.object.get("secrets") == [{"name": "other"}]

        await eventually(unlisted)


async def test_other_secrets_are_left_alone(cluster: Cluster, tokens: ServiceAccountTokens) -> None:
    plain = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "plain"}}
    async with running(cluster, Tokens, tokens=tokens, ca_pem=CA) as (controller,):
        await cluster.create("secrets", "default", plain)
        await resync(controller, "default/plain")
        secret = await cluster.get("secrets", "default", "plain")
        assert secret is not None and "data" not in secret.object
