"""Passband PCM -> complex baseband: mix down at the carrier, low-pass, decimate.

Works for any carrier (lab phones at 18-22 kHz, speakers at 32-48 kHz) and any sample rate of at
least 2 * (carrier + 2 kHz). Baseband sample m sits at passband time m / out_fs_hz. The output is
flat to 0.8 of its Nyquist frequency and rejects aliases by 80 dB (integer ratios, two stages).

Edges: the decimation filters see zeros before the first sample ("zeros", the default), so a
recording's baseband ramps up over the first milliseconds and the clutter filter, which starts from
the first sample, then spends seconds converging (a decaying residual near 0 m/s, -5 dB re the
carrier at the start). edge="settled" extends the mixed-down signal by SETTLED_PAD_S on both sides
with the recording's static tone at that edge (the mean baseband A over the first, resp. last,
SETTLED_PAD_S plus the image conj(A) e^{-2j w n} that the mixing leaves: as if the tone had been
playing before the recording began and after it ended), filters, and cuts the extension off again;
the first sample is then within about 1e-4 of the static level. Recordings read from files (lab
pcm/*.wav) are demodulated that way.
"""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy import signal

from runtime.resample import rational_ratio

GUARD_HZ = 2000.0  # Doppler band kept above the carrier: fs must cover carrier + GUARD_HZ
PASSBAND_FRACTION = 0.8  # of the output Nyquist: flat up to here (v_max at 48 kHz is 0.7)
STOPBAND_DB = 80.0  # alias rejection of the decimation filters
EDGES = ("zeros", "settled")
SETTLED_PAD_S = 0.05  # longer than any decimation filter's half-length here (at most about 7 ms)
_MAX_LO_TABLE = 1 << 16  # exact periodic oscillator table when the period is at most this long


def local_oscillator(n: int, fs_hz: float, carrier_hz: float) -> np.ndarray:
    """exp(-j 2 pi carrier n / fs) for n = 0..n-1 as complex64 [n]."""
    if float(fs_hz).is_integer() and float(carrier_hz).is_integer():
        period = int(fs_hz) // gcd(int(fs_hz), int(carrier_hz))
        if period <= _MAX_LO_TABLE:  # periodic: compute one period in float64 and tile it
            k = np.arange(period, dtype=np.float64)
            table = np.exp(-2j * np.pi * ((k * int(carrier_hz)) % int(fs_hz)) / fs_hz).astype(np.complex64)
            return np.resize(table, n)
    phase = np.mod(np.arange(n, dtype=np.float64) * (carrier_hz / fs_hz), 1.0)
    return np.exp(-2j * np.pi * phase).astype(np.complex64)


def demodulate(
    pcm: np.ndarray, fs_hz: float, carrier_hz: float, out_fs_hz: float, edge: str = "zeros"
) -> np.ndarray:
    """pcm [n] or [n_channels, n] real passband at fs_hz -> complex64 [n_channels, n_out] at out_fs_hz
    (edge: "zeros" or "settled", see the module docstring)."""
    if edge not in EDGES:
        raise ValueError(f"edge {edge!r} is not one of {', '.join(EDGES)}")
    pcm = np.asarray(pcm)
    if pcm.ndim == 1:
        pcm = pcm[None, :]
    if pcm.ndim != 2:
        raise ValueError(f"pcm must be [n] or [n_channels, n], got shape {pcm.shape}")
    if np.iscomplexobj(pcm):
        raise ValueError("pcm must be real passband samples")
    if carrier_hz <= 0 or fs_hz < 2 * (carrier_hz + GUARD_HZ):
        raise ValueError(f"fs_hz {fs_hz} must be >= 2 * (carrier {carrier_hz} + {GUARD_HZ:.0f}) Hz")
    if not 0 < out_fs_hz <= fs_hz:
        raise ValueError(f"out_fs_hz {out_fs_hz} must be in (0, fs_hz]")
    if not np.all(np.isfinite(pcm)):
        raise ValueError("pcm contains NaN or Inf")
    up, down = rational_ratio(fs_hz, out_fs_hz)
    # real -> analytic around 0: x * e^{-j w n}; the factor 2 restores the tone's amplitude
    mixed = (2.0 * pcm.astype(np.float32)) * local_oscillator(pcm.shape[1], fs_hz, carrier_hz)  # [C, n]
    n_pad = down * int(np.ceil(SETTLED_PAD_S * fs_hz / down)) if edge == "settled" else 0
    if n_pad:
        mixed = _extend_static(mixed, n_pad, fs_hz, carrier_hz)  # [C, n + 2 n_pad]
    # low-pass and decimate; real and imaginary parts as one real [2C, n] array (faster)
    stacked = np.concatenate([mixed.real, mixed.imag], axis=0)  # [2C, n] float32
    filtered = _decimate(stacked, fs_hz, out_fs_hz, up, down)  # [2C, n_out]
    if n_pad:
        cut = n_pad * up // down  # whole output samples: n_pad is a multiple of down
        n_out = -(-(pcm.shape[1] * up) // down)
        filtered = filtered[:, cut : cut + n_out]
    n_ch = pcm.shape[0]
    return (filtered[:n_ch] + 1j * filtered[n_ch:]).astype(np.complex64)


def _extend_static(mixed: np.ndarray, n_pad: int, fs_hz: float, carrier_hz: float) -> np.ndarray:
    """mixed [C, n] with n_pad samples of the static tone before and after: A + conj(A) e^{-2j w k},
    A the mean of the first (last) n_pad samples (the image averages out over hundreds of cycles)."""
    n = mixed.shape[1]

    def pad(k: np.ndarray, static: np.ndarray) -> np.ndarray:  # k [n_pad] sample indices, static [C, 1]
        image = np.exp(-4j * np.pi * np.mod(k.astype(np.float64) * (carrier_hz / fs_hz), 1.0))  # [n_pad]
        return (static + static.conj() * image[None, :]).astype(np.complex64)  # [C, n_pad]

    head = pad(np.arange(-n_pad, 0), mixed[:, :n_pad].mean(axis=1, keepdims=True))
    tail = pad(np.arange(n, n + n_pad), mixed[:, -n_pad:].mean(axis=1, keepdims=True))
    return np.concatenate([head, mixed, tail], axis=1)


def _lowpass(fs_hz: float, pass_hz: float, stop_hz: float) -> np.ndarray:
    """Linear-phase Kaiser FIR (odd length, unity DC gain) flat to pass_hz, STOPBAND_DB down at stop_hz."""
    n_taps, beta = signal.kaiserord(STOPBAND_DB, (stop_hz - pass_hz) / (fs_hz / 2))
    return signal.firwin(n_taps | 1, (pass_hz + stop_hz) / 2, window=("kaiser", beta), fs=fs_hz)


def _decimate(x: np.ndarray, fs_hz: float, out_fs_hz: float, up: int, down: int) -> np.ndarray:
    """Anti-aliased rate change of x [..., n]; integer decimation runs in two cheaper stages."""
    pass_hz = PASSBAND_FRACTION * out_fs_hz / 2
    first = max((d for d in range(2, down) if down % d == 0 and d * d >= down), default=None)
    if up != 1 or first is None:
        return signal.resample_poly(x, up, down, axis=-1)
    mid_fs = fs_hz / first
    stage1 = _lowpass(fs_hz, pass_hz, mid_fs - pass_hz)  # images fold onto [-pass, pass] only from here on
    x = signal.resample_poly(x, 1, first, axis=-1, window=stage1)
    stage2 = _lowpass(mid_fs, pass_hz, out_fs_hz - pass_hz)
    return signal.resample_poly(x, 1, down // first, axis=-1, window=stage2)
