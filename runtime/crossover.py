"""Linkwitz-Riley (LR4) crossover design for the multiband dynamics processor's band splits.

At each crossover frequency two identical 2nd-order Butterworth sections in series make an LR4
low-pass and high-pass pair; runtime.mbdp builds its cascade, all-passes and fixed-point export on
these sections.
"""

from __future__ import annotations

import numpy as np
from scipy import signal


def lr4_sections(fc_hz: float, fs_hz: float) -> dict[str, np.ndarray]:
    """Second-order sections [2, 6] (scipy sos layout) of the LR4 low-pass and high-pass at fc."""
    if not 0 < fc_hz < fs_hz / 2:
        raise ValueError(f"crossover {fc_hz} Hz must lie between 0 and Nyquist ({fs_hz / 2} Hz)")
    lp = signal.butter(2, fc_hz, btype="low", fs=fs_hz, output="sos")  # [1, 6]
    hp = signal.butter(2, fc_hz, btype="high", fs=fs_hz, output="sos")
    return {"lowpass": np.vstack([lp, lp]), "highpass": np.vstack([hp, hp])}
