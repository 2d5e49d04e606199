"""Python names for wire names: the awkward acronym plurals, keywords and enum members."""

from __future__ import annotations

import pytest

from engenho.schema.codegen.naming import enum_member_name, module_for, pascal_case, snake_case


@pytest.mark.parametrize(
    ("wire", "python"),
    [
        ("apiVersion", "api_version"),
        ("nonResourceURLs", "non_resource_urls"),
        ("podIPs", "pod_ips"),
        ("clusterIPs", "cluster_ips"),
        ("externalIPs", "external_ips"),
        ("podCIDRs", "pod_cidrs"),
        ("targetWWNs", "target_wwns"),
        ("hostIPC", "host_ipc"),
        ("hostPID", "host_pid"),
        ("machineID", "machine_id"),
        ("systemUUID", "system_uuid"),
        ("diskURI", "disk_uri"),
        ("pdID", "pd_id"),
        ("seLinuxOptions", "se_linux_options"),
        ("ipFamilyPolicy", "ip_family_policy"),
        ("loadBalancerIP", "load_balancer_ip"),
        ("Port", "port"),
        ("continue", "continue_"),
        ("type", "type"),
        ("x-kubernetes-embedded", "x_kubernetes_embedded"),
        ("fsGroupChangePolicy", "fs_group_change_policy"),
    ],
)
def test_snake_case(wire: str, python: str) -> None:
    assert snake_case(wire) == python


@pytest.mark.parametrize(
    ("value", "member"),
    [
        ("ClusterFirstWithHostNet", "CLUSTER_FIRST_WITH_HOST_NET"),
        ("IfNotPresent", "IF_NOT_PRESENT"),
        ("TCP", "TCP"),
        ("IPv4", "IPV4"),
        ("", "EMPTY"),
        ("None", "NONE"),
        ("3rdParty", "F_3RD_PARTY"),
    ],
)
def test_enum_member_name(value: str, member: str) -> None:
    assert enum_member_name(value) == member


def test_pascal_case_and_modules() -> None:
    assert pascal_case("imagePullPolicy") == "ImagePullPolicy"
    assert module_for("io.k8s.api.core.v1.Pod") == "core_v1"
    assert module_for("io.k8s.api.rbac.v1.Role") == "rbac_v1"
    assert module_for("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta") == "meta_v1"
    assert module_for("io.k8s.apimachinery.pkg.api.resource.Quantity") == "resource"
