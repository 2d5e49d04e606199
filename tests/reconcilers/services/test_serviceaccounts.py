"""The ServiceAccount controller with the root CA publisher: a ``default`` ServiceAccount and
the ``kube-root-ca.crt`` ConfigMap in every namespace, written under upstream's identities, put
back when deleted or edited, and nothing new in a terminating namespace."""

from __future__ import annotations

from typing import Any

from engenho.reconcilers import ServiceAccountController

from .conftest import Cluster, actor_of, eventually, resync, running, tracked

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
Accounts = tracked(ServiceAccountController)
SYSTEM = ("default", "kube-system", "kube-public", "kube-node-lease")


def _present(cluster: Cluster, plural: str, namespace: str, name: str) -> Any:
    async def check() -> bool:
        return await cluster.get(plural, namespace, name) is not None

    return check


async def _namespace(cluster: Cluster, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    await cluster.create("namespaces", "", body)


async def test_every_namespace_gets_its_account_and_the_root_ca(cluster: Cluster) -> None:
    async with running(cluster, Accounts, ca_pem=CA) as (controller,):
        await _namespace(cluster, "team")
        for namespace in (*SYSTEM, "team"):
            await eventually(_present(cluster, "serviceaccounts", namespace, "default"))
            await eventually(_present(cluster, "configmaps", namespace, "kube-root-ca.crt"))
        account = await cluster.get("serviceaccounts", "team", "default")
        configmap = await cluster.get("configmaps", "team", "kube-root-ca.crt")
        assert account is not None and configmap is not None
        assert configmap.object["data"] == {"ca.crt": CA}
        assert configmap.object["metadata"]["annotations"]["kubernetes.io/description"].startswith(
            "Contains a CA bundle that can be used to verify the kube-apiserver"
        )
        assert await actor_of(cluster, account) == (
            "system:serviceaccount:kube-system:service-account-controller"
        )
        assert await actor_of(cluster, configmap) == (
            "system:serviceaccount:kube-system:root-ca-cert-publisher"
        )
        head = cluster.head
        await resync(controller, "team")
        assert cluster.head == head, "a resync writes nothing"


async def test_deleted_or_edited_objects_are_put_back(cluster: Cluster) -> None:
    async with running(cluster, Accounts, ca_pem=CA):
        await eventually(_present(cluster, "serviceaccounts", "default", "default"))
        await eventually(_present(cluster, "configmaps", "default", "kube-root-ca.crt"))
        first = await cluster.get("serviceaccounts", "default", "default")
        assert first is not None
        await cluster.delete("serviceaccounts", "default", "default")
        await cluster.delete("configmaps", "default", "kube-root-ca.crt")

        async def recreated() -> bool:
            account = await cluster.get("serviceaccounts", "default", "default")
            return account is not None and account.uid != first.uid

        await eventually(recreated)
        await eventually(_present(cluster, "configmaps", "default", "kube-root-ca.crt"))

        await cluster.registry.patch(
            cluster.ctx(),
            cluster.rt("configmaps"),
            "default",
            "kube-root-ca.crt",
            "merge",
            {"data": {"ca.crt": "forged", "extra": "x"}},
        )

        async def restored() -> bool:
            configmap = await cluster.get("configmaps", "default", "kube-root-ca.crt")
            return configmap is not None and configmap.object["data"] == {"ca.crt": CA}

        await eventually(restored)


async def test_nothing_new_in_a_terminating_namespace(cluster: Cluster) -> None:
    await _namespace(cluster, "leaving")
    async with running(cluster, Accounts, ca_pem=CA) as (controller,):
        await eventually(_present(cluster, "serviceaccounts", "leaving", "default"))
        await eventually(_present(cluster, "configmaps", "leaving", "kube-root-ca.crt"))
        # No namespace controller runs here: the namespace stays Terminating.
        await cluster.delete("namespaces", "", "leaving")
        await cluster.delete("serviceaccounts", "leaving", "default")
        await cluster.delete("configmaps", "leaving", "kube-root-ca.crt")
        await resync(controller, "leaving")
        assert await cluster.get("serviceaccounts", "leaving", "default") is None
        assert await cluster.get("configmaps", "leaving", "kube-root-ca.crt") is None
