"""Run benchmarks: ``python -m benchmarks [NAME ...]``.

Every module ``benchmarks/bench_<name>.py`` defines ``main(quick: bool) -> None`` and prints its
own figures. Benchmarks report ratios measured in the same run (for example API creates/s
against raw log appends/s), because absolute figures on shared machines are noisy.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import time

import benchmarks


def main() -> None:
    names = sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules(benchmarks.__path__)
        if m.name.startswith("bench_")
    )
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", choices=[*names, []], metavar="NAME", help=str(names))
    parser.add_argument("--quick", action="store_true", help="smaller workloads (smoke test)")
    args = parser.parse_args()
    for name in args.names or names:
        started = time.perf_counter()
        print(f"== {name} ==")
        importlib.import_module(f"benchmarks.bench_{name}").main(quick=args.quick)
        print(f"== {name}: {time.perf_counter() - started:.1f} s ==\n")


if __name__ == "__main__":
    main()
