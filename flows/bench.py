"""`flywheel bench SUITE`: run a package's benchmark, print its measured figures, return them."""

from __future__ import annotations

import importlib
import platform
import time

from rich.console import Console
from rich.table import Table

SUITES = {
    "sim": "fleet.bench",
    "runtime": "flows.bench_runtime",  # runtime.bench (DSP) + the detector figures on the simulator
    "ingest": "ingest.bench",
    "mining": "mining.bench",
    "model": "training.bench",
    "mbdp": "flows.bench_mbdp",  # runtime.bench_mbdp (DSP) + false alarms during music on the simulator
    "calibration": "flows.bench_calibration",  # units (fleet.bench_calibration) + the detector on the fleet
}


def run_suite(suite: str, params: dict, quick: bool = False) -> dict:
    if suite not in SUITES:
        raise ValueError(f"unknown bench suite {suite!r} (known: {', '.join(SUITES)})")
    module = importlib.import_module(SUITES[suite])
    started = time.perf_counter()
    figures = module.run_bench(params, quick=quick)
    figures["_meta"] = {
        "suite": suite,
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 2),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
    }
    table = Table(title=f"flywheel bench {suite}")
    table.add_column("figure")
    table.add_column("measured", justify="right")
    for key, value in figures.items():
        if key != "_meta":
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console().print(table)
    return figures
