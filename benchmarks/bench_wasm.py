"""wasm container start latency, cold (the module compiled at create) against cached (the
compiled module loaded from the runtime's cache), through the ContainerRuntime protocol.

Two modules: ``hello`` (1 KiB of WAT's output: prints a line and exits) and a synthetic
``large`` one (a few thousand functions, so that compiling costs what it does for a real
program). Each cold sample is a module of its own (a different constant makes a different
digest, so nothing is cached); each cached sample runs an image whose module was compiled
before. Reported per phase: ``create`` (image lookup, compile or cache hit, the shim's
configuration), ``start`` (the shim process: Python start-up, wasmtime import, loading the
compiled module, instantiating; returns once the module runs) and ``exit`` (start returned
→ exit seen: the module's run and the exit report).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
import wasmtime
from rich.console import Console
from rich.table import Table

from engenho.node_agent.images import ImageStore, import_wasm
from engenho.node_agent.runtime import ContainerConfig, SandboxConfig
from engenho.node_agent.runtimes.wasm import WasmRuntime

console = Console()


def _hello(variant: int) -> bytes:
    return bytes(
        wasmtime.wat2wasm(
            f"""
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello\\n")
  (global $variant i32 (i32.const {variant}))
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""
        )
    )


def _large(variant: int, functions: int) -> bytes:
    """Functions with loops and arithmetic, chained so that none is dead code."""
    body = []
    for n in range(functions):
        callee = f"(call $f{n + 1} (local.get $x))" if n + 1 < functions else "(local.get $x)"
        body.append(
            f"""
  (func $f{n} (param $x i32) (result i32) (local $i i32) (local $acc i32)
    (local.set $acc (i32.const {variant + n}))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $x)))
        (local.set $acc
          (i32.xor (i32.mul (local.get $acc) (i32.const 31)) (i32.add (local.get $i) {callee})))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $acc))"""
        )
    source = f"""
(module
  (memory (export "memory") 1)
  {"".join(body)}
  (func (export "_start") (drop (call $f0 (i32.const 0)))))
"""
    return bytes(wasmtime.wat2wasm(source))


async def _sample(
    runtime: WasmRuntime, sandbox: str, image: str, log: Path
) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    created = await runtime.create_container(sandbox, ContainerConfig("app", image, log))
    t1 = time.perf_counter()
    await runtime.start_container(created.id)
    t2 = time.perf_counter()
    done = await runtime.wait_container(created.id)
    t3 = time.perf_counter()
    assert done.exit_code == 0, done
    await runtime.remove_container(created.id)
    return (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000


async def measure(root: Path, samples: int, functions: int) -> list[dict[str, Any]]:
    store = ImageStore(root / "data" / "images")
    runtime = WasmRuntime(root / "data", store=store)
    await runtime.open()
    sandbox = await runtime.create_sandbox(SandboxConfig("bench", "default", "uid", "bench"))
    results = []
    try:
        for kind in ("hello", "large"):
            size = 0
            timings: dict[str, list[tuple[float, float, float]]] = {"cold": [], "cached": []}
            for n in range(samples):
                wasm = _hello(n) if kind == "hello" else _large(n, functions)
                size = len(wasm)
                module = root / f"{kind}.wasm"
                module.write_bytes(wasm)
                import_wasm(store, module, tag=f"{kind}-{n}:1")
                logs = root / "logs" / kind
                image = f"{kind}-{n}:1"
                timings["cold"].append(await _sample(runtime, sandbox.id, image, logs / f"{n}c"))
                timings["cached"].append(await _sample(runtime, sandbox.id, image, logs / f"{n}w"))
            for cache, rows in timings.items():
                results.append(
                    {
                        "module": kind,
                        "bytes": size,
                        "cache": cache,
                        **{
                            phase: statistics.median(row[i] for row in rows)
                            for i, phase in enumerate(("create", "start", "exit"))
                        },
                        "total": statistics.median(sum(row) for row in rows),
                    }
                )
    finally:
        await runtime.remove_sandbox(sandbox.id)
        await runtime.close()
    return results


def main(quick: bool) -> None:
    samples, functions = (5, 500) if quick else (15, 3000)
    with tempfile.TemporaryDirectory() as tmp:
        results = uvloop.run(measure(Path(tmp), samples, functions))
    table = Table(title=f"wasm container start, median of {samples} (ms)")
    for column in ("module", "bytes", "cache", "create", "start", "exit", "total"):
        table.add_column(column, justify="left" if column in ("module", "cache") else "right")
    for result in results:
        print(json.dumps(result), flush=True)
        table.add_row(
            result["module"],
            str(result["bytes"]),
            result["cache"],
            *(f"{result[key]:.1f}" for key in ("create", "start", "exit", "total")),
        )
    console.print(table)
