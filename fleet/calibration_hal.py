"""A simulated unit's calibration hardware: what its microphone records while it plays a sweep or is silent.

The device's calibration runtime (runtime.calibration) drives the loudspeaker and reads the
microphone through this interface; on a real device it is the audio HAL. Here the recording follows
the unit's physics (fleet/devices.py): loudspeaker response with its manufacturing spread, direct
coupling over the speaker-to-mic distance, mic gain, the unit's noise floor (same density as its
baseband noise, spread over the 96 kHz passband) and an interferer resident in the home (another
device's tone, a pest repeller's sweep) drawn per unit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fleet.devices import Device
from runtime.calibration import CalibrationConfig, CalibrationRecord, calibrate, exponential_sweep

INTERFERER_KINDS = ("none", "tone", "sweep")


@dataclass(frozen=True)
class UnitAcoustics:
    """Speaker-to-mic path of one unit at passband, its noise and the interferer in its home."""

    gain_db_fn: Callable[[np.ndarray], np.ndarray]  # f_hz → |H| in dB (drive → mic full scale)
    delay_s: float
    noise_sigma: float  # passband white noise std (mic full scale)
    interferer: dict | None  # {kind, f_lo_hz, f_hi_hz, amplitude, period_s}

    def gain_db(self, f_hz):
        return self.gain_db_fn(np.asarray(f_hz, dtype=np.float64))


def interferer_signal(itf: dict | None, n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    """[n] passband samples of a tone or a triangle sweep between f_lo and f_hi (phase = ∫ f dt)."""
    if itf is None:
        return np.zeros(n)
    t = np.arange(n) / fs + rng.uniform(0, 1.0)
    if itf["kind"] == "tone":
        return itf["amplitude"] * np.sin(2 * np.pi * itf["f_lo_hz"] * t)
    tri = 2 * np.abs((t / itf["period_s"]) % 1.0 - 0.5)  # 0..1
    f_inst = itf["f_lo_hz"] + (itf["f_hi_hz"] - itf["f_lo_hz"]) * tri
    return itf["amplitude"] * np.sin(2 * np.pi * np.cumsum(f_inst) / fs)


def record(unit: UnitAcoustics, drive: np.ndarray, fs: float, rng: np.random.Generator) -> np.ndarray:
    """Mic capture of `drive` played through the unit, plus its noise and interferer (10 ms tail)."""
    n = drive.size + int(0.01 * fs)
    n_fft = 1 << int(np.ceil(np.log2(n)))
    f = np.fft.rfftfreq(n_fft, 1.0 / fs)
    h = 10 ** (unit.gain_db(np.maximum(f, 1.0)) / 20) * np.exp(-2j * np.pi * f * unit.delay_s)
    y = np.fft.irfft(np.fft.rfft(drive, n_fft) * h, n_fft)[:n]
    return y + unit.noise_sigma * rng.standard_normal(n) + interferer_signal(unit.interferer, n, fs, rng)


def passband_noise_sigma(dev: Device, fs: float) -> float:
    """The unit's noise (given per 2 kHz of baseband) at the same density over the passband."""
    return float(np.sqrt(10 ** (dev.noise_dbfs / 10) / 2000.0 * fs / 2))


def draw_interferer(
    rng: np.random.Generator, mix: list[float], snr_db: list[float], noise_sigma: float, fs: float
) -> dict | None:
    """An interferer (none | tone | sweep, with probabilities `mix`) at an SNR over a 600 Hz band."""
    kind = INTERFERER_KINDS[int(rng.choice(len(INTERFERER_KINDS), p=np.asarray(mix) / np.sum(mix)))]
    band_noise = noise_sigma**2 * 600.0 / (fs / 2)
    amp = float(np.sqrt(2 * band_noise * 10 ** (rng.uniform(*snr_db) / 10)))
    if kind == "tone":
        f0 = float(rng.uniform(31000.0, 49000.0))
        return {"kind": "tone", "f_lo_hz": f0, "f_hi_hz": f0, "amplitude": amp, "period_s": 1.0}
    if kind == "sweep":
        lo = float(rng.uniform(25000.0, 45000.0))
        return {
            "kind": "sweep",
            "f_lo_hz": lo,
            "f_hi_hz": lo + float(rng.uniform(2000.0, 10000.0)),
            "amplitude": amp,
            "period_s": float(rng.uniform(0.05, 0.2)),
        }
    return None


def unit_acoustics(dev: Device, fs: float, interferer: dict | None, drift_db: float = 0.0) -> UnitAcoustics:
    """The unit's path: coupling over the speaker-to-mic distance, mic gain, speaker response, drift
    (a response change since the factory: temperature, ageing)."""
    dist = float(np.linalg.norm(dev.speaker_xyz - dev.mic_xyz[0]))
    mic_db = 20 * np.log10(np.abs(dev.mic_response[0]))
    base_db = dev.acoustic_1m_db + 20 * np.log10(dev.direct_coupling / dist) + mic_db + drift_db

    def gain_db(f: np.ndarray) -> np.ndarray:
        return base_db + dev.speaker_db(f)

    return UnitAcoustics(gain_db, dist / 343.0, passband_noise_sigma(dev, fs), interferer)


class SimulatedCalibrationHal:
    """measure(cfg) → (silent capture, sweep recording), as the device's audio HAL would give them."""

    def __init__(self, unit: UnitAcoustics, seed: int):
        self.unit = unit
        self.rng = np.random.default_rng(seed)

    def measure(self, cfg: CalibrationConfig) -> tuple[np.ndarray, np.ndarray]:
        sweep, _ = exponential_sweep(cfg)
        silent = record(self.unit, np.zeros(round(cfg.silent_s * cfg.fs_hz)), cfg.fs_hz, self.rng)
        swept = record(self.unit, sweep * 10 ** (cfg.sweep_level_db / 20), cfg.fs_hz, self.rng)
        return silent, swept


def unit_hal(
    dev: Device, cal: dict, key: list[int], fs: float, drift_db: float = 0.0
) -> SimulatedCalibrationHal:
    """The unit's calibration hardware with the interferer resident in its home (drawn from `key`,
    so every boot of the same unit hears the same one); drift_db shifts its response."""
    rng = np.random.default_rng([*key, 7])  # its own stream: the unit's other draws stay as they were
    itf = draw_interferer(
        rng, cal["interferer_mix"], cal["interferer_snr_db"], passband_noise_sigma(dev, fs), fs
    )
    return SimulatedCalibrationHal(unit_acoustics(dev, fs, itf, drift_db), seed=int(rng.integers(2**62)))


def calibrate_unit(dev: Device, cfg: CalibrationConfig, hal: SimulatedCalibrationHal) -> CalibrationRecord:
    """Run the device's calibration runtime on the unit (what it does at first boot)."""
    silent, swept = hal.measure(cfg)
    return calibrate(silent, swept, cfg, device_id=dev.device_id)
