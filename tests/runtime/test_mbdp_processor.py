"""MBDP: LR4 crossover sums flat and in phase, streaming is block-size independent, compressor
static curve, per-band limiter and full-band true-peak ceiling, presets."""

import dataclasses

import numpy as np
import pytest
from scipy import signal

from runtime.crossover import lr4_sections
from runtime.mbdp import (
    BandDynamics,
    MbdpConfig,
    MultibandProcessor,
    allpass_section,
    band_responses,
    crossover_only,
    design_crossover,
    load_preset,
    static_curve_db,
    true_peak,
)

FS = 48000.0


@pytest.mark.parametrize(
    "crossovers", [[1000.0], [120.0, 800.0, 4000.0], [80.0, 300.0, 1200.0, 5000.0, 12000.0]]
)
def test_bands_sum_flat_and_adjacent_bands_are_in_phase(crossovers):
    design = design_crossover(crossovers, FS)
    f = np.geomspace(10.0, 23000.0, 1500)
    h = band_responses(design, f)  # [B, F]
    assert h.shape == (len(crossovers) + 1, f.size)
    assert np.max(np.abs(20 * np.log10(np.abs(h.sum(axis=0))))) < 0.01
    for k, fc in enumerate(crossovers):
        lo, hi = band_responses(design, np.array([fc]))[k : k + 2, 0]
        assert abs(np.angle(lo / hi)) < np.deg2rad(0.5)  # adjacent bands in phase at their crossover
        split = lr4_sections(fc, FS)
        for sos in (split["lowpass"], split["highpass"]):  # LR4: each branch −6.02 dB at fc
            assert 20 * np.log10(abs(signal.sosfreqz(sos, worN=[fc], fs=FS)[1][0])) == pytest.approx(
                -6.02, abs=0.01
            )


def test_without_allpass_the_sum_dips():
    lp, hp = (lr4_sections(fc, FS) for fc in (120.0, 800.0))
    f = np.geomspace(20.0, 20000.0, 800)
    h = lambda sos: signal.sosfreqz(sos, worN=f, fs=FS)[1]  # noqa: E731
    total = (
        h(lp["lowpass"])
        + h(np.vstack([lp["highpass"], hp["lowpass"]]))
        + h(np.vstack([lp["highpass"], hp["highpass"]]))
    )
    assert np.min(20 * np.log10(np.abs(total))) < -0.2  # the compensation is what makes it flat


def test_allpass_equals_lr4_lowpass_plus_highpass():
    f = np.linspace(10, 20000, 300)
    s = lr4_sections(500.0, FS)
    pair = signal.sosfreqz(s["lowpass"], worN=f, fs=FS)[1] + signal.sosfreqz(s["highpass"], worN=f, fs=FS)[1]
    ap = signal.sosfreqz(allpass_section(500.0, FS), worN=f, fs=FS)[1]
    np.testing.assert_allclose(pair, ap, atol=1e-9)


def test_streaming_kernel_crossover_is_flat():
    cfg = crossover_only(load_preset("speaker4"))
    x = np.zeros(9600)
    x[100] = 1.0
    y = MultibandProcessor(cfg).process_aligned(x)
    spec = np.fft.rfft(y[100:], 1 << 15)
    assert np.max(np.abs(20 * np.log10(np.abs(spec[1:])))) < 0.01


def test_output_does_not_depend_on_block_size():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(6000) * 0.8
    cfg = load_preset("speaker4")
    outs = []
    for block in (1, 7, 64, 480, 6000):
        proc = MultibandProcessor(cfg)
        outs.append(np.concatenate([proc.process(x[i : i + block]) for i in range(0, x.size, block)]))
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


def test_compressor_static_curve_has_the_set_ratio_and_soft_knee():
    band = BandDynamics(threshold_db=-20.0, ratio=4.0, knee_db=6.0, makeup_db=2.0)
    below, above = (
        static_curve_db(np.array([-40.0, -10.0, 0.0]), band)[[0, 1]],
        static_curve_db(np.array([0.0]), band),
    )
    assert below[0] == pytest.approx(-38.0)  # below the knee: unity gain + makeup
    assert above[0] - below[1] == pytest.approx(10.0 / 4.0)  # 10 dB more input → 2.5 dB more output
    knee = static_curve_db(np.array([-20.0]), band)[0]
    assert pytest.approx(knee) == -20.0 + 2.0 - 6.0 / 4 * (1 - 1 / 4) / 2  # knee midpoint: −(1−1/R)·W/8


def test_steady_tone_settles_on_the_static_curve():
    band = BandDynamics(
        threshold_db=-20.0, ratio=4.0, knee_db=0.0, attack_ms=1, release_ms=20, makeup_db=0, limit_db=0
    )
    cfg = MbdpConfig(crossovers_hz=(), bands=(band,), ceiling_dbtp=20.0)
    t = np.arange(24000) / FS
    y = MultibandProcessor(cfg).process_aligned(0.5 * np.sin(2 * np.pi * 1000 * t))  # peak −6 dB
    out_db = 20 * np.log10(np.max(np.abs(y[-4800:])))
    assert out_db == pytest.approx(-20 + (-6.02 + 20) / 4, abs=0.3)


def test_band_limiter_caps_a_band():
    band = BandDynamics(
        threshold_db=0.0, ratio=1.0, knee_db=0.0, makeup_db=0.0, limit_db=-12.0, limit_attack_ms=0.1
    )
    cfg = MbdpConfig(crossovers_hz=(), bands=(band,), ceiling_dbtp=20.0)
    t = np.arange(24000) / FS
    y = MultibandProcessor(cfg).process_aligned(0.9 * np.sin(2 * np.pi * 200 * t))
    assert 20 * np.log10(np.max(np.abs(y[-4800:]))) == pytest.approx(-12.0, abs=0.5)


def test_true_peak_limiter_holds_the_ceiling_on_hot_input():
    rng = np.random.default_rng(3)
    cfg = dataclasses.replace(load_preset("speaker4"), ceiling_dbtp=-3.0)
    t = np.arange(24000) / FS
    x = 3.0 * (
        np.sin(2 * np.pi * 55 * t) + 0.5 * np.sin(2 * np.pi * 11000 * t + 1.0)
    ) + 0.5 * rng.standard_normal(t.size)
    y = MultibandProcessor(cfg).process_aligned(x)
    assert 20 * np.log10(true_peak(x)) > 6.0
    assert 20 * np.log10(true_peak(y)) <= -3.0 + 0.2


def test_latency_is_reported_and_quiet_signal_passes_unchanged():
    cfg = dataclasses.replace(crossover_only(load_preset("speaker4")), ceiling_dbtp=-1.0)
    proc = MultibandProcessor(cfg)
    x = np.zeros(2000)
    x[10] = 0.1
    y = proc.process(x)
    assert int(np.argmax(np.abs(y))) >= 10 + proc.latency - 2  # crossover group delay adds a little
    assert np.max(np.abs(y[: 10 + proc.latency])) < 1e-12


def test_bad_configs_and_inputs_are_refused():
    with pytest.raises(ValueError):
        MbdpConfig(crossovers_hz=(800.0, 120.0), bands=tuple(BandDynamics() for _ in range(3)))
    with pytest.raises(ValueError):
        MbdpConfig(crossovers_hz=(120.0,), bands=(BandDynamics(),))
    with pytest.raises(ValueError):
        MbdpConfig(crossovers_hz=(30000.0,), bands=(BandDynamics(), BandDynamics()))
    with pytest.raises(ValueError):
        MultibandProcessor(load_preset("speaker4")).process(np.array([0.0, np.nan]))
    with pytest.raises(KeyError):
        load_preset("no-such-profile")


def test_every_preset_loads_and_round_trips():
    for name in ("speaker4", "speaker4_sensing", "display2", "display2_sensing"):
        cfg = load_preset(name)
        assert MbdpConfig.from_dict(cfg.to_dict()) == cfg
