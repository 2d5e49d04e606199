"""The informer cache: the Store's indexes (namespace, labels) on their own, then informers
against a real engenho server (sync, handlers with the initial list and every change, late
handlers replayed, label-selected caches, typed caches, failures surfaced), and against the
in-test server for an expired history, after which the store is exact again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from engenho.client import (
    ALL_NAMESPACES,
    ClientConfig,
    EventType,
    KubeClient,
    Store,
    TLSConfig,
    UnauthorizedError,
    WatchEvent,
)
from engenho.schema.generated.models import core_v1
from engenho.selectors import InvalidLabelSelectorError
from tests.integration.server import ServerProcess

from .fake import WatchServer, configmap, event_line, json_response, serving, status

# ---------------------------------------------------------------------- the store


def test_store_indexes_follow_every_change() -> None:
    store: Store[dict[str, Any]] = Store()
    store.replace(
        [
            configmap("a", 1, "n1", app="web", tier="front"),
            configmap("b", 2, "n1", app="web", tier="back"),
            configmap("c", 3, "n2", app="db"),
        ],
        "3",
    )
    assert len(store) == 3 and ("n1", "a") in store and store.resource_version == "3"
    assert [o["metadata"]["name"] for o in store.list(namespace="n1")] == ["a", "b"]
    assert [o["metadata"]["name"] for o in store.list(label_selector="app=web")] == ["a", "b"]
    names = [o["metadata"]["name"] for o in store.list(label_selector="app in (web,db),tier")]
    assert names == ["a", "b"]
    assert [o["metadata"]["name"] for o in store.list(label_selector="tier!=front")] == ["b", "c"]
    assert store.list(namespace="n2", label_selector="app=web") == []
    store.apply(WatchEvent(EventType.MODIFIED, configmap("a", 4, "n1", app="api"), "4"))
    assert [o["metadata"]["name"] for o in store.list(label_selector="app=web")] == ["b"]
    assert store.get("a", "n1") == configmap("a", 4, "n1", app="api")
    old = store.apply(WatchEvent(EventType.DELETED, configmap("b", 5, "n1"), "5"))
    assert old == configmap("b", 2, "n1", app="web", tier="back")
    assert store.keys() == [("n1", "a"), ("n2", "c")] and store.resource_version == "5"
    assert store.list(label_selector="tier=back") == []
    with pytest.raises(InvalidLabelSelectorError):
        store.list(label_selector="app in (")


# ---------------------------------------------------------------------- a real server


def cm(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}


async def eventually(check: Any, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def test_informer_lists_then_follows(client: KubeClient, namespace: str) -> None:
    await client.create(cm("first", app="web"), namespace=namespace)
    await client.create(cm("second", app="db"), namespace=namespace)
    seen: list[tuple[str, str, bool]] = []

    async def record(event: WatchEvent[Any]) -> None:
        seen.append((event.type.value, event.key[1], event.synthetic))

    informer = client.informer("configmaps", namespace=namespace)
    await informer.add_handler(record)
    async with informer:
        assert informer.synced and len(informer.store) == 2
        assert seen == [("ADDED", "first", True), ("ADDED", "second", True)]
        await client.create(cm("third", app="web"), namespace=namespace)
        await client.patch(
            "configmaps", "first", {"metadata": {"labels": {"app": "api"}}}, namespace=namespace
        )
        await client.delete("configmaps", "second", namespace=namespace)
        await eventually(lambda: len(seen) == 5)
        assert seen[2:] == [
            ("ADDED", "third", False),
            ("MODIFIED", "first", False),
            ("DELETED", "second", False),
        ]
        web = informer.store.list(namespace=namespace, label_selector="app=web")
        assert [o["metadata"]["name"] for o in web] == ["third"]
        assert informer.store.get("first", namespace)["metadata"]["labels"] == {"app": "api"}
        # A handler added now first hears of everything already held.
        late: list[str] = []
        await informer.add_handler(lambda event: late.append(event.key[1]))
        assert sorted(late) == ["first", "third"]
    assert informer.store.get("third", namespace) is not None  # the cache outlives the watch


async def test_label_selected_typed_informer(client: KubeClient, namespace: str) -> None:
    await client.create(cm("in", team="blue"), namespace=namespace)
    await client.create(cm("out", team="red"), namespace=namespace)
    async with client.informer(
        core_v1.ConfigMap, namespace=ALL_NAMESPACES, label_selector={"team": "blue"}
    ) as informer:
        assert informer.store.keys() == [(namespace, "in")]
        held = informer.store.get("in", namespace)
        assert isinstance(held, core_v1.ConfigMap)
        await client.patch(
            "configmaps", "in", {"metadata": {"labels": {"team": "red"}}}, namespace=namespace
        )
        await client.patch(
            "configmaps", "out", {"metadata": {"labels": {"team": "blue"}}}, namespace=namespace
        )
        await eventually(lambda: informer.store.keys() == [(namespace, "out")])


async def test_a_failing_informer_raises(server: ServerProcess) -> None:
    anonymous = ClientConfig(
        server=server.url,
        tls=TLSConfig(ca_pem=(server.data_dir / "pki" / "ca.crt").read_bytes()),
    )
    async with KubeClient(anonymous) as client:
        with pytest.raises(UnauthorizedError):
            async with client.informer("configmaps"):
                pass


# ---------------------------------------------------------------------- expired history


async def test_the_store_is_exact_after_an_expired_history() -> None:
    scripted = WatchServer()
    scripted.lists = [
        json_response(
            {
                "kind": "ConfigMapList",
                "metadata": {"resourceVersion": "10"},
                "items": [configmap("a", 3), configmap("b", 4)],
            }
        ),
        json_response(
            {
                "kind": "ConfigMapList",
                "metadata": {"resourceVersion": "30"},
                "items": [configmap("b", 25, app="new"), configmap("c", 28)],
            }
        ),
    ]
    scripted.streams = [
        [
            event_line("MODIFIED", configmap("a", 11)),
            event_line("ERROR", status(410, "Expired", "too old resource version: 11 (20)")),
        ]
    ]
    routes = [Route("/api/v1/namespaces/default/configmaps", scripted.handle)]
    async with (
        serving(Starlette(routes=routes)) as config,
        KubeClient(config) as client,
        client.informer("configmaps") as informer,
    ):
        await eventually(lambda: informer.store.resource_version == "30")
        assert informer.store.keys() == [("default", "b"), ("default", "c")]
        assert informer.store.list(label_selector="app=new") == [configmap("b", 25, app="new")]
        watches = scripted.watches()
        assert [r.query_params["resourceVersion"] for r in watches] == ["10", "30"]
