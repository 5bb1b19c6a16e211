"""One physical unit of a device profile: array geometry, loudspeaker response and mic errors.

Manufacturing spread is drawn per unit: the loudspeaker's magnitude over 30–50 kHz has a roll-off,
a unit-specific resonance and a smooth random ripple (several dB between units); each microphone
has its own gain and phase error. Calibration on the device exists to correct exactly these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleet.config import profile


@dataclass(frozen=True)
class Device:
    device_id: str
    profile: str
    mic_xyz: np.ndarray  # [M, 3] metres, relative to the array centre; x forward, z up
    speaker_xyz: np.ndarray  # [3]
    mic_response: np.ndarray  # [M] complex: per-mic gain and phase error
    carrier_hz: float
    emission_db: float
    acoustic_1m_db: float
    direct_coupling: float
    noise_dbfs: float
    height_m: float
    ripple_hz: np.ndarray  # [K] ripple knots over 30–50 kHz
    ripple_db: np.ndarray  # [K]
    resonance: tuple[float, float, float]  # (f_hz, gain_db, q)
    rolloff: tuple[float, float]  # (corner_hz, db_per_khz)

    @property
    def n_mics(self) -> int:
        return int(self.mic_xyz.shape[0])

    def speaker_db(self, f_hz: np.ndarray | float) -> np.ndarray:
        """Loudspeaker magnitude response in dB at f_hz (unit-specific)."""
        f = np.asarray(f_hz, dtype=np.float64)
        f_res, g_res, q = self.resonance
        # second-order peak: g_res dB at f_res, bandwidth f_res/q
        x = q * (f / f_res - f_res / f)
        peak = g_res / (1.0 + x**2)
        corner, slope = self.rolloff
        roll = -slope * np.maximum(f - corner, 0.0) / 1000.0
        ripple = np.interp(f, self.ripple_hz, self.ripple_db)
        return peak + roll + ripple

    def tx_amplitude(self, f_hz: float | None = None) -> float:
        """Emitted amplitude at 1 m (re mic full scale) at the carrier, including the unit's response."""
        f = self.carrier_hz if f_hz is None else f_hz
        return float(10 ** ((self.emission_db + self.acoustic_1m_db + self.speaker_db(f)) / 20.0))

    def noise_sigma(self) -> float:
        return float(10 ** (self.noise_dbfs / 20.0))


def array_geometry(spec: dict, n_mics: int) -> np.ndarray:
    """[M, 3] mic positions for the profile's array spec."""
    if spec["kind"] == "circular":
        ang = 2 * np.pi * np.arange(n_mics) / n_mics
        r = spec["radius_m"]
        return np.stack([r * np.cos(ang), r * np.sin(ang), np.zeros(n_mics)], axis=1)
    if spec["kind"] == "linear":
        y = (np.arange(n_mics) - (n_mics - 1) / 2) * spec["spacing_m"]
        return np.stack([np.zeros(n_mics), y, np.zeros(n_mics)], axis=1)
    raise ValueError(f"unknown array kind {spec['kind']!r}")


def make_device(profile_name: str, device_id: str, carrier_hz: float, rng: np.random.Generator) -> Device:
    """Draw one unit of `profile_name` with its manufacturing spread."""
    p = profile(profile_name)
    sr = p["speaker_response"]
    n = int(p["n_mics"])
    gain_db = rng.normal(0.0, p["mic_gain_spread_db"], n)
    phase = np.deg2rad(rng.normal(0.0, p["mic_phase_spread_deg"], n))
    knots = np.linspace(28000.0, 52000.0, 7)
    return Device(
        device_id=device_id,
        profile=profile_name,
        mic_xyz=array_geometry(p["array"], n),
        speaker_xyz=np.asarray(p["speaker_offset_m"], dtype=np.float64),
        mic_response=(10 ** (gain_db / 20) * np.exp(1j * phase)).astype(np.complex128),
        carrier_hz=float(carrier_hz),
        # calibration sets the level per unit (0.5 dB steps); coupling and noise vary per unit
        emission_db=float(p["emission_db"] + 0.5 * round(rng.uniform(-3.0, 3.0) / 0.5)),
        acoustic_1m_db=float(p["acoustic_1m_db"]),
        direct_coupling=float(p["direct_coupling"] * 10 ** (rng.normal(0.0, p["coupling_spread_db"]) / 20)),
        noise_dbfs=float(p["noise_dbfs"] + rng.normal(0.0, p["noise_spread_db"])),
        height_m=float(p["height_m"]),
        ripple_hz=knots,
        ripple_db=rng.normal(0.0, sr["unit_spread_db"], knots.size),
        resonance=(
            float(rng.uniform(*sr["resonance_hz"])),
            float(rng.uniform(*sr["resonance_db"])),
            float(rng.uniform(*sr["resonance_q"])),
        ),
        rolloff=(float(sr["rolloff_hz"] + rng.normal(0.0, 1500.0)), float(sr["rolloff_db_per_khz"])),
    )
