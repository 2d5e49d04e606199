"""default(): the defaults users expect back (contract §17), image pull policy by tag, and
the rules that defaults only fill absent fields and are idempotent."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engenho.schema import default
from engenho.schema.defaulting import schema_defaults

from .helpers import deployment, service, three_container_pod


def test_pod_defaults() -> None:
    pod = default(three_container_pod())
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    app, sidecar, log = spec["containers"]
    assert app["ports"][0]["protocol"] == "TCP"
    assert app["terminationMessagePath"] == "/dev/termination-log"
    assert app["terminationMessagePolicy"] == "File"
    assert app["env"][1]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert app["readinessProbe"] == {
        "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    # Requests default to limits only where a limit exists and no request does.
    assert app["resources"]["requests"] == {"cpu": "250m", "memory": "256Mi"}
    assert sidecar["resources"]["requests"] == {"cpu": "500m", "memory": "128Mi"}
    assert "resources" not in log
    assert spec["volumes"][0]["configMap"]["defaultMode"] == 420


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("registry.example.com:5000/nginx", "Always"),
        ("registry.example.com:5000/nginx:1.25", "IfNotPresent"),
        ("nginx@sha256:0d5f6f4ab2b7", "IfNotPresent"),
        ("nginx:latest@sha256:0d5f6f4ab2b7", "Always"),
        ("localhost:5000/team/app:v2@sha256:abc", "IfNotPresent"),
    ],
)
def test_image_pull_policy_follows_the_tag(image: str, policy: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "spec": {"containers": [{"name": "c", "image": image}]},
    }
    assert default(pod)["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_host_network_copies_container_ports_to_host_ports() -> None:
    pod = three_container_pod()
    pod["spec"]["hostNetwork"] = True
    default(pod)
    assert pod["spec"]["containers"][0]["ports"][0]["hostPort"] == 8080


def test_deployment_defaults() -> None:
    spec = default(deployment())["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    template_spec = spec["template"]["spec"]
    assert template_spec["restartPolicy"] == "Always"
    assert template_spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "enableServiceLinks" not in template_spec  # a Pod-only default, as upstream


def test_recreate_strategy_gets_no_rolling_update() -> None:
    obj = deployment()
    obj["spec"]["strategy"] = {"type": "Recreate"}
    assert default(obj)["spec"]["strategy"] == {"type": "Recreate"}


def test_workload_defaults() -> None:
    stateful = deployment() | {"kind": "StatefulSet"}
    stateful["spec"]["serviceName"] = "web"
    spec = default(stateful)["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    daemon = deployment() | {"kind": "DaemonSet"}
    assert default(daemon)["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    replica_set = deployment() | {"kind": "ReplicaSet"}
    assert default(replica_set)["spec"]["replicas"] == 1


def test_job_and_cron_job_defaults() -> None:
    job_spec: dict[str, Any] = {
        "template": {
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}
        }
    }
    job = default({"apiVersion": "batch/v1", "kind": "Job", "spec": copy.deepcopy(job_spec)})[
        "spec"
    ]
    assert (job["completions"], job["parallelism"], job["backoffLimit"]) == (1, 1, 6)
    assert (job["completionMode"], job["suspend"], job["podReplacementPolicy"]) == (
        "NonIndexed",
        False,
        "TerminatingOrFailed",
    )
    parallel = default(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "spec": copy.deepcopy(job_spec) | {"parallelism": 3},
        }
    )
    assert "completions" not in parallel["spec"]
    cron = default(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "spec": {"schedule": "@daily", "jobTemplate": {"spec": job_spec}},
        }
    )["spec"]
    assert (cron["concurrencyPolicy"], cron["suspend"]) == ("Allow", False)
    assert (cron["successfulJobsHistoryLimit"], cron["failedJobsHistoryLimit"]) == (3, 1)
    assert cron["jobTemplate"]["spec"]["backoffLimit"] == 6


def test_service_defaults() -> None:
    spec = default(service())["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert spec["ports"][0]["protocol"] == "TCP"
    assert spec["ports"][0]["targetPort"] == 8080
    no_target = service()
    del no_target["spec"]["ports"][0]["targetPort"]
    assert default(no_target)["spec"]["ports"][0]["targetPort"] == 80
    balancer = service()
    balancer["spec"] |= {"type": "LoadBalancer", "sessionAffinity": "ClientIP"}
    spec = default(balancer)["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["allocateLoadBalancerNodePorts"] is True
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_secret_and_namespace_defaults() -> None:
    secret = default(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "stringData": {"user": "admin"},
            "data": {"a": "eA=="},
        }
    )
    assert secret["type"] == "Opaque"
    assert secret["data"] == {"a": "eA==", "user": "YWRtaW4="}
    assert "stringData" not in secret
    namespace = default({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    assert namespace["metadata"]["labels"] == {"kubernetes.io/metadata.name": "shop"}
    assert namespace["status"] == {"phase": "Active"}


def test_rbac_subject_api_groups() -> None:
    binding = default(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "subjects": [
                {"kind": "User", "name": "jane"},
                {"kind": "ServiceAccount", "name": "sa"},
            ],
        }
    )
    assert [s.get("apiGroup") for s in binding["subjects"]] == ["rbac.authorization.k8s.io", ""]


def test_defaults_only_fill_absent_fields() -> None:
    pod = three_container_pod()
    pod["spec"] |= {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0, "dnsPolicy": ""}
    pod["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    pod["spec"]["containers"][0]["ports"][0]["protocol"] = "UDP"
    default(pod)
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["terminationGracePeriodSeconds"] == 0
    assert pod["spec"]["dnsPolicy"] == "ClusterFirst"  # an empty string is Go's zero value: absent
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Never"
    assert pod["spec"]["containers"][0]["ports"][0]["protocol"] == "UDP"


def test_defaulting_is_idempotent() -> None:
    for obj in (three_container_pod(), deployment(), service()):
        once = default(obj)
        assert default(copy.deepcopy(once)) == once


def test_only_meaningful_schema_defaults_are_applied() -> None:
    # Zero-value defaults ("" / 0 / {}) mark always-serialised Go fields; only real ones apply.
    assert schema_defaults() == {
        "io.k8s.api.core.v1.ContainerPort": {"protocol": "TCP"},
        "io.k8s.api.core.v1.ServicePort": {"protocol": "TCP"},
    }
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"image": "x"}]}}
    assert "name" not in default(pod)["spec"]["containers"][0]
