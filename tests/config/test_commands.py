"""The ``engenho cluster-config`` and ``engenho config`` commands: exit codes, what they print,
the files ``render`` writes, and byte-identical renders across processes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engenho.cli import main
from engenho.config import example_cluster_config, parse_cluster_config


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("ENGENHO_", "XDG_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


def write_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["cluster-config", "example"]) == 0
    path = tmp_path / "cluster.yaml"
    path.write_text(capsys.readouterr().out)
    return path


def test_example_prints_a_valid_config_in_yaml_and_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["cluster-config", "example"]) == 0
    assert parse_cluster_config(yaml.safe_load(capsys.readouterr().out)) == example_cluster_config()
    assert main(["cluster-config", "example", "-o", "json"]) == 0
    assert parse_cluster_config(json.loads(capsys.readouterr().out)) == example_cluster_config()


def test_cluster_config_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_example(tmp_path, capsys)
    assert main(["cluster-config", "validate", str(good)]) == 0
    assert "valid ClusterConfig for cluster homelab" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "cluster-name: Lab\nnode-ip: 10.42.0.3\nnetwork:\n  cni: cilium\n  flannel-backend: vxlan\n"
    )
    assert main(["cluster-config", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: 3 problems" in err
    for path in ("cluster-name:", "node-ip:", "network.flannel-backend:"):
        assert f"\n  {path}" in err
    assert main(["cluster-config", "validate", str(tmp_path / "missing.yaml")]) == 1
    assert "No such file" in capsys.readouterr().err


def test_render_writes_the_k3s_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_example(tmp_path, capsys)
    out = tmp_path / "out"
    assert main(["cluster-config", "render", str(source), "--out", str(out), "--summary-json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["renderer"] == "k3s"
    assert summary["cluster-name"] == "homelab"
    assert summary["node-ip"] == "192.168.10.20"
    paths = [f["path"] for f in summary["files"]]
    assert paths[:2] == ["cmdline.txt", "config.yaml"]
    assert all(p.startswith("manifests/engenho-") for p in paths[2:])
    for entry in summary["files"]:
        content = (out / entry["path"]).read_bytes()
        assert hashlib.sha256(content).hexdigest() == entry["sha256"]
        assert len(content) == entry["bytes"]


def test_render_with_the_engenho_renderer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_example(tmp_path, capsys)
    out = tmp_path / "out"
    assert (
        main(["cluster-config", "render", str(source), "--out", str(out), "--renderer", "engenho"])
        == 0
    )
    captured = capsys.readouterr()
    assert "note: network.cni (cilium) has no engenho equivalent" in captured.err
    assert "wrote 1 files" in captured.err
    assert main(["config", "validate", str(out / "engenho.yaml")]) == 0


def test_an_invalid_config_renders_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster-name: lab\n")
    out = tmp_path / "out"
    assert main(["cluster-config", "render", str(bad), "--out", str(out)]) == 1
    assert "node-ip: required field missing" in capsys.readouterr().err
    assert not out.exists()


def test_renders_are_byte_identical_across_processes(tmp_path: Path) -> None:
    source = tmp_path / "cluster.yaml"
    source.write_text(
        yaml.safe_dump(
            {
                "cluster-name": "det",
                "node-ip": "10.0.0.5",
                "network": {"cni": "calico", "ingress": "nginx"},
                "bootstrap": {"argocd": {"repo": "https://g.example/r"}},
            }
        )
    )
    digests = []
    for seed in ("0", "12345"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "engenho",
                "cluster-config",
                "render",
                str(source),
                "--out",
                str(tmp_path / f"out-{seed}"),
                "--summary-json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=os.environ | {"PYTHONHASHSEED": seed},
        )
        assert done.returncode == 0, done.stderr
        digests.append([(f["path"], f["sha256"]) for f in json.loads(done.stdout)["files"]])
    assert digests[0] == digests[1]


def test_config_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "engenho.yaml"
    file.write_text("cluster:\n  name: shown\nserver:\n  listen: 0.0.0.0:7000\n")
    monkeypatch.setenv("ENGENHO_CONFIG", str(file))
    monkeypatch.setenv("ENGENHO_SCHEDULER__STRATEGY", "most_allocated")
    assert main(["config", "show", "-o", "json", "--listen", "0.0.0.0:9000"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["file"] == str(file)
    assert shown["config"]["cluster"]["name"] == "shown"
    assert shown["config"]["server"]["listen"] == "0.0.0.0:9000"
    assert shown["sources"]["server.listen"] == {"tier": "flag", "origin": "--listen"}
    assert shown["sources"]["cluster.name"] == {"tier": "file", "origin": str(file)}
    assert shown["sources"]["scheduler.strategy"] == {
        "tier": "env",
        "origin": "ENGENHO_SCHEDULER__STRATEGY",
    }
    assert main(["config", "show", "--tier", "default"]) == 0
    defaults = yaml.safe_load(capsys.readouterr().out)
    assert defaults["file"] is None
    assert {s["tier"] for s in defaults["sources"].values()} == {"default"}


def test_config_show_refuses_a_bad_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGENHO_SERVER__LISTEN", "localhost")
    assert main(["config", "show"]) == 1
    err = capsys.readouterr().err
    assert "server.listen: 'localhost' is not HOST:PORT (from env ENGENHO_SERVER__LISTEN)" in err


def test_config_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("networking:\n  service_cidr: 10.100.0.0/16\n")
    assert main(["config", "validate", str(good)]) == 0
    assert "valid engenho configuration" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "networking:\n  service-cidr: 10.100.0.0/16\naudit:\n  checkpoint_interval_seconds: 0\n"
    )
    assert main(["config", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "invalid configuration: 2 problems" in err
    assert f"networking.service-cidr: unknown field (from file {bad})" in err
    assert "audit.checkpoint_interval_seconds: 0.0 must be greater than zero" in err
    assert main(["config", "validate", str(tmp_path / "missing.yaml")]) == 1
    assert "no such file" in capsys.readouterr().err
