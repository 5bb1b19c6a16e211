"""The real CMSIS-DSP Q31 biquad kernels (the `cmsisdsp` package) run on runtime.fixed_point's export.

The firmware runs arm_biquad_cascade_df1_q31 on the coefficients runtime.fixed_point exports; this
module runs the same kernels on the host and compares them with the float reference (the MBDP bench
and the fixed-point test). runtime/ itself does not import cmsisdsp (numpy, scipy, onnxruntime only).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from runtime.fixed_point import Q31_ONE, cascades, to_q31
from runtime.mbdp import CrossoverDesign


def cmsis_available() -> bool:
    try:
        import cmsisdsp  # noqa: F401
    except ImportError:
        return False
    return True


def run_cmsis_q31(coeffs_q31: np.ndarray, num_stages: int, post_shift: int, x: np.ndarray) -> np.ndarray:
    """Run the real CMSIS-DSP DF1 Q31 kernel; x float in [-0.25, 0.25] → float output."""
    import cmsisdsp as dsp

    if np.max(np.abs(x)) > 0.25:
        raise ValueError("input must stay within ±0.25 (the 64-bit accumulator wraps)")
    inst = dsp.arm_biquad_casd_df1_inst_q31()
    state = np.zeros(4 * num_stages, dtype=np.int32)
    dsp.arm_biquad_cascade_df1_init_q31(
        inst, num_stages, np.asarray(coeffs_q31, dtype=np.int32), state, post_shift
    )
    xq = np.round(np.asarray(x, dtype=np.float64) * Q31_ONE).astype(np.int32)
    return np.asarray(dsp.arm_biquad_cascade_df1_q31(inst, xq), dtype=np.float64) / Q31_ONE


def fixed_vs_float_db(design: CrossoverDesign, x: np.ndarray) -> dict[str, float]:
    """Per cascade: error power of CMSIS Q31 vs float64 sosfilt over output power (dB)."""
    out = {}
    for name, sos in cascades(design):
        q, shift = to_q31(sos)
        fixed = run_cmsis_q31(q, sos.shape[0], shift, x)
        ref = signal.sosfilt(sos, x)
        out[name] = float(10 * np.log10(np.sum((fixed - ref) ** 2) / max(np.sum(ref**2), 1e-30)))
    return out
