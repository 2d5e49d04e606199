"""EngenhoConfig: the built-in defaults make a working single node, they agree with what the
rest of engenho assumes (data directory, runtimes, controller names), and every validation
rule refuses a file that breaks it with the field path and the file as its source."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from engenho.config import (
    CONTROLLERS,
    EngenhoConfig,
    InvalidConfigError,
    ListenAddress,
    Runtime,
    ServerSection,
    config_document,
    prescribed_defaults,
    validate_config_file,
)

ENV = {"HOME": "/home/op"}


def problems_of(tmp_path: Path, document: Any) -> list[tuple[str, str, str | None]]:
    path = tmp_path / "engenho.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(InvalidConfigError) as caught:
        validate_config_file(path, env=ENV, hostname="node-1")
    return [(p.path, p.message, p.source) for p in caught.value.problems]


def test_defaults_are_a_working_single_node() -> None:
    config = prescribed_defaults(ENV, "Node-1.")
    assert config.server.data_dir == Path("/home/op/.local/share/engenho")
    assert config.server.listen == ListenAddress("127.0.0.1", 6443)
    assert config.server.database_url is None
    assert config.node_agent.node_name == "node-1"
    assert config.node_agent.runtime is Runtime.OCI
    assert config.replication.control_plane_size == 1
    assert config.replication.peers == ()
    assert str(config.networking.service_cidr) == "10.96.0.0/12"
    assert str(config.networking.cluster_dns) == "10.96.0.10"
    assert all(config.controller_enabled(spec.name) for spec in CONTROLLERS)
    assert not config.controller_enabled("no-such-controller")


def test_a_host_name_that_is_no_node_name_falls_back() -> None:
    assert prescribed_defaults(ENV, "my_laptop").node_agent.node_name == "engenho"


def test_data_dir_default_follows_xdg_like_engenho_paths() -> None:
    from engenho.paths import default_data_dir

    assert prescribed_defaults(os.environ, "h").server.data_dir == default_data_dir()
    xdg = prescribed_defaults({"XDG_DATA_HOME": "/srv/data"}, "h")
    assert xdg.server.data_dir == Path("/srv/data/engenho")


def test_runtimes_are_the_servers() -> None:
    from engenho.server import RUNTIMES

    assert tuple(r.value for r in Runtime) == RUNTIMES


def test_the_catalogue_names_the_controllers_that_exist() -> None:
    from engenho.reconcilers.garbage import GarbageCollector
    from engenho.reconcilers.namespaces import NamespaceController

    names = {spec.name for spec in CONTROLLERS}
    assert {NamespaceController.name, GarbageCollector.name} <= names
    assert len(names) == len(CONTROLLERS)


def test_a_config_built_in_python_is_validated() -> None:
    defaults = prescribed_defaults(ENV, "h")
    with pytest.raises(InvalidConfigError) as caught:
        EngenhoConfig(
            server=ServerSection(data_dir=Path("/d"), listen=ListenAddress("127.0.0.1", 2380)),
            node_agent=defaults.node_agent,
            controllers=defaults.controllers,
        )
    assert [p.path for p in caught.value.problems] == ["replication.listen"]


def test_the_document_round_trips(tmp_path: Path) -> None:
    config = prescribed_defaults(ENV, "h")
    path = tmp_path / "engenho.yaml"
    path.write_text(yaml.safe_dump(config_document(config)))
    assert validate_config_file(path, env=ENV, hostname="h").config == config


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "engenho.yaml"
    path.write_text("")
    assert validate_config_file(path, env=ENV, hostname="h").config == prescribed_defaults(ENV, "h")


RULES: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown section", {"scheduling": {}}, "scheduling", "unknown field"),
    ("unknown field", {"server": {"port": 1}}, "server.port", "unknown field"),
    ("section is a mapping", {"audit": 5}, "audit", "expected a mapping"),
    (
        "strict int",
        {"replication": {"control_plane_size": "3"}},
        "replication.control_plane_size",
        "expected an integer",
    ),
    (
        "strict bool",
        {"controllers": {"job": {"enabled": "no"}}},
        "controllers.job.enabled",
        "true or false",
    ),
    (
        "enum",
        {"node_agent": {"runtime": "docker"}},
        "node_agent.runtime",
        "not one of: fake, oci, wasm, none",
    ),
    (
        "unknown controller",
        {"controllers": {"jobs": {"enabled": False}}},
        "controllers.jobs",
        "no controller 'jobs'",
    ),
    ("cluster name", {"cluster": {"name": "My Cluster"}}, "cluster.name", "DNS-1123 label"),
    ("listen", {"server": {"listen": "6443"}}, "server.listen", "not HOST:PORT"),
    ("listen v6 in brackets", {"server": {"listen": "::1:6443"}}, "server.listen", "in brackets"),
    ("listen port", {"server": {"listen": "0.0.0.0:70000"}}, "server.listen", "not HOST:PORT"),
    (
        "database url",
        {"server": {"database_url": "projections.db"}},
        "server.database_url",
        "not a URL",
    ),
    (
        "cert with key",
        {"server": {"tls": {"cert_file": "/c.pem"}}},
        "server.tls.cert_file",
        "without key_file",
    ),
    ("tls sans", {"server": {"tls": {"sans": ["ok", "not ok"]}}}, "server.tls.sans[1]", "DNS-1123"),
    ("data dir is a path", {"server": {"data_dir": ""}}, "server.data_dir", "expected a path"),
    (
        "odd control plane",
        {"replication": {"control_plane_size": 2, "peers": ["a:2380"]}},
        "replication.control_plane_size",
        "must be odd",
    ),
    (
        "peers for a group",
        {"replication": {"control_plane_size": 3}},
        "replication.control_plane_size",
        "at least one peer",
    ),
    (
        "peers unique",
        {"replication": {"peers": ["a:2380", "a:2380"]}},
        "replication.peers[1]",
        "repeated",
    ),
    (
        "peer is not self",
        {"replication": {"peers": ["127.0.0.1:2380"]}},
        "replication.peers[0]",
        "own listen",
    ),
    (
        "election vs heartbeat",
        {"replication": {"election_timeout_seconds": 0.3}},
        "replication.election_timeout_seconds",
        "five heartbeat",
    ),
    (
        "positive heartbeat",
        {"replication": {"heartbeat_interval_seconds": 0}},
        "replication.heartbeat_interval_seconds",
        "greater than zero",
    ),
    (
        "listen clash",
        {"replication": {"listen": "127.0.0.1:6443"}},
        "replication.listen",
        "server.listen too",
    ),
    ("profiles", {"scheduler": {"profiles": []}}, "scheduler.profiles", "at least one"),
    (
        "profiles unique",
        {"scheduler": {"profiles": ["a", "a"]}},
        "scheduler.profiles[1]",
        "repeated",
    ),
    ("strategy", {"scheduler": {"strategy": "random"}}, "scheduler.strategy", "least_allocated"),
    (
        "workers",
        {"controllers": {"deployment": {"workers": 0}}},
        "controllers.deployment.workers",
        "at least 1",
    ),
    (
        "resync",
        {"controllers": {"job": {"resync_interval_seconds": -1}}},
        "controllers.job.resync_interval_seconds",
        "greater than zero",
    ),
    ("node name", {"node_agent": {"node_name": "Node_1"}}, "node_agent.node_name", "DNS-1123"),
    (
        "cpu quantity",
        {"node_agent": {"capacity": {"cpu": "four"}}},
        "node_agent.capacity.cpu",
        "quantity",
    ),
    (
        "memory positive",
        {"node_agent": {"capacity": {"memory": "0Gi"}}},
        "node_agent.capacity.memory",
        "greater than zero",
    ),
    ("pods", {"node_agent": {"capacity": {"pods": 0}}}, "node_agent.capacity.pods", "at least 1"),
    (
        "allowlist absolute",
        {"node_agent": {"host_path_allowlist": ["data"]}},
        "node_agent.host_path_allowlist[0]",
        "absolute",
    ),
    (
        "allowlist normalised",
        {"node_agent": {"host_path_allowlist": ["/data/../etc"]}},
        "node_agent.host_path_allowlist[0]",
        "normalised",
    ),
    (
        "log files",
        {"node_agent": {"container_log_max_files": 1}},
        "node_agent.container_log_max_files",
        "at least 2",
    ),
    (
        "log size",
        {"node_agent": {"container_log_max_size": "10 MB"}},
        "node_agent.container_log_max_size",
        "quantity",
    ),
    (
        "service range size",
        {"networking": {"service_cidr": "10.0.0.0/8", "cluster_dns": "10.0.0.10"}},
        "networking.service_cidr",
        "at most /12",
    ),
    (
        "dns in services",
        {"networking": {"cluster_dns": "10.244.0.10"}},
        "networking.cluster_dns",
        "not inside",
    ),
    (
        "ranges disjoint",
        {"networking": {"cluster_cidr": "10.96.0.0/16"}},
        "networking.cluster_cidr",
        "overlaps",
    ),
    (
        "one family",
        {"networking": {"cluster_cidr": "fd00::/56"}},
        "networking.cluster_cidr",
        "differ in family",
    ),
    (
        "port range",
        {"networking": {"node_port_range": "500-600"}},
        "networking.node_port_range",
        "at least 1024",
    ),
    (
        "domain",
        {"networking": {"cluster_domain": "cluster..local"}},
        "networking.cluster_domain",
        "DNS-1123",
    ),
    (
        "checkpoint",
        {"audit": {"checkpoint_interval_seconds": 0}},
        "audit.checkpoint_interval_seconds",
        "greater than zero",
    ),
]


@pytest.mark.parametrize(
    ("document", "path", "fragment"),
    [pytest.param(doc, path, fragment, id=rule) for rule, doc, path, fragment in RULES],
)
def test_rule(tmp_path: Path, document: dict[str, Any], path: str, fragment: str) -> None:
    found = problems_of(tmp_path, document)
    assert any(p == path and fragment in m for p, m, _ in found), found
    source = next(s for p, _, s in found if p == path)
    assert source == f"file {tmp_path / 'engenho.yaml'}"


def test_a_non_mapping_file_is_refused(tmp_path: Path) -> None:
    assert problems_of(tmp_path, ["server"]) == [
        ("", "expected a mapping, got a list", f"file {tmp_path / 'engenho.yaml'}")
    ]


def test_every_problem_in_one_pass(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        {
            "bogus": 1,
            "audit": {"checkpoint_interval_seconds": 0},
            "replication": {"control_plane_size": 4},
            "controllers": {"job": {"workers": 0}},
        },
    )
    assert [p for p, _, _ in found] == [
        "audit.checkpoint_interval_seconds",
        "bogus",
        "controllers.job.workers",
        "replication.control_plane_size",
        "replication.control_plane_size",
    ]


def test_node_lifecycle_timings_reach_the_controller(tmp_path: Path) -> None:
    from engenho.reconcilers.nodelifecycle import NodeLifecycleController
    from engenho.server.controllers import node_lifecycle_arguments

    defaults = node_lifecycle_arguments(prescribed_defaults(ENV, "h"))
    assert defaults == {
        "node_monitor_grace_period": 40.0,
        "node_startup_grace_period": 60.0,
        "node_monitor_period": 5.0,
        "node_eviction_rate": 0.1,
    }
    # The controller takes each as a keyword: a renamed parameter fails here, not at start.
    assert set(defaults) <= set(inspect.signature(NodeLifecycleController).parameters)
    problems = problems_of(
        tmp_path,
        {"node_lifecycle": {"node_monitor_grace_period_seconds": 2, "node_eviction_rate": 0}},
    )
    assert [(path, message) for path, message, _ in problems] == [
        ("node_lifecycle.node_eviction_rate", "0.0 must be greater than zero"),
        (
            "node_lifecycle.node_monitor_period_seconds",
            "5.0 must be less than node_monitor_grace_period_seconds (2.0)",
        ),
    ]


def test_node_agent_timings_reach_the_agent(tmp_path: Path) -> None:
    from engenho.node_agent.embedded import agent_config
    from engenho.paths import DataDir

    config = prescribed_defaults(ENV, "h")
    defaults = agent_config(config, DataDir(tmp_path))
    assert (defaults.status_update_every, defaults.lease_duration) == (10.0, 40)
    assert defaults.lease_renew_every == 10.0  # a quarter of the Lease, as the kubelet's
    problems = problems_of(
        tmp_path,
        {
            "node_agent": {
                "node_status_update_frequency_seconds": 0,
                "node_lease_duration_seconds": 0,
            }
        },
    )
    assert [(path, message) for path, message, _ in problems] == [
        ("node_agent.node_lease_duration_seconds", "0 must be at least 1"),
        ("node_agent.node_status_update_frequency_seconds", "0.0 must be greater than zero"),
    ]
