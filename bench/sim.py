"""`flywheel bench sim`: 4-mic baseband rendering speed and a streamed field batch's peak memory.

run_bench(params, quick) measures (never asserts):
- device_seconds_per_cpu_second: full 4-mic rendering of a field-like day (every capture rendered
  on every mic, no upload policy shortcuts), CPU time of this process;
- eval_mix_device_seconds_per_cpu_second: the same for the busy eval timeline;
- field_batch_*: simulate_batch('field', ...) of bench.sim.batch (24 device-hours; quick: 0.2) streamed
  to a temp folder, with its wall/CPU time and the process's peak RSS.

Sizes and seeds: params.yaml bench.sim (`quick` overrides for --quick).
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.models import bench_section
from fleet.config import sim_section
from fleet.scenes import DeviceScene
from fleet.simulate import fleet_unit, simulate_batch
from fleet.timeline import plan


def _peak_rss_mb() -> float:
    """Peak RSS of this process or of any (worker) child, MiB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def render_rate(sim: dict, preset: str, seconds: float, seed: int = 0) -> float:
    """Device-seconds of full 4-mic baseband rendered per CPU-second for a `preset` timeline."""
    fs, capture_s = float(sim["fs_hz"]), float(sim["capture_s"])
    n = round(fs * capture_s)
    done, cpu = 0.0, 0.0
    i = 0
    while done < seconds:
        dev, room = fleet_unit(preset, i, sim)
        if dev.n_mics != 4:
            i += 1
            continue
        rng = np.random.default_rng([seed, i])
        chunks = max(1, round(min(seconds - done, 3600.0) / capture_s))
        scene = DeviceScene(dev, room, plan(preset, chunks * capture_s, rng, room, sim).events, fs, seed)
        c0 = time.process_time()
        for c in range(chunks):
            scene.render(c, n)
        cpu += time.process_time() - c0
        done += chunks * capture_s
        i += 1
    return done / max(cpu, 1e-9)


def run_bench(params: dict, quick: bool = False) -> dict:
    """Rendering rates of the field and eval mixes and one streamed field batch (see the docstring)."""
    sim = sim_section(params)
    b = bench_section(params["bench"]["sim"], quick)
    render_s = float(b["render_s"])
    out = {
        "quick": quick,
        "device_seconds_per_cpu_second": render_rate(sim, "field", render_s),
        "eval_mix_device_seconds_per_cpu_second": render_rate(
            sim, "eval", render_s * float(b["eval_render_share"])
        ),
    }
    devices, hours = int(b["batch"]["devices"]), float(b["batch"]["hours"])
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        rss0 = _peak_rss_mb()
        w0 = time.perf_counter()
        summary = simulate_batch(
            "field", devices, hours, int(b["batch"]["seed"]),
            Path(tmp) / "raw" / "b", Path(tmp) / "truth" / "b", sim_params=sim,
        )  # fmt: skip
        out.update(
            field_batch_device_hours=devices * hours,
            field_batch_cpu_s=summary["cpu_s"],  # summed over the worker processes
            field_batch_workers=summary["workers"],
            field_batch_wall_s=time.perf_counter() - w0,
            field_batch_device_seconds_per_cpu_second=summary["device_seconds_per_cpu_second"],
            field_batch_upload_fraction=summary["upload_fraction"],
            field_batch_captures=summary["n_captures"],
            peak_rss_mb=_peak_rss_mb(),
            peak_rss_before_batch_mb=rss0,
        )
    return out
