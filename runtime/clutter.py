"""Clutter removal: subtract a slowly tracking per-mic mean (the static direct path + room).

The static estimate is a one-pole low-pass with time constant tau (so the residual is a one-pole
high-pass); it tracks slow drift such as temperature changing the path phase. The estimate
starts at the first sample, so a capture does not begin with a large step.
"""

from __future__ import annotations

import numpy as np
from scipy import signal


class ClutterFilter:
    """Streaming clutter remover for [n_mics, n] complex baseband."""

    def __init__(self, n_mics: int, tau_s: float, fs_hz: float):
        if tau_s <= 0 or fs_hz <= 0:
            raise ValueError(f"tau_s and fs_hz must be > 0, got {tau_s}, {fs_hz}")
        self.n_mics = n_mics
        self.alpha = float(np.exp(-1.0 / (tau_s * fs_hz)))
        self._b = np.array([1.0 - self.alpha], np.float32)
        self._a = np.array([1.0, -self.alpha], np.float32)
        self._zi: np.ndarray | None = None  # [n_mics, 1, 2] lfilter state (real, imag)

    def process(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x [n_mics, n] -> (residual [n_mics, n], static estimate [n_mics, n]) complex64."""
        x = np.asarray(x, dtype=np.complex64)
        if x.ndim != 2 or x.shape[0] != self.n_mics:
            raise ValueError(f"x must be [{self.n_mics}, n], got {x.shape}")
        if x.shape[1] == 0:
            return x.copy(), x.copy()
        if self._zi is None:  # static estimate at time -1 equals the first sample: zi [M, 1, 2]
            first = x[:, :1].astype(np.complex64)
            self._zi = (self.alpha * np.stack([first.real, first.imag], axis=-1)).astype(np.float32)
        # real and imaginary parts as a float32 [M, n, 2] view: the real filter runs faster than complex
        x = np.ascontiguousarray(x)
        pairs = x.view(np.float32).reshape(self.n_mics, x.shape[1], 2)
        static_pairs, self._zi = signal.lfilter(self._b, self._a, pairs, axis=1, zi=self._zi)
        static = (
            np.ascontiguousarray(static_pairs, dtype=np.float32).reshape(self.n_mics, -1).view(np.complex64)
        )
        return x - static, static
