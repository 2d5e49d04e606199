"""Fixtures for the wasm runtime tests: the test modules (``modules.py``), compiled from WAT
once per session and imported with the real ``engenho image import --wasm`` into a shared
data directory, and a runtime per test over that image store (its own state and compile
cache), which removes what is left running when the test ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engenho.cli import main
from engenho.node_agent.images import ImageStore
from engenho.node_agent.runtimes.wasm import WasmRuntime

from . import modules

IMAGES = {
    "hello": modules.HELLO,
    "echo": modules.ECHO,
    "reader": modules.READER,
    "ticker": modules.TICKER,
    "sleeper": modules.SLEEPER,
    "trap": modules.TRAP,
    "grower": modules.GROWER,
    "missing-import": modules.MISSING_IMPORT,
}
"""Image ``NAME:1`` holds module ``NAME.wasm``."""


def import_module(data_dir: Path, name: str, wasm: bytes, tag: str) -> None:
    """``engenho image import --wasm`` of ``wasm`` saved as ``NAME.wasm``."""
    source = data_dir.parent / "modules" / f"{name}.wasm"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(wasm)
    argv = ["image", "import", "--data-dir", str(data_dir), "--wasm", str(source), "--tag", tag]
    assert main(argv) == 0


@pytest.fixture(scope="session")
def wasm_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("wasm-images") / "data"
    for name, source in IMAGES.items():
        import_module(data, name, modules.compile_wat(source), f"{name}:1")
    return data


@pytest.fixture(scope="session")
def wasm_store(wasm_data: Path) -> ImageStore:
    return ImageStore(wasm_data / "images")


@pytest.fixture
async def runtime(tmp_path: Path, wasm_store: ImageStore) -> AsyncIterator[WasmRuntime]:
    runtime = WasmRuntime(tmp_path / "data", store=wasm_store)
    await runtime.open()
    try:
        yield runtime
    finally:
        for container in await runtime.list_containers():
            await runtime.remove_container(container.id)
        await runtime.close()
