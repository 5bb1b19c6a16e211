"""bench.cmsis: the real CMSIS-DSP Q31 kernels on runtime.fixed_point's export match the float reference
(skipped without cmsisdsp)."""

import numpy as np
import pytest
from scipy import signal

from bench.cmsis import fixed_vs_float_db, run_cmsis_q31
from runtime.crossover import lr4_sections
from runtime.fixed_point import to_q31
from runtime.mbdp import design_crossover

FS = 48000.0


def test_cmsis_kernel_matches_float_reference():
    pytest.importorskip("cmsisdsp")
    t = np.arange(24000) / FS
    sweep = 0.25 * signal.chirp(t, 20, t[-1], 20000, method="logarithmic")
    errs = fixed_vs_float_db(design_crossover([150.0, 1000.0], FS), sweep)
    assert max(errs.values()) <= -90.0
    # a wrong sign convention would not be a small error: flip the feedback and it blows up or diverges
    sos = lr4_sections(1000.0, FS)["lowpass"]
    q, shift = to_q31(sos)
    wrong = q.copy().reshape(-1, 5)
    wrong[:, 3:] *= -1
    ref = signal.sosfilt(sos, sweep)
    bad = run_cmsis_q31(wrong.reshape(-1), 2, shift, sweep)
    assert 10 * np.log10(np.sum((bad - ref) ** 2) / np.sum(ref**2)) > -10
