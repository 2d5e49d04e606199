"""Everyday kubectl workflows beyond CRUD against a real server: client-side apply with removals,
server-side apply with two managers (conflict, then --force-conflicts), edit, the three patch
types, diff, explain, scale, cascading deletes, finalizers, namespace deletion, server-side dry
runs that leave the log untouched, and malformed patches refused without side effects."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from .server import QUIET_CONTROLLERS, ServerProcess, kubectl

pytestmark = pytest.mark.slow

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: machinery
  labels: {{app: {name}{extra_label}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: nginx
        image: {image}
"""


def deployment(
    name: str, *, replicas: int = 2, image: str = "nginx:1.25", extra_label: str = ""
) -> str:
    return DEPLOYMENT.format(name=name, replicas=replicas, image=image, extra_label=extra_label)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Without the workload controllers: several tests check that a request left the log
    alone, and a Deployment's controllers would write to it meanwhile."""
    process = ServerProcess(tmp_path_factory.mktemp("engenho"), env=QUIET_CONTROLLERS).start()
    yield process
    if process.process is not None:
        process.stop()


@pytest.fixture(scope="module", autouse=True)
def namespace(server: ServerProcess) -> None:
    kubectl(server, "create", "namespace", "machinery")


def get_json(server: ServerProcess, *args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(kubectl(server, "get", *args, "-n", "machinery", "-o", "json").stdout)


def test_client_side_apply_round_trip_removes_fields(server: ServerProcess) -> None:
    manifest = textwrap.dedent(
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: csa, namespace: machinery, labels: {keep: "1", drop: "1"}}
        data: {a: "1", b: "2"}
        """
    )
    assert "created" in kubectl(server, "apply", "-f", "-", input=manifest).stdout
    trimmed = manifest.replace(', drop: "1"', "").replace(', b: "2"', "")
    assert "configured" in kubectl(server, "apply", "-f", "-", input=trimmed).stdout
    obj = get_json(server, "cm", "csa")
    assert obj["data"] == {"a": "1"} and obj["metadata"]["labels"] == {"keep": "1"}
    before = server.log_head()
    assert "unchanged" in kubectl(server, "apply", "-f", "-", input=trimmed).stdout
    assert server.log_head() == before


def test_server_side_apply_conflict_then_force(server: ServerProcess) -> None:
    first = kubectl(server, "apply", "--server-side", "-f", "-", input=deployment("ssa"))
    assert "serverside-applied" in first.stdout
    before = server.log_head()
    again = kubectl(server, "apply", "--server-side", "-f", "-", input=deployment("ssa"))
    assert "serverside-applied" in again.stdout and server.log_head() == before, "idempotent"
    other = deployment("ssa", replicas=5)
    refused = kubectl(
        server, "apply", "--server-side", "--field-manager=ci", "-f", "-", input=other, check=False
    )
    assert refused.returncode == 1
    assert (
        'Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas'
        in refused.stderr
    )
    assert server.log_head() == before
    forced = kubectl(
        server,
        "apply",
        "--server-side",
        "--field-manager=ci",
        "--force-conflicts",
        "-f",
        "-",
        input=other,
    )
    assert "serverside-applied" in forced.stdout
    obj = json.loads(
        kubectl(
            server, "get", "deploy", "ssa", "-n", "machinery", "-o", "json", "--show-managed-fields"
        ).stdout
    )
    assert obj["spec"]["replicas"] == 5
    managers = {(e["manager"], e["operation"]) for e in obj["metadata"]["managedFields"]}
    assert {("kubectl", "Apply"), ("ci", "Apply")} <= managers


def test_edit_with_an_editor_script(server: ServerProcess, tmp_path: Path) -> None:
    kubectl(server, "apply", "-f", "-", input=deployment("edited"))
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/image: nginx:1.25/image: nginx:1.26/' \"$1\"\n")
    editor.chmod(0o755)
    out = kubectl(
        server, "edit", "deploy", "edited", "-n", "machinery", env={"KUBE_EDITOR": str(editor)}
    )
    assert "edited" in out.stdout
    obj = get_json(server, "deploy", "edited")
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert obj["metadata"]["generation"] == 2


def test_patch_in_all_three_types(server: ServerProcess) -> None:
    kubectl(server, "apply", "-f", "-", input=deployment("patched"))
    kubectl(
        server,
        "patch",
        "deploy",
        "patched",
        "-n",
        "machinery",
        "--type=strategic",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"},{"name":"nginx","image":"nginx:1.27"}]}}}}',
    )
    containers = get_json(server, "deploy", "patched")["spec"]["template"]["spec"]["containers"]
    # Upstream's strategic merge orders the patch's elements as the patch lists them.
    assert [(c["name"], c["image"]) for c in containers] == [
        ("sidecar", "busybox"),
        ("nginx", "nginx:1.27"),
    ]
    kubectl(
        server,
        "patch",
        "deploy",
        "patched",
        "-n",
        "machinery",
        "--type=merge",
        "-p",
        '{"metadata":{"labels":{"merged":"yes"}}}',
    )
    kubectl(
        server,
        "patch",
        "deploy",
        "patched",
        "-n",
        "machinery",
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/replicas","value":3},{"op":"remove","path":"/spec/template/spec/containers/0"}]',
    )
    obj = get_json(server, "deploy", "patched")
    assert obj["metadata"]["labels"]["merged"] == "yes" and obj["spec"]["replicas"] == 3
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["nginx"]


@pytest.mark.parametrize(
    ("patch_type", "patch", "shown"),
    [
        # kubectl prints a 422 as `... is invalid: ...` and a 400 as `(BadRequest)`.
        ("json", '[{"op":"replace","path":"/spec/nope/deeper","value":1}]', "is invalid"),
        ("json", '[{"op":"test","path":"/spec/replicas","value":99}]', "is invalid"),
        ("json", '{"op":"add"}', "(BadRequest)"),
        (
            "strategic",
            '{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}',
            "(BadRequest)",
        ),
    ],
)
def test_malformed_patches_change_nothing(
    server: ServerProcess, patch_type: str, patch: str, shown: str
) -> None:
    kubectl(server, "apply", "-f", "-", input=deployment("target"))
    before = server.log_head()
    result = kubectl(
        server,
        "patch",
        "deploy",
        "target",
        "-n",
        "machinery",
        f"--type={patch_type}",
        "-p",
        patch,
        check=False,
    )
    assert result.returncode == 1
    assert shown in result.stderr, result.stderr
    assert server.log_head() == before


def test_wrong_patch_content_type_is_415(server: ServerProcess) -> None:
    kubectl(server, "apply", "-f", "-", input=deployment("typed"))
    before = server.log_head()
    status, body, _ = server.request(
        "PATCH",
        "/apis/apps/v1/namespaces/machinery/deployments/typed",
        b"{}",
        content_type="application/json",
    )
    assert status == 415 and isinstance(body, dict) and body["reason"] == "UnsupportedMediaType"
    status, body, _ = server.request(
        "PATCH",
        "/apis/apps/v1/namespaces/machinery/deployments/typed?fieldManager=x&force=true",
        b'{"spec":{"replicas":1}}',
        content_type="application/merge-patch+json",
    )
    assert status == 422 and isinstance(body, dict) and "force: Forbidden" in body["message"]
    status, body, _ = server.request(
        "PATCH",
        "/apis/apps/v1/namespaces/machinery/deployments/typed",
        b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: typed}\n",
        content_type="application/apply-patch+yaml",
    )
    assert status == 422 and isinstance(body, dict)
    assert "fieldManager: Required value: is required for apply patch" in body["message"]
    assert server.log_head() == before


def test_diff_and_explain(server: ServerProcess) -> None:
    kubectl(server, "apply", "-f", "-", input=deployment("diffed"))
    same = kubectl(server, "diff", "-f", "-", input=deployment("diffed"), check=False)
    assert same.returncode == 0, same.stderr
    changed = kubectl(
        server, "diff", "-f", "-", input=deployment("diffed", replicas=4), check=False
    )
    assert (
        changed.returncode == 1
        and "-  replicas: 2" in changed.stdout
        and "+  replicas: 4" in changed.stdout
    )
    explained = kubectl(server, "explain", "deployment.spec.strategy").stdout
    assert "rollingUpdate" in explained


def test_scale(server: ServerProcess) -> None:
    kubectl(server, "apply", "-f", "-", input=deployment("scaled"))
    assert (
        "scaled"
        in kubectl(server, "scale", "deploy", "scaled", "-n", "machinery", "--replicas=7").stdout
    )
    assert get_json(server, "deploy", "scaled")["spec"]["replicas"] == 7
    scale = json.loads(
        kubectl(
            server, "get", "--raw", "/apis/apps/v1/namespaces/machinery/deployments/scaled/scale"
        ).stdout
    )
    assert (
        scale["kind"] == "Scale"
        and scale["spec"]["replicas"] == 7
        and scale["status"]["selector"] == "app=scaled"
    )
    # kubectl checks --resource-version itself; the server's own check is on a PUT of Scale.
    stale = dict(scale, spec={"replicas": 1})
    stale["metadata"] = {**scale["metadata"], "resourceVersion": "1"}
    before = server.log_head()
    status, body, _ = server.request(
        "PUT",
        "/apis/apps/v1/namespaces/machinery/deployments/scaled/scale",
        json.dumps(stale).encode(),
    )
    assert status == 409 and isinstance(body, dict) and body["reason"] == "Conflict"
    assert server.log_head() == before


def _owned_configmaps(server: ServerProcess, owner: str, count: int) -> None:
    kubectl(server, "create", "configmap", owner, "-n", "machinery")
    uid = get_json(server, "cm", owner)["metadata"]["uid"]
    for i in range(count):
        manifest = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"{owner}-dep-{i}",
                "namespace": "machinery",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": owner,
                        "uid": uid,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
        }
        kubectl(server, "create", "-f", "-", input=json.dumps(manifest))


def _names(server: ServerProcess) -> set[str]:
    return set(kubectl(server, "get", "cm", "-n", "machinery", "-o", "name").stdout.split())


def test_cascading_deletes(server: ServerProcess) -> None:
    _owned_configmaps(server, "fg", 2)
    kubectl(
        server, "delete", "cm", "fg", "-n", "machinery", "--cascade=foreground", "--timeout=30s"
    )
    assert not {"configmap/fg", "configmap/fg-dep-0", "configmap/fg-dep-1"} & _names(server)
    _owned_configmaps(server, "orph", 2)
    kubectl(server, "delete", "cm", "orph", "-n", "machinery", "--cascade=orphan", "--timeout=30s")
    names = _names(server)
    assert (
        "configmap/orph" not in names and {"configmap/orph-dep-0", "configmap/orph-dep-1"} <= names
    )
    assert "ownerReferences" not in get_json(server, "cm", "orph-dep-0")["metadata"]
    _owned_configmaps(server, "bg", 1)
    kubectl(server, "delete", "cm", "bg", "-n", "machinery", "--cascade=background")
    kubectl(server, "wait", "--for=delete", "cm/bg-dep-0", "-n", "machinery", "--timeout=30s")


def test_a_finalizer_holds_an_object(server: ServerProcess) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "held", "namespace": "machinery", "finalizers": ["example.com/hold"]},
    }
    kubectl(server, "create", "-f", "-", input=json.dumps(manifest))
    kubectl(server, "delete", "cm", "held", "-n", "machinery", "--wait=false")
    obj = get_json(server, "cm", "held")
    assert obj["metadata"]["deletionTimestamp"] and obj["metadata"]["finalizers"] == [
        "example.com/hold"
    ]
    kubectl(
        server,
        "patch",
        "cm",
        "held",
        "-n",
        "machinery",
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )
    kubectl(server, "wait", "--for=delete", "cm/held", "-n", "machinery", "--timeout=30s")


def test_namespace_deletion_empties_it(server: ServerProcess) -> None:
    kubectl(server, "create", "namespace", "doomed")
    kubectl(server, "create", "configmap", "inside", "-n", "doomed")
    kubectl(server, "create", "secret", "generic", "s", "-n", "doomed")
    out = kubectl(server, "delete", "namespace", "doomed", "--timeout=60s")
    assert 'namespace "doomed" deleted' in out.stdout
    assert kubectl(server, "get", "namespace", "doomed", check=False).returncode == 1
    refused = kubectl(server, "delete", "namespace", "default", check=False)
    assert refused.returncode == 1 and "this namespace may not be deleted" in refused.stderr


def test_server_dry_runs_leave_the_log_untouched(server: ServerProcess) -> None:
    kubectl(server, "apply", "-f", "-", input=deployment("dry"))
    before = server.log_head()
    kubectl(server, "apply", "-f", "-", "--dry-run=server", input=deployment("dry", replicas=9))
    kubectl(
        server,
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        "--dry-run=server",
        input=deployment("dry", replicas=9),
    )
    kubectl(server, "create", "configmap", "never", "-n", "machinery", "--dry-run=server")
    kubectl(server, "delete", "deploy", "dry", "-n", "machinery", "--dry-run=server")
    kubectl(server, "scale", "deploy", "dry", "-n", "machinery", "--replicas=4", "--dry-run=server")
    kubectl(server, "label", "deploy", "dry", "-n", "machinery", "x=y", "--dry-run=server")
    assert server.log_head() == before
    assert get_json(server, "deploy", "dry")["spec"]["replicas"] == 2


def test_field_validation_warns_or_refuses(server: ServerProcess) -> None:
    manifest = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "fv", "namespace": "machinery"},
            "datta": {},
        }
    )
    strict = kubectl(server, "create", "-f", "-", input=manifest, check=False)
    assert strict.returncode == 1 and 'unknown field "datta"' in strict.stderr
    warned = kubectl(server, "create", "-f", "-", "--validate=warn", input=manifest)
    assert 'unknown field "datta"' in warned.stderr and "created" in warned.stdout
