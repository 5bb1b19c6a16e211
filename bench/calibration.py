"""`flywheel bench calibration`: sweep calibration on simulated units (unit_figures), plus the
detector's recall on the fleet simulator with and without calibration (detector_recall).

Unit figures: each unit takes its loudspeaker response spread (resonance, ripple, roll-off), mic gain, direct
coupling and noise floor from fleet/devices.py, plus a random interferer: none, another device's
tone, or a sweeping pest repeller; it records a silent capture and a sweep (passband, 96 kHz)
through fleet/calibration_hal.py, and runtime.calibration picks carrier and level.

Truth per candidate carrier: SNR at full emission from the true |H| and the true noise in
fc ± 300 Hz; carriers with an interferer within ± 1 kHz are not achievable.
- within_1db_fraction: chosen carrier's true SNR within 1 dB of the best achievable.
- emission_saved_db: mean of (default level − calibrated level), default = the profile's level.
- recall (a detectability proxy, no trained model): people at random range/reflectivity are
  "detected" when their echo over the noise of one Doppler bin reaches the detection need's
  detect_snr_db (runtime.calibration.DetectionNeed, the need the calibration sets its level by:
  one definition) and no interferer sits within ± 1 kHz of the carrier; calibrated = chosen
  carrier and level, uncalibrated = the default carrier and level.

Detector figures: the same held-out eval units and seed are simulated twice: units that calibrated at
first boot (runtime.calibration through fleet/calibration_hal.py: carrier and lowest sufficient level)
and units on the factory heuristic (simulate.calibration.enabled false: a carrier within 3 dB of the unit's
loudest, the factory level). The detector is the last turn's bundle (bench.calibration.detector
.bundles), run through training.evaluate with the issue's counting rules; without a bundle, these
keys are reported as not measured rather than made up from a model trained for the occasion.
Every size and seed is in params.yaml bench.calibration.
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.models import bench_section, bundle_model
from fleet.calibration_hal import (
    UnitAcoustics,
    draw_interferer,
    passband_noise_sigma,
    record,
    unit_acoustics,
)
from runtime.calibration import CalibrationConfig, calibrate, carrier_blocked, exponential_sweep


def draw_unit(profile: str, idx: int, rng: np.random.Generator, bench: dict, fs: float) -> UnitAcoustics:
    """A unit of `profile` with its manufacturing spread and a random interferer in its home."""
    from fleet.devices import make_device

    dev = make_device(profile, f"bench-{idx}", 40000.0, rng)
    itf = draw_interferer(
        rng, bench["interferer_mix"], bench["interferer_snr_db"], passband_noise_sigma(dev, fs), fs
    )
    return unit_acoustics(dev, fs, itf)


def true_snr_db(
    unit: UnitAcoustics, fc: float, emission_db: float, cfg: CalibrationConfig, fs: float
) -> float:
    """True carrier SNR in fc ± halfwidth; −inf where an interferer is within the guard."""
    if unit.interferer is not None and carrier_blocked(fc, [unit.interferer], cfg.interferer_guard_hz):
        return -np.inf
    f = np.linspace(fc - cfg.noise_halfwidth_hz, fc + cfg.noise_halfwidth_hz, 61)
    gain = 10 * np.log10(np.median(10 ** (unit.gain_db(f) / 10)))
    noise = unit.noise_sigma**2 * (2 * cfg.noise_halfwidth_hz) / (fs / 2)
    return float(emission_db - 3.01 + gain - 10 * np.log10(noise))


def recall_proxy(
    unit: UnitAcoustics, fc: float, emission_db: float, cfg: CalibrationConfig, fs: float, people, bench
):
    snr = true_snr_db(unit, fc, emission_db, cfg, fs)
    if not np.isfinite(snr):
        return 0.0
    need = cfg.detection  # the same need the calibration chose its level for (runtime.calibration)
    echo = need.bin_snr_db(snr, cfg.noise_halfwidth_hz, people[:, 0], people[:, 1])
    return float(np.mean(echo >= need.detect_snr_db))


def unit_figures(params: dict, quick: bool = False) -> dict:
    """Carrier choice, emission saved and the recall proxy on simulated units (no trained model)."""
    cal = params["calibration"]
    bench = params["bench"]["calibration"]
    cfg = CalibrationConfig.from_dict(cal["config"])
    fs = cfg.fs_hz
    rng = np.random.default_rng(int(bench["seed"]))
    n_units = int(bench["units_quick" if quick else "units"])
    sweep, _ = exponential_sweep(cfg)
    silence = np.zeros(int(cfg.silent_s * fs))
    profiles = list(bench["profiles"])
    within, saved, rec_cal, rec_unc, blocked_default, t_cal = [], [], [], [], 0, 0.0
    for i in range(n_units):
        profile = profiles[i % len(profiles)]
        unit = draw_unit(profile, i, rng, bench, fs)
        silent = record(unit, silence, fs, rng)
        swept = record(unit, sweep * 10 ** (cfg.sweep_level_db / 20), fs, rng)
        started = time.perf_counter()
        rec = calibrate(silent, swept, cfg, device_id=f"bench-{i}")
        t_cal += time.perf_counter() - started
        truth = np.array([true_snr_db(unit, fc, cfg.emission_max_db, cfg, fs) for fc in cfg.candidates_hz])
        chosen = true_snr_db(unit, rec.carrier_hz, cfg.emission_max_db, cfg, fs)
        within.append(bool(chosen >= truth.max() - 1.0))
        default_db = float(bench["default_emission_db"][profile])
        saved.append(default_db - rec.emission_db)
        people = np.column_stack(
            [rng.uniform(*bench["person_range_m"], 64), rng.normal(0.0, bench["person_refl_spread_db"], 64)]
        )
        rec_cal.append(recall_proxy(unit, rec.carrier_hz, rec.emission_db, cfg, fs, people, bench))
        rec_unc.append(
            recall_proxy(unit, float(bench["default_carrier_hz"]), default_db, cfg, fs, people, bench)
        )
        blocked_default += int(
            not np.isfinite(true_snr_db(unit, float(bench["default_carrier_hz"]), 0.0, cfg, fs))
        )
    return {
        "units": n_units,
        "within_1db_fraction": float(np.mean(within)),
        "emission_saved_db": float(np.mean(saved)),
        "emission_saved_db_p10": float(np.percentile(saved, 10)),
        "recall_calibrated": float(np.mean(rec_cal)),
        "recall_uncalibrated": float(np.mean(rec_unc)),
        "recall_kind": "proxy (no trained model): echo over one Doppler bin's noise >= detect_snr_db, "
        "no interferer within the guard",
        "required_carrier_snr_db": cfg.required_snr_db,
        "default_carrier_blocked_fraction": blocked_default / n_units,
        "calibration_ms_per_unit": 1000 * t_cal / n_units,
    }


RATES = (  # training.metrics figures compared between calibrated and factory-default units
    "entry_recall",
    "entry_latency_median_s",
    "false_triggers_per_empty_hour",
    "false_absences_per_occupied_hour",
    "empty_present_fraction",
)


def detector_recall(params: dict, quick: bool = False) -> dict[str, Any]:
    """Entry recall, false triggers and false absences of the bundle's detector on calibrated vs
    factory-default units (the same plan, the same people)."""
    from fleet.simulate import simulate_batch
    from training.evaluate import metrics_of, pipeline_decider, run_batch

    b = bench_section(params["bench"]["calibration"]["detector"], quick)
    det = bundle_model(params, b["bundles"])
    if det is None:
        return {"not_measured": {"recall_detector_calibrated": "no bundle: run a turn first"}}
    started = time.perf_counter()
    decider, fs = pipeline_decider([det.model], det.frontend, det.detector)
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
            metrics, _ = metrics_of(run_batch(decider, raw, truth, fs))
            for key in RATES:
                out[f"{key}_{name}"] = metrics[key]
    out["setup"] = (
        f"{int(b['devices'])} held-out eval units x {float(b['hours']):g} h, seed {int(b['seed'])}, "
        "the same plan with calibrated and factory-default units"
    )
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def run_bench(params: dict, quick: bool = False) -> dict[str, Any]:
    """unit_figures with detector_recall's under fleet_detector (and its recall at the top)."""
    figures = unit_figures(params, quick=quick)
    fleet = detector_recall(params, quick=quick)
    figures["fleet_detector"] = fleet
    if "entry_recall_calibrated" in fleet:  # arrivals into an empty room (training.metrics)
        figures["recall_detector_calibrated"] = fleet["entry_recall_calibrated"]
        figures["recall_detector_uncalibrated"] = fleet["entry_recall_uncalibrated"]
    return figures
