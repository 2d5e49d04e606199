"""Tiered resolution of EngenhoConfig: defaults < file < environment < flags, the source of
every value, where the file is looked for, how environment variables and flags are read and
refused, and the controller catalogue as a parameter."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from engenho.config import (
    ConfigFileError,
    ControllerSpec,
    InvalidConfigError,
    ListenAddress,
    ResolvedConfig,
    Source,
    Tier,
    add_config_arguments,
    config_flags,
    resolve_config,
    validate_config_file,
    variable_for,
)
from engenho.config.layering import leaves


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def system_file(tmp_path: Path) -> Path:
    return tmp_path / "etc" / "engenho" / "engenho.yaml"


def write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))
    return path


def resolve(
    home: Path, system_file: Path, env: dict[str, str] | None = None, **kwargs: Any
) -> ResolvedConfig:
    return resolve_config(
        env={"HOME": str(home)} | (env or {}),
        hostname="node-1",
        system_file=system_file,
        **kwargs,
    )


def refused(home: Path, system_file: Path, **kwargs: Any) -> list[tuple[str, str | None]]:
    with pytest.raises(InvalidConfigError) as caught:
        resolve(home, system_file, **kwargs)
    return [(p.path, p.source) for p in caught.value.problems]


def test_with_no_configuration_every_value_is_a_default(home: Path, system_file: Path) -> None:
    resolved = resolve(home, system_file)
    assert resolved.file is None
    assert {s.tier for s in resolved.sources.values()} == {Tier.DEFAULT}
    assert resolved.source("server.data_dir").origin.startswith("built-in (~/.local/share")
    assert resolved.source("node_agent.node_name").origin == "built-in (host name 'node-1')"
    assert resolved.config.server.data_dir == home / ".local" / "share" / "engenho"


def test_precedence_with_provenance(home: Path, system_file: Path, tmp_path: Path) -> None:
    file = write(
        tmp_path / "engenho.yaml",
        {
            "server": {"listen": "0.0.0.0:7000"},
            "cluster": {"name": "from-file"},
            "controllers": {"job": {"enabled": False}},
        },
    )
    env = {
        "ENGENHO_SERVER__LISTEN": "0.0.0.0:8000",
        "ENGENHO_AUDIT__CHECKPOINT_INTERVAL_SECONDS": "5",
    }
    flags = {"server.listen": "0.0.0.0:9000"}
    expected = {
        Tier.DEFAULT: ("127.0.0.1:6443", Source(Tier.DEFAULT, "built-in")),
        Tier.FILE: ("0.0.0.0:7000", Source(Tier.FILE, str(file))),
        Tier.ENV: ("0.0.0.0:8000", Source(Tier.ENV, "ENGENHO_SERVER__LISTEN")),
        Tier.FLAG: ("0.0.0.0:9000", Source(Tier.FLAG, "--listen")),
    }
    for through, (listen, source) in expected.items():
        resolved = resolve(
            home, system_file, env=env, config_file=file, flags=flags, through=through
        )
        assert str(resolved.config.server.listen) == listen, through
        assert resolved.source("server.listen") == source, through
        assert resolved.through is through
    resolved = resolve(home, system_file, env=env, config_file=file, flags=flags)
    # Each value keeps the highest tier that set it.
    assert resolved.source("cluster.name") == Source(Tier.FILE, str(file))
    assert resolved.config.controller_enabled("job") is False
    assert resolved.source("controllers.job.enabled").tier is Tier.FILE
    assert resolved.source("controllers.job.workers").tier is Tier.DEFAULT
    assert resolved.config.audit.checkpoint_interval_seconds == 5.0
    assert resolved.source("audit.checkpoint_interval_seconds").tier is Tier.ENV
    assert str(resolved.source("server.listen")) == "flag --listen"


def test_the_document_shows_every_value_and_its_source(home: Path, system_file: Path) -> None:
    resolved = resolve(home, system_file, flags={"node_agent.runtime": "none"})
    document = resolved.document()
    assert sorted(document["sources"]) == sorted(p for p, _ in leaves(document["config"]))
    assert document["sources"]["node_agent.runtime"] == {"tier": "flag", "origin": "--runtime"}
    assert document["through"] == "flag"
    assert document["file"] is None


def test_source_of_a_section_or_list_item(home: Path, system_file: Path) -> None:
    resolved = resolve(home, system_file, flags={"server.data_dir": "/srv/engenho"})
    # A section's source is its first value's (sorted by path): server.data_dir.
    assert resolved.source("server") == Source(Tier.FLAG, "--data-dir")
    assert resolved.source("server.data_dir").tier is Tier.FLAG
    assert resolved.source("scheduler.profiles[0]").tier is Tier.DEFAULT
    with pytest.raises(KeyError):
        resolved.source("nowhere")


def test_where_the_file_is_looked_for(home: Path, system_file: Path, tmp_path: Path) -> None:
    write(system_file, {"cluster": {"name": "system"}})
    assert resolve(home, system_file).config.cluster.name == "system"
    write(home / ".config" / "engenho" / "engenho.yaml", {"cluster": {"name": "user"}})
    assert resolve(home, system_file).config.cluster.name == "user"
    xdg = tmp_path / "xdg"
    write(xdg / "engenho" / "engenho.yaml", {"cluster": {"name": "xdg"}})
    env = {"XDG_CONFIG_HOME": str(xdg)}
    resolved = resolve(home, system_file, env=env)
    assert resolved.file is not None and resolved.file.chosen_by == "$XDG_CONFIG_HOME"
    assert resolved.config.cluster.name == "xdg"
    named = write(tmp_path / "named.yaml", {"cluster": {"name": "named"}})
    env["ENGENHO_CONFIG"] = str(named)
    assert resolve(home, system_file, env=env).config.cluster.name == "named"
    flagged = write(tmp_path / "flagged.yaml", {"server": {"listen": "0.0.0.0:1"}})
    resolved = resolve(home, system_file, env=env, config_file=flagged)
    # Only the first file found is read: nothing of the others leaks in.
    assert resolved.config.cluster.name == "engenho"
    assert resolved.file is not None and resolved.file.chosen_by == "--config"
    assert resolve(home, system_file, env=env, through=Tier.DEFAULT).file is None


def test_a_file_named_explicitly_must_exist(home: Path, system_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="from --config"):
        resolve(home, system_file, config_file=tmp_path / "missing.yaml")
    with pytest.raises(ConfigFileError, match=r"from \$ENGENHO_CONFIG"):
        resolve(home, system_file, env={"ENGENHO_CONFIG": str(tmp_path / "missing.yaml")})


def test_environment_values_are_read_by_type(home: Path, system_file: Path) -> None:
    env = {
        "ENGENHO_CONTROLLERS__GARBAGE_COLLECTOR__ENABLED": "off",
        "ENGENHO_CONTROLLERS__GARBAGE_COLLECTOR__WORKERS": "3",
        "ENGENHO_CONTROLLERS__JOB__RESYNC_INTERVAL_SECONDS": "",
        "ENGENHO_REPLICATION__HEARTBEAT_INTERVAL_SECONDS": "0.05",
        "ENGENHO_SCHEDULER__PROFILES": "default-scheduler, batch",
        "ENGENHO_NODE_AGENT__HOST_PATH_ALLOWLIST": "",
        "ENGENHO_SERVER__TLS__CERT_FILE": "/etc/tls/cert.pem",
        "ENGENHO_SERVER__TLS__KEY_FILE": "/etc/tls/key.pem",
        "ENGENHO_NODE_AGENT__RUNTIME": "oci",
        "ENGENHO_UNRELATED_SETTING": "ignored",
    }
    config = resolve(home, system_file, env=env).config
    assert config.controller_enabled("garbage-collector") is False
    assert config.controllers["garbage-collector"].workers == 3
    assert config.controllers["job"].resync_interval_seconds is None
    assert config.replication.heartbeat_interval_seconds == 0.05
    assert config.scheduler.profiles == ("default-scheduler", "batch")
    assert config.node_agent.host_path_allowlist == ()
    assert config.server.tls.cert_file == Path("/etc/tls/cert.pem")
    assert config.node_agent.runtime.value == "oci"


def test_a_list_from_a_higher_tier_replaces_the_lower_one(
    home: Path, system_file: Path, tmp_path: Path
) -> None:
    file = write(tmp_path / "e.yaml", {"scheduler": {"profiles": ["a", "b"]}})
    env = {"ENGENHO_SCHEDULER__PROFILES": "c"}
    assert resolve(home, system_file, env=env, config_file=file).config.scheduler.profiles == ("c",)


def test_variable_names() -> None:
    assert variable_for("networking.service_cidr") == "ENGENHO_NETWORKING__SERVICE_CIDR"
    assert (
        variable_for("controllers.garbage-collector.enabled")
        == "ENGENHO_CONTROLLERS__GARBAGE_COLLECTOR__ENABLED"
    )


@pytest.mark.parametrize(
    ("name", "value", "path"),
    [
        ("ENGENHO_REPLICATION__CONTROL_PLANE_SIZE", "three", "replication.control_plane_size"),
        ("ENGENHO_CONTROLLERS__JOB__ENABLED", "maybe", "controllers.job.enabled"),
        ("ENGENHO_NETWORKING__SERVICE_CIDR", "10.96.0.1/12", "networking.service_cidr"),
        ("ENGENHO_NETWORKING__SERVICE_CIDRS", "10.96.0.0/12", "networking.service_cidrs"),
        ("ENGENHO_NETWORK__SERVICE_CIDR", "10.96.0.0/12", "network.service_cidr"),
        ("ENGENHO_NETWORKING_SERVICE_CIDR", "10.96.0.0/12", "networking"),
        ("ENGENHO_SERVER__TLS", "on", "server.tls"),
        ("ENGENHO_SERVER__LISTEN__PORT", "1", "server.listen.port"),
        ("ENGENHO_CONTROLLERS__JOBS__ENABLED", "true", "controllers.jobs.enabled"),
        ("ENGENHO_CONTROLLERS", "x", "controllers"),
    ],
)
def test_environment_variables_are_refused_with_their_name(
    home: Path, system_file: Path, name: str, value: str, path: str
) -> None:
    assert (path, f"env {name}") in refused(home, system_file, env={name: value})


def test_derived_cluster_dns_follows_the_service_range(
    home: Path, system_file: Path, tmp_path: Path
) -> None:
    file = write(tmp_path / "a.yaml", {"networking": {"service_cidr": "10.100.0.0/16"}})
    resolved = resolve(home, system_file, config_file=file)
    assert str(resolved.config.networking.cluster_dns) == "10.100.0.10"
    assert resolved.source("networking.cluster_dns").tier is Tier.DEFAULT
    assert "tenth address" in resolved.source("networking.cluster_dns").origin
    explicit = write(
        tmp_path / "b.yaml",
        {"networking": {"service_cidr": "10.100.0.0/16", "cluster_dns": "10.100.0.53"}},
    )
    assert str(resolve(home, system_file, config_file=explicit).config.networking.cluster_dns) == (
        "10.100.0.53"
    )


def test_flags_from_the_command_line(home: Path, system_file: Path, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    assert config_flags(parser.parse_args([])) == {}
    args = parser.parse_args(
        ["--data-dir", str(tmp_path / "d"), "--listen", "[::1]:6443", "--runtime", "none"]
    )
    flags = config_flags(args)
    assert flags == {
        "server.data_dir": tmp_path / "d",
        "server.listen": "[::1]:6443",
        "node_agent.runtime": "none",
    }
    resolved = resolve(home, system_file, flags=flags)
    assert resolved.config.server.data_dir == tmp_path / "d"
    assert resolved.config.server.listen == ListenAddress("::1", 6443)
    assert resolved.source("server.data_dir") == Source(Tier.FLAG, "--data-dir")
    assert refused(home, system_file, flags={"server.listen": "nowhere"}) == [
        ("server.listen", "flag --listen")
    ]


def test_problems_name_the_tier_that_supplied_the_value(
    home: Path, system_file: Path, tmp_path: Path
) -> None:
    file = write(tmp_path / "e.yaml", {"networking": {"cluster_dns": "10.244.0.10"}})
    found = refused(home, system_file, config_file=file, env={"ENGENHO_AUDIT__BOGUS": "1"})
    assert found == [
        ("audit.bogus", "env ENGENHO_AUDIT__BOGUS"),
        ("networking.cluster_dns", f"file {file}"),
    ]


def test_the_controller_catalogue_is_a_parameter(
    home: Path, system_file: Path, tmp_path: Path
) -> None:
    file = write(tmp_path / "c.yaml", {"controllers": {"widget": {"workers": 7}}})
    assert refused(home, system_file, config_file=file) == [("controllers.widget", f"file {file}")]
    catalogue = [ControllerSpec("widget", workers=2), ControllerSpec("gadget", workers=1)]
    resolved = resolve(home, system_file, config_file=file, controllers=catalogue)
    assert sorted(resolved.config.controllers) == ["gadget", "widget"]
    assert resolved.config.controllers["widget"].workers == 7
    env = {"ENGENHO_CONTROLLERS__GADGET__ENABLED": "false"}
    config = resolve(home, system_file, env=env, controllers=catalogue).config
    assert not config.controller_enabled("gadget")


def test_validate_config_file_ignores_the_environment(home: Path, tmp_path: Path) -> None:
    file = write(tmp_path / "v.yaml", {"cluster": {"name": "checked"}})
    env = {"HOME": str(home), "ENGENHO_CLUSTER__NAME": "Not Valid"}
    resolved = validate_config_file(file, env=env, hostname="h")
    assert resolved.config.cluster.name == "checked"
    assert resolved.through is Tier.FILE
