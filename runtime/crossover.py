"""Linkwitz-Riley (LR4) crossover design for the multiband dynamics processor's band splits.

At each crossover frequency two identical 2nd-order Butterworth sections in series make an LR4
low-pass and high-pass pair. The MBDP tuning that ships in a bundle is this split plus per-band
dynamics settings; the streaming processor itself builds on these sections.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

MBDP_RUNTIME_VERSION = "mbdp-design-1"


def lr4_sections(fc_hz: float, fs_hz: float) -> dict[str, np.ndarray]:
    """Second-order sections [2, 6] (scipy sos layout) of the LR4 low-pass and high-pass at fc."""
    if not 0 < fc_hz < fs_hz / 2:
        raise ValueError(f"crossover {fc_hz} Hz must lie between 0 and Nyquist ({fs_hz / 2} Hz)")
    lp = signal.butter(2, fc_hz, btype="low", fs=fs_hz, output="sos")  # [1, 6]
    hp = signal.butter(2, fc_hz, btype="high", fs=fs_hz, output="sos")
    return {"lowpass": np.vstack([lp, lp]), "highpass": np.vstack([hp, hp])}


def design_mbdp(crossovers_hz: list[float], fs_hz: float, bands: list[dict]) -> dict:
    """Tuning record for the bundle: crossover sections per split and the dynamics of each band."""
    crossovers = sorted(float(f) for f in crossovers_hz)
    if len(bands) != len(crossovers) + 1:
        raise ValueError(f"{len(crossovers)} crossovers make {len(crossovers) + 1} bands, got {len(bands)}")
    splits = []
    for fc in crossovers:
        sos = lr4_sections(fc, fs_hz)
        splits.append(
            {"fc_hz": fc, "lowpass_sos": sos["lowpass"].tolist(), "highpass_sos": sos["highpass"].tolist()}
        )
    return {"runtime_version": MBDP_RUNTIME_VERSION, "fs_hz": fs_hz, "splits": splits, "bands": bands}
