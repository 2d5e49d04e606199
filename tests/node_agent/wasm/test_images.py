"""Which module a wasm container runs, and the compile cache: an ordinary image (tar layers,
imported with ``engenho image import``) whose Entrypoint names a ``.wasm`` file or which holds
just one, with its tree preopened read-only as ``/``; refusals at create time (no module, a
native program, an invalid module, a WASI preview 2 component) with clear messages; a module
compiled once per digest, and a damaged cache entry recompiled by the shim."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engenho.cli import main
from engenho.node_agent.images import ImageStore
from engenho.node_agent.logs import parse_record
from engenho.node_agent.runtime import (
    ContainerConfig,
    CreateContainerError,
    SandboxStatus,
)
from engenho.node_agent.runtimes.wasm import WasmRuntime
from tests.node_agent.images.archives import digest, layer, manifest_for, oci_archive
from tests.node_agent.runtimes.contract import log_path, sandbox_config

from . import modules
from .conftest import import_module

_TAR = "application/vnd.oci.image.layer.v1.tar"


def import_tar_image(
    data_dir: Path, tag: str, files: dict[str, bytes], config: dict[str, Any]
) -> None:
    """An oci-archive of one tar layer holding ``files``, imported with ``engenho image
    import --tag``."""
    tree = layer(files)
    document = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [digest(tree)]},
        }
    ).encode()
    manifest = manifest_for(document, [tree], media=_TAR)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest(manifest),
                "size": len(manifest),
            }
        ],
    }
    archive = data_dir.parent / f"{tag.replace(':', '-')}.tar"
    oci_archive(archive, [tree, document, manifest], index)
    assert main(["image", "import", "--data-dir", str(data_dir), "--tag", tag, str(archive)]) == 0


@pytest.fixture
async def sandbox(runtime: WasmRuntime, tmp_path: Path) -> SandboxStatus:
    return await runtime.create_sandbox(sandbox_config(tmp_path))


def stdout(path: Path) -> list[str]:
    records = [parse_record(line) for line in path.read_bytes().splitlines()]
    return [r.content.decode() for r in records if r.stream == "stdout"]


async def run(runtime: WasmRuntime, sandbox: SandboxStatus, config: ContainerConfig) -> int:
    created = await runtime.create_container(sandbox.id, config)
    await runtime.start_container(created.id)
    done = await runtime.wait_container(created.id)
    assert done.exit_code is not None
    return done.exit_code


async def test_an_ordinary_image_whose_entrypoint_names_a_module(
    runtime: WasmRuntime, sandbox: SandboxStatus, tmp_path: Path, wasm_data: Path
) -> None:
    import_tar_image(
        wasm_data,
        "wasm-in-tar:1",
        {
            "app/reader.wasm": modules.compile_wat(modules.READER),
            "etc/motd": b"from the image\n",
        },
        {"Entrypoint": ["/app/reader.wasm"], "Cmd": ["/", "etc/motd"]},
    )
    config = ContainerConfig("tar", "wasm-in-tar:1", log_path(tmp_path))
    assert await run(runtime, sandbox, config) == 0
    # The image's tree is "/", read-only (every container of the image shares it).
    assert stdout(config.log_path) == ["from the image", "write refused"]


async def test_an_image_holding_one_module_runs_it_without_a_command(
    runtime: WasmRuntime, sandbox: SandboxStatus, tmp_path: Path, wasm_data: Path
) -> None:
    import_tar_image(
        wasm_data,
        "lone-module:1",
        {"srv/hello.wasm": modules.compile_wat(modules.HELLO), "srv/readme": b"x"},
        {},
    )
    config = ContainerConfig("lone", "lone-module:1", log_path(tmp_path))
    assert await run(runtime, sandbox, config) == 0
    assert stdout(config.log_path) == ["hello"]
    # The command can also name it relative to the working directory, with an entry point.
    config = ContainerConfig(
        "named",
        "lone-module:1",
        log_path(tmp_path, "named"),
        command=("hello.wasm#_start", "4"),
        working_dir="/srv",
    )
    assert await run(runtime, sandbox, config) == 4


@pytest.mark.parametrize(
    ("files", "config", "message"),
    [
        ({"bin/sh": b"\x7fELF..."}, {"Entrypoint": ["/bin/sh"]}, "is not a WebAssembly module"),
        ({"readme": b"x"}, {}, "has no WebAssembly module to run"),
        (
            {"a.wasm": b"\0asm\x01\0\0\0", "b.wasm": b"\0asm\x01\0\0\0"},
            {},
            "several .wasm files (/a.wasm, /b.wasm)",
        ),
    ],
    ids=["native", "none", "several"],
)
async def test_images_without_a_module_to_run_are_refused(
    runtime: WasmRuntime,
    sandbox: SandboxStatus,
    tmp_path: Path,
    wasm_data: Path,
    files: dict[str, bytes],
    config: dict[str, Any],
    message: str,
) -> None:
    tag = f"refused-{len(files)}-{len(config)}:1"
    import_tar_image(wasm_data, tag, files, config)
    with pytest.raises(CreateContainerError) as refused:
        await runtime.create_container(sandbox.id, ContainerConfig("x", tag, log_path(tmp_path)))
    assert message in refused.value.message
    assert await runtime.list_containers() == []


async def test_invalid_modules_and_components_are_refused_at_create(
    runtime: WasmRuntime, sandbox: SandboxStatus, tmp_path: Path, wasm_data: Path
) -> None:
    import_module(wasm_data, "broken", b"\0asm\x01\0\0\0garbage", "broken:1")
    with pytest.raises(CreateContainerError) as broken:
        await runtime.create_container(
            sandbox.id, ContainerConfig("x", "broken:1", log_path(tmp_path))
        )
    assert broken.value.message.startswith(
        "broken.wasm in image 'broken:1' is not a valid WebAssembly module: "
    )
    import_module(wasm_data, "component", b"\0asm\x0d\0\x01\0", "component:1")
    with pytest.raises(CreateContainerError) as component:
        await runtime.create_container(
            sandbox.id, ContainerConfig("x", "component:1", log_path(tmp_path))
        )
    assert "is a WebAssembly component (WASI preview 2)" in component.value.message


async def test_modules_are_compiled_once_and_a_damaged_cache_is_rebuilt(
    runtime: WasmRuntime, sandbox: SandboxStatus, tmp_path: Path, wasm_store: ImageStore
) -> None:
    assert list(runtime.cache.iterdir()) == []
    first = ContainerConfig("one", "hello:1", log_path(tmp_path, "one"))
    assert await run(runtime, sandbox, first) == 0
    (entry,) = runtime.cache.iterdir()
    image = wasm_store.resolve("hello:1")
    assert entry.name.startswith(image.manifest.layers[0].hex)
    before = entry.stat()
    second = ContainerConfig("two", "hello:1", log_path(tmp_path, "two"))
    assert await run(runtime, sandbox, second) == 0
    after = entry.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    entry.write_bytes(b"not a compiled module")
    third = ContainerConfig("three", "hello:1", log_path(tmp_path, "three"))
    assert await run(runtime, sandbox, third) == 0
    assert stdout(third.log_path) == ["hello"]
    assert entry.stat().st_size == before.st_size  # the shim compiled and cached it again
