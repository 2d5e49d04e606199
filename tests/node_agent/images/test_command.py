"""``engenho image``: build the busybox archive, import it and a docker-archive and a wasm
module into a data directory, list them as crictl does, remove one; refusals exit 1 with the
reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engenho.cli import main
from engenho.commands.image import human_size
from engenho.node_agent.images import ImageStore
from tests.node_agent.images.archives import docker_archive, layer


def test_build_import_list_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).exists():
        pytest.skip("busybox-static is not installed (make test installs it)")
    data = str(tmp_path / "data")
    archive = tmp_path / "busybox.tar"
    assert main(["image", "build-busybox", "--output", str(archive), "--busybox", busybox]) == 0
    assert main(["image", "import", "--data-dir", data, str(archive)]) == 0
    out = capsys.readouterr().out
    assert "imported docker.io/library/busybox:latest sha256:" in out
    assert "oci-archive: 3 new blob(s)" in out

    saved = tmp_path / "saved.tar"
    docker_archive(saved, [layer({"x": b"x"})], ["example.com/app:2"])
    assert main(["image", "import", "--data-dir", data, str(saved)]) == 0
    module = tmp_path / "hello.wasm"
    module.write_bytes(b"\0asm\x01\0\0\0")
    assert (
        main(["image", "import", "--data-dir", data, "--wasm", str(module), "--tag", "hello:1"])
        == 0
    )
    capsys.readouterr()

    assert main(["image", "list", "--data-dir", data]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "DIGEST", "SIZE"]
    rows = [line.split() for line in lines[1:]]
    assert [row[:2] for row in rows] == [
        ["docker.io/library/busybox", "latest"],
        ["docker.io/library/hello", "1"],
        ["example.com/app", "2"],
    ]
    store = ImageStore(tmp_path / "data" / "images")
    assert rows[0][2] == store.resolve("busybox").manifest_digest[7:19]
    assert rows[0][3] == human_size(store.resolve("busybox").size)

    assert main(["image", "remove", "--data-dir", data, "hello:1"]) == 0
    assert store.find("hello:1") is None
    assert main(["image", "remove", "--data-dir", data, "hello:1"]) == 1
    assert "not in the local image store" in capsys.readouterr().err


def test_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"junk")
    assert main(["image", "import", "--data-dir", data, str(junk)]) == 1
    assert "import failed" in capsys.readouterr().err
    module = tmp_path / "m.wasm"
    module.write_bytes(b"\0asm")
    assert main(["image", "import", "--data-dir", data, "--wasm", str(module)]) == 2
    assert "--wasm needs --tag" in capsys.readouterr().err
    assert main(["image", "import", "--data-dir", data]) == 2


def test_human_size_is_go_units() -> None:
    assert human_size(0) == "0B"
    assert human_size(999) == "999B"
    assert human_size(1_032_421) == "1.032MB"
    assert human_size(2_230_000_000) == "2.23GB"
