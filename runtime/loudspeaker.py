"""Loudspeaker model with excursion-dependent nonlinearity, shared by the MBDP bench and the fleet.

Bass drive moves the cone by x(t). Two effects land playback distortion in the ultrasonic band:
- the moving cone phase-modulates the carrier it radiates: β(t) = 2π·f0·x(t)/c;
- the force factor Bl(x) falls off with excursion, so the carrier's amplitude follows Bl(x)/Bl0
  (amplitude modulation at even multiples of the bass), while the stiffening suspension Kms(x)
  distorts x itself (odd harmonics of the bass).

Two ways to get x: `quasi_static_excursion` solves Kms(x)·x = Bl(x)·F for a normalised drive
(stiffness-controlled region, vectorised; what the fleet uses at baseband), and `simulate_cone`
integrates the full mass-spring-damper with the electrical back-EMF, oversampled (any static
nonlinearity at the audio rate would alias and fake distortion).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

try:
    from numba import njit
except ImportError:  # pragma: no cover

    def njit(*args, **kwargs):
        if args and callable(args[0]):
            return args[0]
        return lambda f: f


SPEED_OF_SOUND_MPS = 343.0


@dataclass(frozen=True)
class LoudspeakerParams:
    """Small full-range driver (a smart speaker's woofer), Thiele-Small style, SI units."""

    re_ohm: float = 4.0
    bl0_tm: float = 3.0
    mms_kg: float = 0.004
    kms0_npm: float = 900.0  # resonance sqrt(K/M)/2π ≈ 75 Hz
    rms_kgps: float = 0.6
    x_ref_m: float = 2.0e-3  # excursion the nonlinearity coefficients refer to
    bl_drop: float = 0.5  # Bl(x) = Bl0·(1 − bl_drop·(x/x_ref)²), floored at 0.2·Bl0
    kms_rise: float = 0.5  # Kms(x) = Kms0·(1 + kms_rise·(x/x_ref)²)

    @property
    def resonance_hz(self) -> float:
        return float(np.sqrt(self.kms0_npm / self.mms_kg) / (2 * np.pi))


def bl_ratio(x_m: np.ndarray, p: LoudspeakerParams) -> np.ndarray:
    return np.maximum(1.0 - p.bl_drop * (np.asarray(x_m) / p.x_ref_m) ** 2, 0.2)


def kms_ratio(x_m: np.ndarray, p: LoudspeakerParams) -> np.ndarray:
    return 1.0 + p.kms_rise * (np.asarray(x_m) / p.x_ref_m) ** 2


def quasi_static_excursion(x_linear_m: np.ndarray, p: LoudspeakerParams, iterations: int = 8) -> np.ndarray:
    """Excursion x with x·Kms(x)/Kms0 = x_lin·Bl(x)/Bl0, x_lin the small-signal excursion (Newton)."""
    xl = np.asarray(x_linear_m, dtype=np.float64)
    x = xl.copy()
    a, b, r = p.kms_rise / p.x_ref_m**2, p.bl_drop / p.x_ref_m**2, p.x_ref_m
    for _ in range(iterations):
        bl = 1.0 - b * x**2
        floored = bl < 0.2
        f = x * (1 + a * x**2) - xl * np.where(floored, 0.2, bl)
        df = 1 + 3 * a * x**2 + np.where(floored, 0.0, 2 * b * x * xl)
        x = x - f / df
    return np.clip(x, -4 * r, 4 * r)


def carrier_phase_cycles(x_m: np.ndarray, carrier_hz: float, c_mps: float = SPEED_OF_SOUND_MPS) -> np.ndarray:
    """Carrier phase shift in cycles from cone displacement: β/2π = f0·x/c."""
    return carrier_hz * np.asarray(x_m) / c_mps


def carrier_modulation(
    x_m: np.ndarray, carrier_hz: float, p: LoudspeakerParams, c_mps: float = SPEED_OF_SOUND_MPS
):
    """Complex baseband gain the cone applies to the carrier: Bl(x)/Bl0 · exp(jβ)."""
    beta = 2 * np.pi * carrier_phase_cycles(x_m, carrier_hz, c_mps)
    return bl_ratio(x_m, p) * np.exp(1j * beta)


@njit(cache=True)
def _integrate(u, dt, re, bl0, m, k0, rm, xr, bld, kr):
    # semi-implicit Euler on m·x'' = Bl(x)·i − Rms·x' − Kms(x)·x, i = (u − Bl(x)·x')/Re
    n = u.shape[0]
    xs = np.empty(n)
    acc = np.empty(n)
    x = 0.0
    v = 0.0
    for i in range(n):
        q = (x / xr) ** 2
        bl = bl0 * max(1.0 - bld * q, 0.2)
        k = k0 * (1.0 + kr * q)
        cur = (u[i] - bl * v) / re
        a = (bl * cur - rm * v - k * x) / m
        v += a * dt
        x += v * dt
        xs[i] = x
        acc[i] = a
    return xs, acc


def simulate_cone(
    voltage: np.ndarray, fs_hz: float, p: LoudspeakerParams, oversample: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Voltage [n] at fs → (excursion m, cone acceleration m/s²) both [n] at fs, integrated oversampled."""
    u = signal.resample_poly(np.asarray(voltage, dtype=np.float64), oversample, 1)
    xs, acc = _integrate(
        u, 1.0 / (fs_hz * oversample), p.re_ohm, p.bl0_tm, p.mms_kg, p.kms0_npm, p.rms_kgps,
        p.x_ref_m, p.bl_drop, p.kms_rise,
    )  # fmt: skip
    return signal.resample_poly(xs, 1, oversample), signal.resample_poly(acc, 1, oversample)


def volts_for_excursion(x_m: float, p: LoudspeakerParams) -> float:
    """Drive voltage whose small-signal DC excursion is x_m (x = Bl·u/(Re·Kms))."""
    return float(x_m * p.re_ohm * p.kms0_npm / p.bl0_tm)


def ultrasonic_distortion_dbc(
    x_m: np.ndarray,
    fs_hz: float,
    carrier_hz: float,
    p: LoudspeakerParams,
    band_hz: tuple[float, float] = (15.0, 900.0),
) -> float:
    """Power of the carrier's modulation sidebands with |f − f0| in band_hz, re the carrier (dBc)."""
    g = carrier_modulation(x_m, carrier_hz, p)  # [n] complex baseband around f0
    spec = np.abs(np.fft.fft(g)) ** 2
    f = np.abs(np.fft.fftfreq(g.size, 1.0 / fs_hz))
    side = spec[(f >= band_hz[0]) & (f <= band_hz[1])].sum()
    return float(10 * np.log10(max(side, 1e-30) / max(spec[0], 1e-30)))
