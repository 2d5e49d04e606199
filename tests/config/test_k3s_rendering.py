"""The k3s renderer: golden renders of several configs, every config.yaml key and cmdline.txt
flag a real ``k3s server`` flag (tests/config/k3s_server_flags.py), no setting written twice,
manifests that are well-formed Kubernetes objects, determinism, and writing an output
directory (atomic files, stale manifests pruned, Secrets private)."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engenho.config import (
    InvalidConfigError,
    K3sRenderer,
    Rendering,
    cluster_config_document,
    example_cluster_config,
    parse_cluster_config,
    write_rendering,
)
from engenho.config.k3s_manifests import PLACEHOLDER
from tests.config.golden import CASES, check_golden, load_case
from tests.config.k3s_server_flags import BOOLEAN_FLAGS, K3S_SERVER_FLAGS, REPEATABLE_FLAGS

RENDERER = K3sRenderer()
ARGUMENT = re.compile(r"--(?P<flag>[a-z0-9][a-z0-9-]*)(?:=(?P<value>\S+))?")


def files(rendering: Rendering) -> dict[str, bytes]:
    return {str(f.path): f.content for f in rendering.files}


def config_keys(rendering: Rendering) -> dict[str, Any]:
    document = yaml.safe_load(files(rendering)["config.yaml"])
    assert isinstance(document, dict)
    return document


def arguments(rendering: Rendering) -> list[tuple[str, str | None]]:
    lines = files(rendering)["cmdline.txt"].decode().splitlines()
    parsed = []
    for line in lines:
        match = ARGUMENT.fullmatch(line)
        assert match is not None, f"not one --flag=value argument: {line!r}"
        parsed.append((match["flag"], match["value"]))
    return parsed


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    check_golden(case, RENDERER.render(load_case(case)))


def check_flags(rendering: Rendering) -> None:
    keys = config_keys(rendering)
    args = arguments(rendering)
    flags = [flag for flag, _ in args]
    assert set(keys) <= K3S_SERVER_FLAGS, set(keys) - K3S_SERVER_FLAGS
    assert set(flags) <= K3S_SERVER_FLAGS, set(flags) - K3S_SERVER_FLAGS
    # One place per setting: k3s would merge or override silently.
    assert not set(keys) & set(flags)
    for flag, value in args:
        assert (value is None) == (flag in BOOLEAN_FLAGS), flag
        if flag not in REPEATABLE_FLAGS:
            assert flags.count(flag) == 1, flag
    for key, value in keys.items():
        if isinstance(value, list):
            assert key in REPEATABLE_FLAGS, key


@pytest.mark.parametrize("case", CASES)
def test_only_real_k3s_flags_each_written_once(case: str) -> None:
    check_flags(RENDERER.render(load_case(case)))


def test_the_cluster_wide_settings_are_always_explicit() -> None:
    args = dict(arguments(RENDERER.render(load_case("minimal"))))
    assert args == {
        "cluster-cidr": "10.42.0.0/16",
        "cluster-dns": "10.43.0.10",
        "cluster-domain": "cluster.local",
        "flannel-backend": "vxlan",
        "service-cidr": "10.43.0.0/16",
        "service-node-port-range": "30000-32767",
    }
    assert config_keys(RENDERER.render(load_case("minimal"))) == {"node-ip": "10.0.0.5"}


def test_component_choices_become_k3s_flags() -> None:
    args = arguments(RENDERER.render(load_case("calico-argocd")))
    assert ("disable", "traefik") in args  # ingress none
    assert ("disable", "servicelb") in args  # load-balancer none
    assert ("disable", "coredns") in args  # dns external
    assert ("disable", "runtimes") in args
    assert ("disable-cloud-controller", None) in args
    assert ("disable-scheduler", None) in args
    assert ("disable-network-policy", None) in args  # calico enforces (delegated)
    assert ("flannel-backend", "none") in args
    assert ("kube-proxy-arg", "proxy-mode=ipvs") in args
    assert config_keys(RENDERER.render(load_case("calico-argocd")))["tls-san"] == [
        "api.factory.example"
    ]


def test_dual_stack_lists_both_families_and_masquerades_unique_local_v6() -> None:
    args = dict(arguments(RENDERER.render(load_case("flannel-dual-stack"))))
    assert args["cluster-cidr"] == "10.42.0.0/16,fd42:42::/56"
    assert args["service-cidr"] == "10.43.0.0/16,fd42:43::/112"
    assert "flannel-ipv6-masq" in args
    public = parse_cluster_config(
        {
            "cluster-name": "lab",
            "node-ip": "192.168.50.2",
            "network": {
                "dual-stack": {
                    "enabled": True,
                    "cluster-cidr-v6": "2a01:4f8:c0c::/56",
                    "service-cidr-v6": "2a01:4f8:c0d::/112",
                }
            },
        }
    )
    assert "flannel-ipv6-masq" not in dict(arguments(RENDERER.render(public)))


def manifests(rendering: Rendering) -> dict[str, list[dict[str, Any]]]:
    found = {}
    for path, content in files(rendering).items():
        if path.startswith("manifests/"):
            documents = list(yaml.safe_load_all(content))
            assert all(isinstance(d, dict) for d in documents)
            found[path.removeprefix("manifests/")] = documents
    return found


@pytest.mark.parametrize("case", CASES)
def test_manifests_are_kubernetes_objects(case: str) -> None:
    for name, documents in manifests(RENDERER.render(load_case(case))).items():
        assert re.fullmatch(r"engenho-[a-z0-9-]+\.yaml", name), name
        for document in documents:
            assert {"apiVersion", "kind", "metadata"} <= set(document), name
            assert document["metadata"]["name"], name
            assert None not in _values(document), name
            if document["kind"] == "HelmChart":
                spec = document["spec"]
                assert {"chart", "repo", "version", "targetNamespace"} <= set(spec)
                if "valuesContent" in spec:
                    assert isinstance(yaml.safe_load(spec["valuesContent"]), dict)


def _values(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [v for item in value.values() for v in _values(item)]
    if isinstance(value, list):
        return [v for item in value for v in _values(item)]
    return [value]


def test_default_components_need_no_manifests() -> None:
    assert manifests(RENDERER.render(load_case("minimal"))) == {}


def test_what_each_choice_renders() -> None:
    rendered = manifests(RENDERER.render(example_cluster_config()))
    assert sorted(rendered) == [
        "engenho-cni-cilium.yaml",
        "engenho-gitops-flux-install.yaml",
        "engenho-gitops-flux-sync.yaml",
        "engenho-ingress-nginx.yaml",
        "engenho-load-balancer-metallb.yaml",
    ]
    (cilium,) = rendered["engenho-cni-cilium.yaml"]
    assert cilium["spec"]["bootstrap"] is True
    values = yaml.safe_load(cilium["spec"]["valuesContent"])
    assert values["kubeProxyReplacement"] is True
    assert values["k8sServiceHost"] == "192.168.10.20"
    assert values["MTU"] == 1450
    secret, repository, kustomization = rendered["engenho-gitops-flux-sync.yaml"]
    assert secret["kind"] == "Secret"
    assert set(secret["stringData"].values()) == {PLACEHOLDER}
    assert repository["spec"]["secretRef"] == {"name": "fleet-deploy-key"}
    assert repository["spec"]["ref"] == {"branch": "main"}
    assert kustomization["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "homelab"}
    assert kustomization["spec"]["path"] == "./clusters/homelab"


def test_argocd_application_and_repository_credential() -> None:
    rendered = manifests(RENDERER.render(load_case("calico-argocd")))
    secret, application = rendered["engenho-gitops-argocd-sync.yaml"]
    assert secret["metadata"]["name"] == "factory-gitops-auth"
    assert secret["metadata"]["labels"] == {"argocd.argoproj.io/secret-type": "repository"}
    assert secret["stringData"]["url"] == application["spec"]["source"]["repoURL"]
    assert application["metadata"]["name"] == "factory-root"
    assert application["spec"]["source"]["targetRevision"] == "release-1.4"
    assert application["spec"]["syncPolicy"] == {"automated": {"prune": True, "selfHeal": True}}
    (calico,) = rendered["engenho-cni-calico.yaml"]
    network = yaml.safe_load(calico["spec"]["valuesContent"])["installation"]["calicoNetwork"]
    assert network["mtu"] == 1400
    assert [pool["cidr"] for pool in network["ipPools"]] == ["10.60.0.0/16"]


def test_rendering_twice_gives_the_same_bytes() -> None:
    for case in CASES:
        config = load_case(case)
        assert files(K3sRenderer().render(config)) == files(RENDERER.render(config))
        reparsed = parse_cluster_config(cluster_config_document(config))
        assert files(RENDERER.render(reparsed)) == files(RENDERER.render(config))


def test_write_rendering(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "manifests").mkdir(parents=True)
    (out / "manifests" / "engenho-cni-calico.yaml").write_text("stale")
    (out / "manifests" / "operator-owned.yaml").write_text("kept")
    written = write_rendering(RENDERER.render(example_cluster_config()), out)
    assert sorted(p.relative_to(out).as_posix() for p in written) == sorted(
        files(RENDERER.render(example_cluster_config()))
    )
    assert not (out / "manifests" / "engenho-cni-calico.yaml").exists()
    assert (out / "manifests" / "operator-owned.yaml").read_text() == "kept"
    secret_file = out / "manifests" / "engenho-gitops-flux-sync.yaml"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "config.yaml").stat().st_mode) == 0o644
    assert not list(out.rglob(".*")), "temporary files left behind"


# Property: any valid combination of the choices renders only real, non-repeated k3s flags,
# deterministically.
CHOICES = st.fixed_dictionaries(
    {
        "cni": st.sampled_from(["flannel", "calico", "cilium", "none"]),
        "flannel-backend": st.sampled_from([None, "vxlan", "host-gw", "wireguard-native"]),
        "network-policy": st.sampled_from([None, "enabled", "disabled", "delegated"]),
        "kube-proxy": st.fixed_dictionaries(
            {
                "mode": st.sampled_from([None, "iptables", "ipvs", "nftables"]),
                "disabled": st.booleans(),
            }
        ),
        "ingress": st.sampled_from(["traefik", "nginx", "none"]),
        "load-balancer": st.sampled_from(["servicelb", "metallb", "none"]),
        "dns": st.sampled_from(["coredns", "external"]),
        "mtu": st.sampled_from([None, 1400]),
        "disable": st.lists(
            st.sampled_from(
                ["local-storage", "metrics-server", "runtimes", "cloud-controller", "scheduler"]
            ),
            unique=True,
        ),
        "tls-sans": st.lists(st.sampled_from(["a.example", "10.9.9.9", "b.example"])),
        "dual-stack": st.sampled_from(
            [
                {"enabled": False},
                {
                    "enabled": True,
                    "cluster-cidr-v6": "fd00:1::/56",
                    "service-cidr-v6": "fd00:2::/112",
                },
            ]
        ),
    }
)
BOOTSTRAPS = st.sampled_from(
    [
        {},
        {"flux": {"url": "https://git.example/fleet", "auth": {"kind": "https-token"}}},
        {"argocd": {"repo": "git@git.example:fleet.git", "auth": {"kind": "ssh-key"}}},
    ]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.filter_too_much])
@given(network=CHOICES, bootstrap=BOOTSTRAPS)
def test_any_valid_config_renders_real_flags_deterministically(
    network: dict[str, Any], bootstrap: dict[str, Any]
) -> None:
    document = {"cluster-name": "prop", "node-ip": "10.0.0.5", "network": network}
    document["bootstrap"] = bootstrap
    try:
        config = parse_cluster_config(document)
    except InvalidConfigError:
        return
    first = RENDERER.render(config)
    check_flags(first)
    assert files(first) == files(RENDERER.render(config))
