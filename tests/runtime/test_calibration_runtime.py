"""Calibration: response estimate, interferer detection and masking, carrier and level choice on a
constructed unit, drift trigger, record round trip."""

import dataclasses
import json

import numpy as np
import pytest
from config_testkit import calibration_config

from deploy.device_calibration import load_record, save_record
from fleet.calibration_hal import UnitAcoustics, record
from runtime.calibration import (
    CalibrationConfig,
    CalibrationRecord,
    DetectionNeed,
    analyse_silence,
    calibrate,
    drift_check,
    estimate_response,
    exponential_sweep,
)

CFG = calibration_config(
    sweep_s=0.1,
    silent_s=0.1,
    candidates_hz=tuple(float(f) for f in range(34000, 46001, 1000)),
    target_snr_db=80.0,
    detection=None,
)
FS = CFG.fs_hz
SIGMA = 1e-5


def peaked_unit(peak_hz: float, interferer: dict | None = None, offset_db: float = 0.0) -> UnitAcoustics:
    """Flat −20 dB response with a +10 dB resonance at peak_hz (Q ≈ 10)."""

    def gain_db(f):
        x = 10 * (f / peak_hz - peak_hz / f)
        return -20.0 + offset_db + 10.0 / (1 + x**2)

    return UnitAcoustics(gain_db_fn=gain_db, delay_s=1e-4, noise_sigma=SIGMA, interferer=interferer)


def captures(unit: UnitAcoustics, seed: int = 0):
    rng = np.random.default_rng(seed)
    sweep, _ = exponential_sweep(CFG)
    silent = record(unit, np.zeros(int(CFG.silent_s * FS)), FS, rng)
    swept = record(unit, sweep * 10 ** (CFG.sweep_level_db / 20), FS, rng)
    return silent, swept


def test_sweep_estimate_recovers_the_response():
    unit = peaked_unit(40000.0)
    _, swept = captures(unit)
    sweep, inverse = exponential_sweep(CFG)
    f, h = estimate_response(swept, sweep * 10 ** (CFG.sweep_level_db / 20), inverse, FS)
    sel = (f > 31000) & (f < 49000)
    err = 20 * np.log10(np.abs(h[sel])) - unit.gain_db(f[sel])
    assert np.median(np.abs(err)) < 0.2


def test_silent_capture_finds_tone_and_sweep():
    tone = {"kind": "tone", "f_lo_hz": 41000.0, "f_hi_hz": 41000.0, "amplitude": 1e-3, "period_s": 1.0}
    rng = np.random.default_rng(1)
    silent = record(peaked_unit(40000.0, tone), np.zeros(9600), FS, rng)
    found = analyse_silence(silent, CFG).interferers
    assert [i["kind"] for i in found] == ["tone"] and found[0]["f_lo_hz"] <= 41000.0 <= found[0]["f_hi_hz"]
    sweep = {"kind": "sweep", "f_lo_hz": 36000.0, "f_hi_hz": 40000.0, "amplitude": 1e-3, "period_s": 0.05}
    found = analyse_silence(record(peaked_unit(40000.0, sweep), np.zeros(9600), FS, rng), CFG).interferers
    assert [i["kind"] for i in found] == ["sweep"]
    assert found[0]["f_lo_hz"] < 36500.0 and found[0]["f_hi_hz"] > 39500.0
    assert analyse_silence(record(peaked_unit(40000.0), np.zeros(9600), FS, rng), CFG).interferers == []


def test_picks_the_resonance_and_the_lowest_sufficient_level():
    rec = calibrate(*captures(peaked_unit(43000.0)), CFG, device_id="u1")
    assert rec.carrier_hz == 43000.0
    noise_db = 10 * np.log10(SIGMA**2 * 2 * CFG.noise_halfwidth_hz / (FS / 2))
    snr_per_db = -3.01 + (-20.0 + 10.0) - noise_db  # SNR at 0 dB emission, true
    needed = CFG.target_snr_db + CFG.margin_db - snr_per_db
    assert rec.emission_db == pytest.approx(needed, abs=0.75)
    assert rec.emission_db % CFG.emission_step_db == 0
    assert rec.snr_db_at_emission >= CFG.target_snr_db + CFG.margin_db - 0.1


def test_an_interferer_on_the_best_carrier_moves_it_and_is_masked():
    tone = {"kind": "tone", "f_lo_hz": 43200.0, "f_hi_hz": 43200.0, "amplitude": 3e-3, "period_s": 1.0}
    rec = calibrate(*captures(peaked_unit(43000.0, tone)), CFG)
    assert abs(rec.carrier_hz - 43200.0) > CFG.interferer_guard_hz
    assert rec.interferers and rec.interferers[0]["kind"] == "tone"
    # the band gain at the interferer is measured from the clean bins only: close to the truth
    truth = 10 * np.log10(np.median(10 ** (peaked_unit(43000.0).gain_db(np.linspace(42700, 43300, 61)) / 10)))
    assert rec.band_gains_db["43000"] == pytest.approx(truth, abs=1.0)


def test_drift_triggers_recalibration():
    cfg = CFG
    rec = calibrate(*captures(peaked_unit(43000.0)), cfg)
    sweep, inverse = exponential_sweep(cfg)
    for offset, expected in ((0.0, False), (-4.0, True)):
        silent, swept = captures(peaked_unit(43000.0, offset_db=offset), seed=5)
        f, h = estimate_response(swept, sweep * 10 ** (cfg.sweep_level_db / 20), inverse, FS)
        check = drift_check(rec, f, h, analyse_silence(silent, cfg), cfg)
        assert check["recalibrate"] is expected
        assert check["drift_db"] == pytest.approx(offset, abs=0.5)


def test_record_round_trips_through_json(tmp_path):
    rec = calibrate(*captures(peaked_unit(40000.0)), CFG, device_id="dev-7")
    save_record(tmp_path / "cal.json", rec)
    back = load_record(tmp_path / "cal.json")
    assert back == rec
    assert back.capture_settings() == {"carrier_hz": rec.carrier_hz, "emission_db": rec.emission_db}
    bad = json.loads((tmp_path / "cal.json").read_text())
    bad["version"] = "other"
    with pytest.raises(ValueError):
        CalibrationRecord.from_dict(bad)


def test_all_candidates_blocked_is_an_error():
    sweep_itf = {"kind": "sweep", "f_lo_hz": 33000.0, "f_hi_hz": 47000.0, "amplitude": 3e-3, "period_s": 0.05}
    with pytest.raises(ValueError, match="blocked"):
        calibrate(*captures(peaked_unit(40000.0, sweep_itf)), CFG)


NEED = DetectionNeed(
    echo_1m_db=-30.0,
    air_db_per_m=1.3,
    max_range_m=5.0,
    reflectivity_margin_db=5.0,
    detect_snr_db=21.0,
    doppler_bin_hz=23.4,
)


def test_the_level_is_chosen_for_what_the_detector_needs():
    cfg = dataclasses.replace(CFG, target_snr_db=None, detection=NEED)
    required = cfg.required_snr_db
    # a weak reflector at the farthest range promised gets exactly detect_snr_db in its Doppler bin
    at_edge = NEED.bin_snr_db(
        required, cfg.noise_halfwidth_hz, NEED.max_range_m, -NEED.reflectivity_margin_db
    )
    assert abs(at_edge - NEED.detect_snr_db) < 1e-9
    # nearer people get more; asking for a farther range asks for more carrier SNR
    assert NEED.bin_snr_db(required, cfg.noise_halfwidth_hz, 1.0) > at_edge + 30
    farther = dataclasses.replace(NEED, max_range_m=6.0)
    assert farther.required_carrier_snr_db(cfg.noise_halfwidth_hz) > required + 3
    # the chosen level reaches the need (plus the margin) whenever the emission range allows it
    rec = calibrate(*captures(peaked_unit(40000.0)), cfg)
    assert rec.snr_db_at_emission >= required + cfg.margin_db - 1.0 or rec.emission_db == cfg.emission_max_db


def test_a_target_or_a_need_but_not_both():
    with pytest.raises(ValueError, match="exactly one"):
        dataclasses.replace(CFG, detection=NEED)
    with pytest.raises(ValueError, match="exactly one"):
        dataclasses.replace(CFG, target_snr_db=None)
    # calibration.json written before the need existed carries a target and still loads
    old = {k: v for k, v in CFG.to_dict().items() if k != "detection"}
    assert CalibrationConfig.from_dict(old).required_snr_db == 80.0
    new = dataclasses.replace(CFG, target_snr_db=None, detection=NEED)
    assert CalibrationConfig.from_dict(new.to_dict()) == new
