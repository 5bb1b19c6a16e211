"""Demodulator, resampler, clutter filter and canceller against the physics they implement."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.canceller import DirectPathCanceller, complement_basis, signature
from runtime.clutter import ClutterFilter
from runtime.demod import demodulate
from runtime.resample import StreamingResampler
from runtime.synthetic import ArrayGeometry, passband_tone, static_channel

C = 343.0


def _peak_hz(x: np.ndarray, fs: float) -> float:
    spectrum = np.abs(np.fft.fft(x * np.hanning(len(x))))
    return float(np.fft.fftfreq(len(x), 1 / fs)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    ("fs", "carrier", "offset"), [(96000, 40000, 250.0), (48000, 20000, -180.0), (44100, 19000, 90.0)]
)
def test_demod_tone_lands_at_offset(fs: int, carrier: int, offset: float) -> None:
    pcm = passband_tone(fs, fs, carrier + offset, n_channels=2, amplitude=0.5)  # 1 s
    baseband = demodulate(pcm, fs, carrier, 2000.0)
    assert baseband.shape == (2, 2000) and baseband.dtype == np.complex64
    middle = baseband[0, 200:-200]
    assert _peak_hz(middle, 2000.0) == pytest.approx(offset, abs=2.0)
    assert np.abs(middle).mean() == pytest.approx(0.5, rel=0.01)  # amplitude kept


def test_demod_mono_and_rejects_bad_input() -> None:
    pcm = passband_tone(9600, 96000, 40100)[0]
    assert demodulate(pcm, 96000, 40000, 2000).shape == (1, 200)
    with pytest.raises(ValueError):
        demodulate(pcm, 96000, 47500, 2000)  # fs < 2 (carrier + 2 kHz)
    with pytest.raises(ValueError):
        demodulate(pcm.astype(np.complex64), 96000, 40000, 2000)
    bad = pcm.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError):
        demodulate(bad, 96000, 40000, 2000)


def test_streaming_resampler_blocks_equal_one_block() -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 3000)) + 1j * rng.standard_normal((2, 3000))).astype(np.complex64)
    whole = StreamingResampler(6000, 2000, 2).process(x)
    resampler = StreamingResampler(6000, 2000, 2)
    cuts = np.sort(rng.choice(np.arange(1, 3000), 40, replace=False))
    pieces = [resampler.process(p) for p in np.split(x, cuts, axis=1)]
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole, atol=1e-5)
    tone = np.exp(2j * np.pi * 300 * np.arange(6000) / 6000).astype(np.complex64)[None]
    out = StreamingResampler(6000, 2000, 1).process(tone)[0, 100:-100]
    assert _peak_hz(out, 2000) == pytest.approx(300, abs=2) and np.abs(out).mean() == pytest.approx(
        1, rel=0.01
    )


def test_clutter_removes_static_and_tracks_slow_drift() -> None:
    fs, n = 2000.0, 20000
    t = np.arange(n) / fs
    drift = np.exp(1j * 2 * np.pi * 0.01 * t)  # temperature: 0.01 Hz phase drift
    moving = 1e-2 * np.exp(2j * np.pi * 100 * t)
    x = (np.array([[2.0 + 1j], [1.0 - 3j]]) * drift + moving).astype(np.complex64)
    residual, _ = ClutterFilter(2, 0.5, fs).process(x)
    static_left = residual[:, 5000:] - moving[5000:]
    assert np.abs(static_left).max() < 0.05 * np.abs(x[:, 0]).min()  # drifting static path down > 26 dB
    motion_kept = np.abs(np.mean(residual[:, 5000:] * moving[5000:].conj(), axis=1)) / 1e-4
    np.testing.assert_allclose(motion_kept, 1.0, atol=0.01)  # 100 Hz motion passes unchanged
    cf = ClutterFilter(2, 0.5, fs)
    pieces = [cf.process(p) for p in np.split(x, [7, 1000, 1001, 12345], axis=1)]
    # other block splits round differently in float32: a few ulp of the static level (about 3)
    np.testing.assert_allclose(np.concatenate([p[0] for p in pieces], axis=1), residual, atol=3e-6)


def test_canceller_removes_rank_one_and_keeps_off_axis() -> None:
    geometry, f0 = ArrayGeometry(), 40000.0
    rng = np.random.default_rng(3)
    static = static_channel(geometry, f0, C, rng)  # direct-path signature
    n = 4000
    wave = np.exp(2j * np.pi * 80 * np.arange(n) / 2000)
    distortion = static[:, None] * wave[None] * 0.1  # rank one, direct-path signature
    off_axis = geometry.steering(60.0, f0, C)[:, None] * wave[None] * 0.01
    statics = np.repeat(static[:, None], n, axis=1)
    canceller = DirectPathCanceller(4)
    after_d = canceller.cancel_samples(distortion, statics)
    after_o = canceller.cancel_samples(off_axis, statics)
    suppression_db = 10 * np.log10(np.sum(np.abs(distortion) ** 2) / np.sum(np.abs(after_d) ** 2))
    loss_db = 10 * np.log10(np.sum(np.abs(off_axis) ** 2) / np.sum(np.abs(after_o) ** 2))
    assert suppression_db >= 20.0
    assert abs(loss_db) <= 3.0
    unit = static / np.linalg.norm(static)
    a = off_axis[:, 0] / np.linalg.norm(off_axis[:, 0])
    assert loss_db == pytest.approx(-10 * np.log10(1 - abs(np.vdot(unit, a)) ** 2), abs=1e-3)


def test_complement_basis_power_identity_and_bypass() -> None:
    rng = np.random.default_rng(4)
    unit = signature(rng.standard_normal((5, 4)) + 1j * rng.standard_normal((5, 4)))
    frames = (rng.standard_normal((5, 4, 16)) + 1j * rng.standard_normal((5, 4, 16))).astype(np.complex64)
    q = complement_basis(unit)  # [5, 3, 4]
    expected = np.sum(np.abs(frames) ** 2, axis=1) - np.abs(np.einsum("fm,fml->fl", unit.conj(), frames)) ** 2
    np.testing.assert_allclose(np.sum(np.abs(q @ frames) ** 2, axis=1), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.abs(q @ unit[:, :, None]), 0, atol=1e-5)
    single = DirectPathCanceller(1)
    assert single.describe()["canceller"] == "bypassed: single microphone"
    x = frames[:, :1]
    assert single.complement_frames(x, unit[:, :1]) is x
    assert DirectPathCanceller(4, enabled=False).describe()["active"] is False


@pytest.mark.parametrize(("offset_hz", "lo_db", "hi_db"), [(700.0, -0.1, 0.1), (1300.0, -200.0, -60.0)])
def test_demod_passband_flat_and_aliases_rejected(offset_hz: float, lo_db: float, hi_db: float) -> None:
    fs = 96000
    baseband = demodulate(passband_tone(fs, fs, 40000 + offset_hz), fs, 40000, 2000.0)[0, 200:-200]
    level_db = 20 * np.log10(np.abs(baseband).mean() / 0.5)
    assert lo_db <= level_db <= hi_db
