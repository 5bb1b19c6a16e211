"""`flywheel bench calibration`: fleet.bench_calibration's figures on simulated units, plus the detector's
recall on the fleet simulator with and without calibration.

The same held-out eval units and seed are simulated twice: units that calibrated at first boot
(runtime.calibration through fleet/calibration_hal.py: carrier and lowest sufficient level) and units
on the factory heuristic (simulate.calibration.enabled false: a carrier within 3 dB of the unit's
loudest, the factory level). The detector is the last turn's bundle (calibration.bench.detector
.bundles), run through training.evaluate with the issue's counting rules; without a bundle, these
keys are reported as not measured rather than made up from a model trained for the occasion.
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path
from typing import Any

from flows.bench_models import bench_section, bundle_model

RATES = ("recall", "recall_major", "recall_minor", "false_alarms_per_hour", "false_present_fraction")


def detector_recall(params: dict, quick: bool = False) -> dict[str, Any]:
    """Recall and false alarms of the bundle's detector on calibrated vs factory-default units."""
    from fleet.simulate import simulate_batch
    from training.evaluate import evaluate_with, pipeline_decide

    b = bench_section(params["calibration"]["bench"]["detector"], quick)
    det = bundle_model(params, b["bundles"])
    if det is None:
        return {"not_measured": {"recall_detector_calibrated": "no bundle: run a turn first"}}
    started = time.perf_counter()
    decide, fs = pipeline_decide(det.model, det.frontend, det.detector)
    out: dict[str, Any] = {"detector": det.description}
    with tempfile.TemporaryDirectory(prefix="bench-calibration-") as tmp:
        for name, enabled in (("calibrated", True), ("uncalibrated", False)):
            sim = copy.deepcopy(params["simulate"])
            sim["calibration"]["enabled"] = enabled
            raw, truth = Path(tmp) / "raw" / name, Path(tmp) / "truth" / name
            simulate_batch(
                "eval", int(b["devices"]), float(b["hours"]), int(b["seed"]), raw, truth,
                sim_params=sim, calibration=params["calibration"]["config"],
            )  # fmt: skip
            metrics, _ = evaluate_with(decide, raw, truth, fs)
            for key in RATES:
                out[f"{key}_{name}"] = metrics[key]
    out["setup"] = (
        f"{int(b['devices'])} held-out eval units x {float(b['hours']):g} h, seed {int(b['seed'])}, "
        "the same plan with calibrated and factory-default units"
    )
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def run_bench(params: dict, quick: bool = False) -> dict[str, Any]:
    from fleet.bench_calibration import run_bench as units_bench

    figures = units_bench(params, quick=quick)
    fleet = detector_recall(params, quick=quick)
    figures["fleet_detector"] = fleet
    if "recall_calibrated" in fleet:  # presence events of every motion class
        figures["recall_detector_calibrated"] = fleet["recall_calibrated"]
        figures["recall_detector_uncalibrated"] = fleet["recall_uncalibrated"]
    return figures
