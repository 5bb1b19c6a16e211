"""Streaming rational-rate polyphase FIR resampler (state kept between blocks).

Output sample m sits at input time m / fs_out (the filter delay is compensated by waiting for
future input), so any split of the input into blocks gives the same output as one block.
Samples before the first one are taken equal to the first one (no start-up step).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal

MAX_RATE_TERM = 1000  # largest up/down factor accepted (rates must be near-rational)
_CHUNK_ELEMENTS = 1 << 22  # gather at most this many input samples per channel at once


def rational_ratio(fs_in: float, fs_out: float) -> tuple[int, int]:
    """(up, down) with fs_out / fs_in = up / down, both small integers."""
    ratio = Fraction(fs_out).limit_denominator(10**6) / Fraction(fs_in).limit_denominator(10**6)
    ratio = ratio.limit_denominator(MAX_RATE_TERM)
    if abs(float(ratio) - fs_out / fs_in) > 1e-9 * fs_out / fs_in:
        raise ValueError(f"cannot resample {fs_in} Hz -> {fs_out} Hz with up/down <= {MAX_RATE_TERM}")
    return ratio.numerator, ratio.denominator


class StreamingResampler:
    """Resample [n_channels, n] complex blocks from fs_in to fs_out."""

    def __init__(self, fs_in: float, fs_out: float, n_channels: int, half_len: int = 10, beta: float = 5.0):
        self.up, self.down = rational_ratio(fs_in, fs_out)
        self.n_channels = n_channels
        max_rate = max(self.up, self.down)
        n_taps = 2 * half_len * max_rate + 1
        taps = signal.firwin(n_taps, 1.0 / max_rate, window=("kaiser", beta)) * self.up
        self.n_poly = -(-n_taps // self.up)  # taps per polyphase branch
        padded = np.zeros(self.n_poly * self.up)
        padded[:n_taps] = taps
        self.poly = padded.reshape(self.n_poly, self.up).T.astype(np.float32)  # [up, n_poly]: h[p + up*j]
        self.delay = (n_taps - 1) // 2  # in upsampled samples
        self._buf: np.ndarray | None = None  # [n_channels, n] input samples from index _buf_start
        self._buf_start = 0
        self._n_seen = 0
        self._next_out = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.complex64)
        if block.ndim != 2 or block.shape[0] != self.n_channels:
            raise ValueError(f"block must be [{self.n_channels}, n], got {block.shape}")
        if block.shape[1] == 0:
            return np.zeros((self.n_channels, 0), np.complex64)
        if self._buf is None:  # history before sample 0 repeats sample 0
            self._buf = np.repeat(block[:, :1], self.n_poly - 1, axis=1)
            self._buf_start = -(self.n_poly - 1)
        self._buf = np.concatenate([self._buf, block], axis=1)
        self._n_seen += block.shape[1]
        last_out = (self._n_seen * self.up - 1 - self.delay) // self.down
        outputs = np.arange(self._next_out, last_out + 1, dtype=np.int64)  # [M]
        y = np.zeros((self.n_channels, len(outputs)), np.complex64)
        chunk = max(1, _CHUNK_ELEMENTS // self.n_poly)
        taps_back = np.arange(self.n_poly, dtype=np.int64)  # [K]
        for lo in range(0, len(outputs), chunk):
            t = outputs[lo : lo + chunk] * self.down + self.delay  # upsampled time of each output
            phase, base = t % self.up, t // self.up
            idx = base[:, None] - taps_back[None, :] - self._buf_start  # [m, K]
            gathered = self._buf[:, idx]  # [C, m, K]
            y[:, lo : lo + chunk] = np.einsum("cmk,mk->cm", gathered, self.poly[phase])
        self._next_out = last_out + 1
        next_base = (self._next_out * self.down + self.delay) // self.up
        keep_from = next_base - (self.n_poly - 1)
        if keep_from > self._buf_start:
            self._buf = self._buf[:, keep_from - self._buf_start :]
            self._buf_start = keep_from
        return y
