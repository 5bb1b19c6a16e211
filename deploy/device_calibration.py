"""Calibration on a device after an install: calibrate once, keep the record, re-calibrate on drift.

The installed bundle's payload/calibration.json is the runtime.calibration config. The device's
audio HAL (`hal.measure(cfg) -> (silent capture, sweep recording)`, 96 kHz passband; the simulator's
fleet.calibration_hal on simulated units) makes the two measurements. The record goes to
`<device>/calibration.json` (atomic write); its carrier and emission level are what the device emits
and demodulates at. With a record already there, the same measurements are a probe: when the gain at
the carrier drifted more than `drift_db`, an interferer appeared near the carrier, or the record was
made by another calibration runtime, the device re-calibrates; otherwise the record stays.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np

from common.io import atomic_write_json, read_json
from runtime.calibration import (
    RECORD_VERSION,
    CalibrationConfig,
    CalibrationRecord,
    analyse_silence,
    calibrate,
    drift_check,
    estimate_response,
    exponential_sweep,
)

RECORD_FILE = "calibration.json"


def save_record(path: str | Path, record: CalibrationRecord) -> None:
    """Write the record as JSON, atomically (runtime/ computes records and writes no files)."""
    atomic_write_json(path, record.to_dict())


def load_record(path: str | Path) -> CalibrationRecord:
    """Read a record written by save_record (CalibrationRecord.from_dict checks its version)."""
    return CalibrationRecord.from_dict(read_json(path))


class CalibrationHal(Protocol):
    def measure(self, cfg: CalibrationConfig) -> tuple[np.ndarray, np.ndarray]: ...


def bundle_calibration_config(slot_dir: Path) -> CalibrationConfig:
    """The calibration config an installed bundle ships (payload/calibration.json)."""
    path = Path(slot_dir) / "payload" / "calibration.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("runtime_version") != RECORD_VERSION:
        raise ValueError(f"{path}: runtime_version {doc.get('runtime_version')!r} is not {RECORD_VERSION!r}")
    return CalibrationConfig.from_dict(doc)


def calibrate_device(device_dir: str | Path, hal: CalibrationHal, cfg: CalibrationConfig) -> dict:
    """Calibrate, keep or re-calibrate; returns {action, carrier_hz, emission_db, reasons}."""
    device_dir = Path(device_dir)
    path = device_dir / RECORD_FILE
    device_id = device_dir.name
    silent, swept = hal.measure(cfg)
    reasons: list[str] = []
    if path.exists():
        try:
            record = load_record(path)
        except (OSError, ValueError, TypeError) as exc:
            reasons.append(f"record unreadable: {exc}")
        else:
            sweep, inverse = exponential_sweep(cfg)
            freqs, h = estimate_response(swept, sweep * 10 ** (cfg.sweep_level_db / 20), inverse, cfg.fs_hz)
            probe = drift_check(record, freqs, h, analyse_silence(silent, cfg), cfg)
            if not probe["recalibrate"]:
                return {**_summary(record), "action": "kept", "drift_db": probe["drift_db"], "reasons": []}
            reasons += probe["reasons"]
    record = calibrate(silent, swept, cfg, device_id=device_id)
    save_record(path, record)
    return {**_summary(record), "action": "recalibrated" if reasons else "calibrated", "reasons": reasons}


def _summary(record) -> dict:
    return {
        "carrier_hz": record.carrier_hz,
        "emission_db": record.emission_db,
        "snr_db": record.snr_db_at_emission,
        "interferers": len(record.interferers),
    }


def calibration_status(device_dir: str | Path) -> dict | None:
    """What `flywheel device status` shows of the record (None when the device never calibrated)."""
    path = Path(device_dir) / RECORD_FILE
    if not path.exists():
        return None
    try:
        return _summary(load_record(path))
    except (OSError, ValueError, TypeError) as exc:
        return {"error": f"record unreadable: {exc}"}
