"""Point scatterers with trajectories → complex baseband at each microphone (the fast path).

Each scatterer at position p(t) returns the emitted carrier with amplitude
    a(t) = tx · g · 10^(−α·(r_tx + r_rx)/20) / (r_tx · r_rx)          (spreading both ways + air)
and phase −2π·f0·(r_tx + r_rx,m)/c, where r_tx is the speaker→scatterer range and r_rx,m the exact
scatterer→mic-m range, so the per-mic phase follows the arrival direction and the array geometry.
For a target at range r this is a(t)·exp(−j·2π·f0·2r(t)/c). Components whose instantaneous
Doppler leaves the ±0.45·fs band fade out, as the device's decimation filter would remove them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleet.devices import Device
from fleet.rooms import Room, echo_gain

LUT_BITS = 14
_LUT_SIZE = 1 << LUT_BITS
# exp(j·2π·i/N): a 16k-entry table; phase quantisation error ≈ −79 dBc
_EXPJ_LUT = np.exp(2j * np.pi * np.arange(_LUT_SIZE) / _LUT_SIZE).astype(np.complex64)


@dataclass(frozen=True)
class Acoustics:
    """What the propagation model needs about one device in one room at one carrier."""

    f0: float
    c: float
    alpha_db_per_m: float
    tx: float  # emitted amplitude at the carrier (re full scale at 1 m)
    speaker_xyz: np.ndarray  # [3]
    mic_xyz: np.ndarray  # [M, 3]
    mic_response: np.ndarray  # [M] complex
    fs: float

    @staticmethod
    def of(dev: Device, room: Room, fs: float) -> Acoustics:
        return Acoustics(
            f0=dev.carrier_hz,
            c=room.c,
            alpha_db_per_m=room.alpha(dev.carrier_hz),
            tx=dev.tx_amplitude(),
            speaker_xyz=dev.speaker_xyz,
            mic_xyz=dev.mic_xyz,
            mic_response=dev.mic_response,
            fs=fs,
        )

    @property
    def n_mics(self) -> int:
        return int(self.mic_xyz.shape[0])


def expj_cycles(cycles: np.ndarray) -> np.ndarray:
    """exp(j·2π·cycles) as complex64 through a lookup table (cycles may be large)."""
    idx = (cycles * _LUT_SIZE).astype(np.int64 if cycles.dtype == np.float64 else np.int32)
    idx &= _LUT_SIZE - 1
    return _EXPJ_LUT[idx]


def path_geometry(pos: np.ndarray, ac: Acoustics, mics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r_tx [S, n], r_rx [S, M', n]) for positions pos [S, n, 3] (float64 metres)."""
    d_tx = pos - ac.speaker_xyz
    r_tx = np.sqrt(np.einsum("snk,snk->sn", d_tx, d_tx))
    # float32 is plenty for the mic legs (≈1e-6 m at 10 m) and halves the memory traffic
    d = pos.astype(np.float32)[:, None] - ac.mic_xyz[mics].astype(np.float32)[None, :, None]  # [S, M', n, 3]
    r_rx = np.sqrt(np.einsum("smnk,smnk->smn", d, d))
    return r_tx, r_rx.astype(np.float64)


def band_weight(path_m: np.ndarray, ac: Acoustics, dt: float) -> np.ndarray:
    """[S, n] in 0..1: 0 where the instantaneous Doppler is outside ±0.45·fs (anti-alias filter)."""
    dpath = np.gradient(path_m, axis=-1) / dt  # m/s of round-trip path
    f_d = np.abs(dpath) * ac.f0 / ac.c
    return np.clip((0.45 * ac.fs - f_d) / (0.05 * ac.fs), 0.0, 1.0)


def coarse_times(t: np.ndarray, decim: int, fs: float) -> np.ndarray:
    """Every decim-th sample time, extended so the grid covers t[-1]: [(n-1)//decim + 2] (or t)."""
    if decim == 1:
        return t
    n_coarse = (t.size - 1) // decim + 2
    return t[0] + np.arange(n_coarse) * (decim / fs)


def upsample(x: np.ndarray, decim: int, n: int) -> np.ndarray:
    """Linear interpolation of x [..., n_coarse] on the coarse grid back to n samples."""
    if decim == 1:
        return x
    w = np.arange(decim) / decim  # [D]
    y = x[..., :-1, None] + (x[..., 1:, None] - x[..., :-1, None]) * w
    return y.reshape(*x.shape[:-1], -1)[..., :n]


def render_scatterers(
    pos: np.ndarray,
    gain: np.ndarray,
    ac: Acoustics,
    mics: np.ndarray | None = None,
    decim: int = 1,
    n: int | None = None,
) -> np.ndarray:
    """Baseband [M', n] complex64 of scatterers at pos [S, n_c, 3] with reflectivity gain [S] or [S, n_c].

    gain is sqrt(σ/4π) in metres (0.1 ≈ a torso); mics selects microphones (default: all).
    With decim > 1, pos/gain are on the coarse grid of coarse_times(t, decim) and the smooth path
    lengths and amplitudes are interpolated to the n output samples before the phase is formed.
    """
    mics = np.arange(ac.n_mics) if mics is None else np.asarray(mics)
    n = pos.shape[1] if n is None else n
    r_tx, r_rx = path_geometry(pos, ac, mics)
    r_c = np.sqrt(np.einsum("snk,snk->sn", pos, pos))  # [S, n_c] range to the array centre
    g = np.broadcast_to(np.asarray(gain, dtype=np.float64).reshape(pos.shape[0], -1), r_tx.shape)
    amp = ac.tx * g * echo_gain(r_tx, r_c, ac.alpha_db_per_m) * band_weight(r_tx + r_c, ac, decim / ac.fs)
    amp32 = upsample(amp.astype(np.float32), decim, n)  # [S, n]
    out = np.empty((mics.size, n), dtype=np.complex64)
    k_cycles = ac.f0 / ac.c
    for j, m in enumerate(mics):
        phasor = expj_interp(-(r_tx + r_rx[:, j]) * k_cycles, decim, n)  # [S, n]
        phasor *= amp32
        out[j] = phasor.sum(axis=0) * np.complex64(ac.mic_response[m])
    return out


def expj_interp(cycles: np.ndarray, decim: int, n: int) -> np.ndarray:
    """exp(j·2π·cycles) [S, n] complex64 from cycles [S, n_c] (float64) on the coarse grid.

    Linear interpolation of the phase between coarse samples; each coarse sample's whole cycles
    are dropped first so the float32 interpolation keeps full precision.
    """
    if decim == 1:
        return expj_cycles(cycles)
    frac = cycles[:, :-1] - np.floor(cycles[:, :-1])  # [S, n_c - 1] in [0, 1)
    step = np.diff(cycles, axis=1).astype(np.float32)
    w = (np.arange(decim, dtype=np.float32) / decim) * _LUT_SIZE  # [D]
    y = np.empty((*frac.shape, decim), dtype=np.float32)  # [S, n_c - 1, D]
    np.multiply(step[..., None], w, out=y)
    y += (frac * _LUT_SIZE).astype(np.float32)[..., None]
    idx = y.reshape(cycles.shape[0], -1)[:, :n].astype(np.int32)
    idx &= _LUT_SIZE - 1
    return _EXPJ_LUT[idx]


def steering(direction: np.ndarray, f_hz: float, ac: Acoustics, mics: np.ndarray | None = None) -> np.ndarray:
    """[M'] complex plane-wave phase of a far source in unit direction `direction` (towards it)."""
    mics = np.arange(ac.n_mics) if mics is None else np.asarray(mics)
    u = direction / np.linalg.norm(direction)
    k = 2 * np.pi * f_hz / ac.c
    return np.exp(1j * k * (ac.mic_xyz[mics] @ u)) * ac.mic_response[mics]
