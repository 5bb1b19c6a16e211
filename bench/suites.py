"""`flywheel bench SUITE`: run one suite of bench/, print its measured figures, return them."""

from __future__ import annotations

import importlib
import platform
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

SUITES = {  # the name users type -> the module whose run_bench(params, quick) measures it
    "sim": "bench.sim",
    "runtime": "bench.runtime",
    "ingest": "bench.ingest",
    "mining": "bench.mining",
    "model": "bench.model",
    "mbdp": "bench.mbdp",
    "calibration": "bench.calibration",
    "deploy": "bench.deploy",
    "lab": "bench.lab",
    "scale": "bench.scale",
    "ablation": "bench.ablation",
}


def merged_figures(params: dict, quick: bool, *parts: Callable[..., dict]) -> dict:
    """The figures of every part (a function of params and quick), merged in order into one dict."""
    figures: dict = {}
    for part in parts:
        figures.update(part(params, quick=quick))
    return figures


def run_suite(suite: str, params: dict, quick: bool = False) -> dict:
    """Run `suite` on the whole params dict; its figures plus `_meta` (suite, seconds, machine)."""
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
