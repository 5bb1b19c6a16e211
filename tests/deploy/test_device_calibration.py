"""Calibration on the device: first calibration persisted, kept on a clean probe, redone on drift."""

from __future__ import annotations

import json

import numpy as np
import pytest
from config_testkit import calibration_config

from deploy.device_calibration import (
    RECORD_FILE,
    bundle_calibration_config,
    calibrate_device,
    calibration_status,
    load_record,
)
from fleet.calibration_hal import SimulatedCalibrationHal, UnitAcoustics

CFG = calibration_config(
    sweep_s=0.1, silent_s=0.1, candidates_hz=tuple(float(f) for f in range(34000, 46001, 1000))
)


def hal(offset_db: float = 0.0, interferer: dict | None = None, seed: int = 0) -> SimulatedCalibrationHal:
    """A unit whose response peaks at 41 kHz; offset_db moves the whole response (drift)."""

    def gain_db(f):
        x = 10 * (f / 41000.0 - 41000.0 / f)
        return -20.0 + offset_db + 10.0 / (1 + x**2)

    return SimulatedCalibrationHal(UnitAcoustics(gain_db, 1e-4, 1e-5, interferer), seed)


def test_first_calibration_is_persisted_and_shown_in_status(tmp_path):
    out = calibrate_device(tmp_path, hal(), CFG)
    assert out["action"] == "calibrated" and out["carrier_hz"] == 41000.0
    record = load_record(tmp_path / RECORD_FILE)
    assert record.carrier_hz == 41000.0 and record.emission_db == out["emission_db"]
    assert calibration_status(tmp_path)["carrier_hz"] == 41000.0


def test_clean_probe_keeps_the_record(tmp_path):
    calibrate_device(tmp_path, hal(seed=1), CFG)
    before = (tmp_path / RECORD_FILE).read_bytes()
    out = calibrate_device(tmp_path, hal(seed=2), CFG)
    assert out["action"] == "kept" and abs(out["drift_db"]) < CFG.drift_db
    assert (tmp_path / RECORD_FILE).read_bytes() == before


def test_drifted_response_is_recalibrated_at_a_new_level(tmp_path):
    first = calibrate_device(tmp_path, hal(), CFG)
    out = calibrate_device(tmp_path, hal(offset_db=-6.0), CFG)
    assert out["action"] == "recalibrated" and "drifted" in out["reasons"][0]
    assert out["emission_db"] == pytest.approx(first["emission_db"] + 6.0, abs=CFG.emission_step_db)


def test_interferer_near_the_carrier_moves_it(tmp_path):
    calibrate_device(tmp_path, hal(), CFG)
    tone = {"kind": "tone", "f_lo_hz": 41200.0, "f_hi_hz": 41200.0, "amplitude": 1e-3, "period_s": 1.0}
    out = calibrate_device(tmp_path, hal(interferer=tone), CFG)
    assert out["action"] == "recalibrated" and "interferer near the carrier" in out["reasons"]
    assert abs(out["carrier_hz"] - 41200.0) > CFG.interferer_guard_hz


def test_unreadable_record_is_replaced(tmp_path):
    (tmp_path / RECORD_FILE).write_text("{not json")
    out = calibrate_device(tmp_path, hal(), CFG)
    assert out["action"] == "recalibrated" and "unreadable" in out["reasons"][0]
    assert json.loads((tmp_path / RECORD_FILE).read_text())["carrier_hz"] == 41000.0


def test_bundle_config_must_come_from_this_runtime(tmp_path):
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "calibration.json").write_text(json.dumps(CFG.to_dict()))
    assert bundle_calibration_config(tmp_path) == CFG
    (payload / "calibration.json").write_text(json.dumps({**CFG.to_dict(), "runtime_version": "old"}))
    with pytest.raises(ValueError, match="runtime_version"):
        bundle_calibration_config(tmp_path)


def test_simulated_units_calibrate_at_first_boot_deterministically():
    from common.params import load_params
    from fleet.simulate import fleet_unit

    params = load_params()
    sim, config = params["simulate"], params["calibration"]["config"]
    candidates = np.asarray(config["candidates_hz"])
    units = [fleet_unit("field", i, sim, config)[0] for i in range(6)]
    assert [u.carrier_hz for u in units] == [
        fleet_unit("field", i, sim, config)[0].carrier_hz for i in range(6)
    ]
    assert all(u.carrier_hz in candidates for u in units)
    levels = {u.emission_db for u in units}
    assert len(levels) > 1  # the level follows each unit's own response and noise
    off = {**sim, "calibration": {**sim["calibration"], "enabled": False}}
    assert all(fleet_unit("field", i, off, config)[0].carrier_hz in sim["carriers_hz"] for i in range(6))
