"""The MBDP part of a bundle: tuning (mbdp.json), self-test vectors and the CMSIS-DSP Q31 biquads.

mbdp_vectors.npz holds "input" float64 [n] (a deterministic test signal at the tuning's rate) and
"expected_<mode>" float64 [n] for every mode of runtime.mbdp.MODES: what runtime.mbdp's streaming
processor makes of the input with that mode's preset. The device's self-test (deploy.selftest) runs
its own processor on the input and must reproduce them; mbdp.h / mbdp_q31.json carry the same
crossover biquads in fixed point for the firmware (runtime.fixed_point).

The test signal drives every stage: bass tones and a kick that the compressors and band limiters
catch, a 1 kHz tone and hiss in the upper bands, and a gain ramp from -30 dB to +6 dB (re a full-scale
peak) so the signal ends above full scale and the full-band true-peak limiter has to act.
"""

from __future__ import annotations

import json

import numpy as np

from deploy.npz import deterministic_npz
from runtime.fixed_point import export_bundle_files
from runtime.mbdp import MultibandProcessor, design_crossover, tuning_configs

VECTORS_FILE = "mbdp_vectors.npz"
TUNING_FILE = "mbdp.json"


def mbdp_test_signal(fs_hz: float, seconds: float, seed: int) -> np.ndarray:
    """[n] float64 test signal under a gain ramp from -30 dB to +6 dB re full-scale peak."""
    n = round(seconds * fs_hz)
    t = np.arange(n) / fs_hz
    rng = np.random.default_rng(seed)
    beat = 0.125  # a kick every 125 ms
    since = np.mod(t, beat)
    kick = np.exp(-since / 0.03) * np.sin(2 * np.pi * (45 + 80 * np.exp(-since / 0.01)) * since)
    x = (
        0.5 * np.sin(2 * np.pi * 55.0 * t)
        + 0.3 * np.sin(2 * np.pi * 82.0 * t + 1.0)
        + 0.4 * kick
        + 0.1 * np.sin(2 * np.pi * 1000.0 * t)
        + 0.03 * rng.standard_normal(n)
    )
    ramp_db = np.linspace(-30.0, 6.0, n)
    return x / np.max(np.abs(x)) * 10 ** (ramp_db / 20)


def expected_outputs(tuning: dict, x: np.ndarray) -> dict[str, np.ndarray]:
    """Each mode's processor output on x, latency removed (what the self-test must reproduce)."""
    return {
        f"expected_{mode}": MultibandProcessor(cfg).process_aligned(x)
        for mode, cfg in tuning_configs(tuning).items()
    }


def mbdp_payload(tuning: dict, seconds: float, seed: int) -> dict[str, bytes]:
    """Payload files: mbdp.json, mbdp_vectors.npz, mbdp.h and mbdp_q31.json."""
    configs = tuning_configs(tuning)  # validates before anything is built
    playback = configs["playback"]
    x = mbdp_test_signal(playback.fs_hz, seconds, seed)
    vectors = {"input": x, **expected_outputs(tuning, x)}
    return {
        TUNING_FILE: (json.dumps(tuning, indent=2, sort_keys=True) + "\n").encode(),
        VECTORS_FILE: deterministic_npz(vectors),
        **export_bundle_files(design_crossover(playback.crossovers_hz, playback.fs_hz)),
    }
