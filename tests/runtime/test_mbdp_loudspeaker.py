"""Loudspeaker model: carrier phase modulation index, Bl/Kms nonlinearity, oversampled cone model."""

import numpy as np
import pytest
from scipy import special

from runtime.loudspeaker import (
    LoudspeakerParams,
    bl_ratio,
    carrier_modulation,
    carrier_phase_cycles,
    quasi_static_excursion,
    simulate_cone,
    ultrasonic_distortion_dbc,
    volts_for_excursion,
)


def test_phase_index_and_first_sideband_follow_bessel():
    # β = 2π f0 X / c: 1 mm at 40 kHz → J1/J0 ≈ −8.1 dBc
    beta = 2 * np.pi * carrier_phase_cycles(1e-3, 40000.0, 343.0)
    assert beta == pytest.approx(2 * np.pi * 40000 * 1e-3 / 343)
    assert 20 * np.log10(special.jv(1, beta) / special.jv(0, beta)) == pytest.approx(-8.1, abs=0.1)
    fs, f_bass = 2000.0, 50.0
    t = np.arange(4000) / fs
    x = 1e-3 * np.sin(2 * np.pi * f_bass * t)
    linear = LoudspeakerParams(bl_drop=0.0, kms_rise=0.0)
    g = carrier_modulation(x, 40000.0, linear)
    spec = np.abs(np.fft.fft(g)) / g.size
    f = np.fft.fftfreq(g.size, 1 / fs)
    side = spec[np.argmin(np.abs(f - f_bass))] / spec[0]
    assert 20 * np.log10(side) == pytest.approx(-8.1, abs=0.1)


def test_nonlinearity_compresses_excursion_and_lowers_bl():
    p = LoudspeakerParams()
    small = quasi_static_excursion(np.array([1e-5]), p)[0]
    assert small == pytest.approx(1e-5, rel=1e-3)  # linear for small drive
    big = quasi_static_excursion(np.array([2e-3, -2e-3]), p)
    assert 0 < big[0] < 2e-3 and big[1] == pytest.approx(-big[0])  # stiffening suspension, odd symmetry
    assert bl_ratio(np.array([0.0]), p)[0] == 1.0 and bl_ratio(np.array([1.5e-3]), p)[0] < 1.0


def test_more_excursion_more_ultrasonic_distortion():
    p = LoudspeakerParams()
    fs = 48000.0
    t = np.arange(int(fs)) / fs
    levels = []
    for mm in (0.2, 0.6, 1.2):
        x, _ = simulate_cone(volts_for_excursion(mm * 1e-3, p) * np.sin(2 * np.pi * 50 * t), fs, p)
        levels.append(ultrasonic_distortion_dbc(x[4800:], fs, 40000.0, p))
    assert levels[0] < levels[1] < levels[2]


def test_cone_model_small_signal_matches_dc_excursion_below_resonance():
    p = LoudspeakerParams()
    fs = 48000.0
    t = np.arange(int(fs)) / fs
    x, _ = simulate_cone(volts_for_excursion(0.05e-3, p) * np.sin(2 * np.pi * 10 * t), fs, p)
    assert np.max(np.abs(x[24000:])) == pytest.approx(
        0.05e-3, rel=0.05
    )  # 10 Hz ≪ resonance: stiffness-controlled
