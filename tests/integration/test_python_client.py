"""The official `kubernetes` Python client against a real engenho server: CRUD, pagination,
selectors, watch resume from a list's resourceVersion (exactly the later events, in order), and
the error codes clients branch on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from .server import ServerProcess, own

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def core(server: ServerProcess) -> Iterator[client.CoreV1Api]:
    api_client = config.new_client_from_config(config_file=str(server.kubeconfig))
    yield client.CoreV1Api(api_client)
    api_client.close()


def _configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels=labels), data=data or None
    )


@pytest.fixture(scope="module")
def namespace(core: client.CoreV1Api) -> str:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="pyclient")))
    return "pyclient"


def test_crud(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(namespace, _configmap("crud", k="v1"))
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    read = core.read_namespaced_config_map("crud", namespace)
    assert read.data == {"k": "v1"}
    read.data["k"] = "v2"
    replaced = core.replace_namespaced_config_map("crud", namespace, read)
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    assert replaced.metadata.uid == created.metadata.uid
    patched = core.patch_namespaced_config_map(
        "crud", namespace, {"metadata": {"labels": {"patched": "yes"}}}
    )
    assert patched.metadata.labels == {"patched": "yes"} and patched.data == {"k": "v2"}
    core.delete_namespaced_config_map("crud", namespace)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("crud", namespace)
    assert missing.value.status == 404


def test_generate_name(core: client.CoreV1Api, namespace: str) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-"))
    made = core.create_namespaced_config_map(namespace, body)
    assert made.metadata.name.startswith("gen-") and len(made.metadata.name) == 9


def test_pagination_is_a_consistent_snapshot(core: client.CoreV1Api) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="paging")))
    for i in range(23):
        core.create_namespaced_config_map("paging", _configmap(f"cm-{i:02d}"))
    first = core.list_namespaced_config_map("paging", limit=10)
    snapshot = first.metadata.resource_version
    assert len(first.items) == 10 and first.metadata._continue
    core.create_namespaced_config_map("paging", _configmap("cm-99-late"))
    core.delete_namespaced_config_map("cm-22", "paging")
    names = [item.metadata.name for item in first.items]
    token = first.metadata._continue
    while token:
        page = core.list_namespaced_config_map("paging", limit=10, _continue=token)
        assert page.metadata.resource_version == snapshot
        names += [item.metadata.name for item in page.items]
        token = page.metadata._continue
    assert own(names) == [f"cm-{i:02d}" for i in range(23)], "pages show the first page's snapshot"
    with pytest.raises(ApiException) as forged:
        core.list_namespaced_config_map(
            "paging", limit=10, _continue=first.metadata._continue[:-3] + "AAA"
        )
    assert forged.value.status == 400


def test_selectors(core: client.CoreV1Api) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="select")))
    core.create_namespaced_config_map("select", _configmap("a", {"app": "web", "tier": "front"}))
    core.create_namespaced_config_map("select", _configmap("b", {"app": "web", "tier": "back"}))
    core.create_namespaced_config_map("select", _configmap("c", {"app": "db"}))

    def names(**kwargs: str) -> list[str]:
        listed = core.list_namespaced_config_map("select", **kwargs).items
        return own([i.metadata.name for i in listed])

    assert names(label_selector="app=web") == ["a", "b"]
    assert names(label_selector="app=web,tier!=front") == ["b"]
    assert names(label_selector="tier") == ["a", "b"]
    assert names(label_selector="!tier") == ["c"]
    assert names(label_selector="app in (db, cache)") == ["c"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.name!=b", label_selector="app=web") == ["a"]
    everywhere = core.list_config_map_for_all_namespaces(label_selector="app=db").items
    assert [(i.metadata.namespace, i.metadata.name) for i in everywhere] == [("select", "c")]
    with pytest.raises(ApiException) as bad:
        core.list_namespaced_config_map("select", label_selector="app in (web")
    assert bad.value.status == 400
    with pytest.raises(ApiException) as unsupported:
        core.list_namespaced_config_map("select", field_selector="spec.foo=bar")
    assert unsupported.value.status == 400
    # ConfigMaps have no field conversion of their own: upstream's default wording.
    assert "is not a known field selector: only" in unsupported.value.body


def test_watch_resumes_from_a_list_resource_version(core: client.CoreV1Api) -> None:
    """The official client's own e2e scenario: create A, LIST, create B, patch B, delete all,
    then watch from the LIST resourceVersion: exactly ADDED, MODIFIED, DELETED, DELETED."""
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="resume")))
    core.create_namespaced_config_map("resume", _configmap("a"))
    listed = core.list_namespaced_config_map("resume")
    core.create_namespaced_config_map("resume", _configmap("b"))
    core.patch_namespaced_config_map("b", "resume", {"data": {"x": "y"}})
    core.delete_collection_namespaced_config_map("resume")
    events = []
    stream = watch.Watch().stream(
        core.list_namespaced_config_map,
        "resume",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=3,
    )
    for event in stream:
        if own([event["object"].metadata.name]):  # not the namespace's kube-root-ca.crt
            events.append((event["type"], event["object"].metadata.name))
        if len(events) == 4:
            break
    assert events == [("ADDED", "b"), ("MODIFIED", "b"), ("DELETED", "a"), ("DELETED", "b")]


def test_error_codes(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, _configmap("dup"))
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_config_map(namespace, _configmap("dup"))
    assert exists.value.status == 409 and '"reason":"AlreadyExists"' in exists.value.body.replace(
        " ", ""
    )
    stale = core.read_namespaced_config_map("dup", namespace)
    core.patch_namespaced_config_map("dup", namespace, {"data": {"n": "1"}})
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("dup", namespace, stale)
    assert conflict.value.status == 409 and "Conflict" in conflict.value.body
    with pytest.raises(ApiException) as no_namespace:
        core.create_namespaced_config_map("does-not-exist", _configmap("x"))
    assert no_namespace.value.status == 404
    assert 'namespaces \\"does-not-exist\\" not found' in no_namespace.value.body or (
        'namespaces "does-not-exist" not found' in no_namespace.value.body
    )
    with pytest.raises(ApiException) as invalid:
        core.create_namespaced_config_map(namespace, _configmap("UPPER"))
    assert invalid.value.status == 422 and "Invalid" in invalid.value.body
    with pytest.raises(ApiException) as gone:
        core.delete_namespaced_config_map("never-was", namespace)
    assert gone.value.status == 404
