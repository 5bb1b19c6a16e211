"""Clutter removal: subtract a slowly tracking per-mic mean (the static direct path + room).

The static estimate is a one-pole low-pass y[n] = a·y[n-1] + (1 - a)·x[n] with time constant tau
(so the residual is a one-pole high-pass); it tracks slow drift such as temperature changing the
path phase. The estimate starts at the first sample, so a capture does not begin with a large step.

It is evaluated block-parallel rather than sample by sample: over a block of L samples,
y[j] = a^(j+1)·y[-1] + (1 - a)·a^j·cumsum_k(a^-k·x[k]); L is capped so that a^-L <= e^2 and the
scaled cumulative sum stays exact in float32, and the block-start values follow from a short
recursion over blocks. The error against a float64 recursion is about 1e-7 of the static level
(a float32 per-sample recursion: about 1e-5); a DSP port may run the plain recursion.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

MAX_BLOCK = 128  # samples per block (at most)


class ClutterFilter:
    """Streaming clutter remover for [n_mics, n] complex baseband; any block sizes agree to float rounding."""

    def __init__(self, n_mics: int, tau_s: float, fs_hz: float):
        if tau_s <= 0 or fs_hz <= 0:
            raise ValueError(f"tau_s and fs_hz must be > 0, got {tau_s}, {fs_hz}")
        self.n_mics = n_mics
        self.alpha = a = float(np.exp(-1.0 / (tau_s * fs_hz)))
        block = int(np.clip(2.0 * tau_s * fs_hz, 1, MAX_BLOCK))
        j = np.arange(block, dtype=np.float64)
        self._up = (a**-j).astype(np.float32)  # [L]
        self._down = ((1.0 - a) * a**j).astype(np.float32)  # [L]
        self._start_gain = np.float32(a / (1.0 - a))  # a^(j+1) / ((1 - a) a^j): y[-1] inside the cumsum
        self._block_decay = np.array([1.0, -(a**block)], np.float32)
        self._last: np.ndarray | None = None  # static estimate at the previous sample [n_mics]

    def _blocks(self, x: np.ndarray, out: np.ndarray) -> None:
        """Static estimate of x [M, nb, L'] (L' <= L) into out (same shape), from self._last."""
        length = x.shape[2]
        up, down = self._up[:length], self._down[:length]
        np.multiply(x, up, out=out)
        np.cumsum(out, axis=2, out=out)  # out[j] = sum_k a^-k x[k]: the zero-state response / down
        if x.shape[1] == 1:
            starts = self._last[:, None]
        else:  # y[-1] of every block: z_b = a^L z_(b-1) + (zero-state response at the block's end)
            ends, _ = signal.lfilter(
                [np.float32(1.0)],
                self._block_decay,
                out[:, :-1, -1] * down[-1],
                axis=1,
                zi=(-self._block_decay[1] * self._last)[:, None],
            )
            starts = np.concatenate([self._last[:, None], ends.astype(np.complex64)], axis=1)  # [M, nb]
        out += (self._start_gain * starts)[:, :, None]
        out *= down
        self._last = out[:, -1, -1].copy()

    def process(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x [n_mics, n] -> (residual [n_mics, n], static estimate [n_mics, n]) complex64."""
        x = np.asarray(x, dtype=np.complex64)
        if x.ndim != 2 or x.shape[0] != self.n_mics:
            raise ValueError(f"x must be [{self.n_mics}, n], got {x.shape}")
        n = x.shape[1]
        if n == 0:
            return x.copy(), x.copy()
        if self._last is None:  # static estimate at time -1 equals the first sample
            self._last = x[:, 0].copy()
        block = len(self._up)
        static = np.empty_like(x)
        n_full = n // block * block
        if n_full:
            shape = (self.n_mics, n_full // block, block)
            if n_full == n:
                self._blocks(x.reshape(shape), static.reshape(shape))
            else:
                full = np.empty(shape, np.complex64)
                self._blocks(x[:, :n_full].reshape(shape), full)
                static[:, :n_full] = full.reshape(self.n_mics, n_full)
        if n_full < n:  # tail shorter than a block
            tail = np.empty((self.n_mics, 1, n - n_full), np.complex64)
            self._blocks(x[:, None, n_full:], tail)
            static[:, n_full:] = tail[:, 0]
        return x - static, static
