"""The resource catalogue: lookups by group/version/plural, kind and short name; scope,
verbs, short names, categories and subresources; discovery documents."""

from __future__ import annotations

import pytest

from engenho.schema import CATALOGUE, Catalogue, ResourceType, UnknownResourceError


@pytest.mark.parametrize(
    ("short", "group", "plural"),
    [
        ("po", "", "pods"),
        ("svc", "", "services"),
        ("deploy", "apps", "deployments"),
        ("rs", "apps", "replicasets"),
        ("sts", "apps", "statefulsets"),
        ("ds", "apps", "daemonsets"),
        ("cm", "", "configmaps"),
        ("ns", "", "namespaces"),
        ("no", "", "nodes"),
        ("ep", "", "endpoints"),
        ("sa", "", "serviceaccounts"),
        ("pvc", "", "persistentvolumeclaims"),
        ("pv", "", "persistentvolumes"),
        ("cj", "batch", "cronjobs"),
        ("pdb", "policy", "poddisruptionbudgets"),
        ("ev", "", "events"),
        ("rc", "", "replicationcontrollers"),
    ],
)
def test_short_names_resolve(short: str, group: str, plural: str) -> None:
    [resource] = CATALOGUE.resolve(short)
    assert (resource.group, resource.plural) == (group, plural)
    assert short in resource.short_names


def test_resolve_by_plural_singular_kind_and_qualified_name() -> None:
    for name in ("pods", "pod", "Pod", "POD"):
        assert [r.plural for r in CATALOGUE.resolve(name)] == ["pods"]
    assert [r.group for r in CATALOGUE.resolve("deployments.apps")] == ["apps"]
    assert [r.group for r in CATALOGUE.resolve("leases.coordination.k8s.io")] == [
        "coordination.k8s.io"
    ]
    assert CATALOGUE.resolve("deployments.batch") == []
    assert CATALOGUE.resolve("frobs") == []


def test_category_all_holds_the_workloads() -> None:
    in_all = {r.plural for r in CATALOGUE if "all" in r.categories}
    assert in_all == {
        "pods", "services", "replicationcontrollers", "deployments", "replicasets",
        "statefulsets", "daemonsets", "jobs", "cronjobs",
    }  # fmt: skip


def test_scope_and_verbs() -> None:
    pods = CATALOGUE.get("", "v1", "pods")
    assert pods.namespaced
    assert pods.verbs == (
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    )
    assert pods.kind == "Pod" and pods.singular == "pod" and pods.list_kind == "PodList"
    assert pods.definition == "io.k8s.api.core.v1.Pod"
    namespaces = CATALOGUE.get("", "v1", "namespaces")
    assert not namespaces.namespaced
    assert "deletecollection" not in namespaces.verbs
    assert not CATALOGUE.get("rbac.authorization.k8s.io", "v1", "clusterroles").namespaced
    assert CATALOGUE.get("", "v1", "bindings").verbs == ("create",)
    assert CATALOGUE.get("coordination.k8s.io", "v1", "leases").namespaced


def test_subresources() -> None:
    pods = CATALOGUE.get("", "v1", "pods")
    status, log, binding, exec_, eviction = (
        pods.subresource(name) for name in ("status", "log", "binding", "exec", "eviction")
    )
    assert status is not None and status.verbs == ("get", "patch", "update")
    assert log is not None and log.verbs == ("get",) and log.kind.kind == "Pod"
    assert binding is not None and binding.verbs == ("create",) and binding.kind.kind == "Binding"
    assert exec_ is not None and exec_.verbs == ("create", "get")
    assert eviction is not None and (eviction.kind.group, eviction.kind.kind) == (
        "policy",
        "Eviction",
    )
    scale = CATALOGUE.get("apps", "v1", "deployments").subresource("scale")
    assert scale is not None
    assert (scale.kind.group, scale.kind.version, scale.kind.kind) == ("autoscaling", "v1", "Scale")
    token = CATALOGUE.get("", "v1", "serviceaccounts").subresource("token")
    assert token is not None and token.verbs == ("create",)
    assert pods.subresource("frobnicate") is None


def test_api_resource_list_rows() -> None:
    document = CATALOGUE.api_resource_list("apps", "v1")
    assert document["kind"] == "APIResourceList"
    assert document["groupVersion"] == "apps/v1"
    rows = {row["name"]: row for row in document["resources"]}
    assert rows["deployments"] == {
        "name": "deployments",
        "singularName": "deployment",
        "namespaced": True,
        "kind": "Deployment",
        "verbs": [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ],
        "shortNames": ["deploy"],
        "categories": ["all"],
    }
    assert rows["deployments/scale"] == {
        "name": "deployments/scale",
        "singularName": "",
        "namespaced": True,
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
        "verbs": ["get", "patch", "update"],
    }
    assert [row["name"] for row in document["resources"]] == sorted(rows)
    core = {row["name"]: row for row in CATALOGUE.api_resource_list("", "v1")["resources"]}
    assert core["pods/status"]["kind"] == "Pod" and "group" not in core["pods/status"]
    assert core["pods/log"]["verbs"] == ["get"]
    assert core["pods/binding"]["kind"] == "Binding"
    assert "shortNames" not in core["secrets"]


def test_group_versions_and_kind_lookup() -> None:
    assert ("", "v1") in CATALOGUE.group_versions()
    assert ("apps", "v1") in CATALOGUE.group_versions()
    assert CATALOGUE.for_kind("apps/v1", "Deployment").plural == "deployments"
    assert CATALOGUE.for_kind("v1", "Service").qualified_name == "services"
    assert CATALOGUE.for_kind("apps/v1", "Deployment").qualified_name == "deployments.apps"


def test_unknown_lookups_raise() -> None:
    with pytest.raises(UnknownResourceError, match='resource type "frobs"'):
        CATALOGUE.get("", "v1", "frobs")
    assert CATALOGUE.find("", "v1", "frobs") is None
    with pytest.raises(UnknownResourceError):
        CATALOGUE.for_kind("apps/v1", "Pod")
    with pytest.raises(UnknownResourceError):
        CATALOGUE.api_resource_list("example.com", "v1")


def test_duplicate_rows_are_refused() -> None:
    row = ResourceType("", "v1", "Pod", "pods", "pod", True, ("get",))
    with pytest.raises(ValueError, match="duplicate"):
        Catalogue([row, row])
