"""Front-end: velocity axis physics, streaming == batch, framing, config round trip, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from config_testkit import frontend_config

from runtime.frontend import (
    FrontendConfig,
    StreamingFrontend,
    extract_features,
    frame_end_times,
    velocity_axis,
)

CFG = frontend_config(level_reference="absolute")  # dB re a unit tone: the levels the tests check


def _tone(n_mics: int, n: int, freq_hz: float, fs: float, amp: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    phases = np.exp(1j * rng.uniform(0, 2 * np.pi, (n_mics, 1)))
    return (amp * phases * np.exp(2j * np.pi * freq_hz * t)).astype(np.complex64)


def _noise(n_mics: int, n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (scale * (rng.standard_normal((n_mics, n)) + 1j * rng.standard_normal((n_mics, n)))).astype(
        np.complex64
    )


@pytest.mark.parametrize("carrier_hz", [20000.0, 40000.0])
@pytest.mark.parametrize("velocity_mps", [-1.5, 0.8, 2.0])
def test_tone_at_doppler_of_v_peaks_at_bin_of_v(carrier_hz: float, velocity_mps: float) -> None:
    f_d = 2 * velocity_mps * carrier_hz / CFG.speed_of_sound_mps
    iq = _tone(1, 4000, f_d, CFG.baseband_fs_hz)
    features = extract_features(iq, CFG.baseband_fs_hz, carrier_hz, CFG)
    peak_v = velocity_axis(CFG)[np.argmax(features[10:].mean(axis=0))]
    bin_width = 2 * CFG.v_max_mps / (CFG.n_velocity_bins - 1)
    assert abs(peak_v - velocity_mps) <= bin_width / 2 + 1e-9


def test_same_velocity_gives_same_features_for_any_carrier() -> None:
    feats = []
    for carrier in (20000.0, 40000.0):
        f_d = 2 * 1.0 * carrier / CFG.speed_of_sound_mps
        feats.append(extract_features(_tone(1, 4000, f_d, CFG.baseband_fs_hz), 2000.0, carrier, CFG)[10:])
    peak = [np.argmax(f.mean(axis=0)) for f in feats]
    assert peak[0] == peak[1]


def test_unit_tone_power_is_zero_db() -> None:
    # a tone exactly on an FFT bin and on a velocity bin: v = 0.5 m/s at f0 chosen to match
    velocity = velocity_axis(CFG)[34]
    f_d = 16 * CFG.baseband_fs_hz / CFG.n_fft  # bin 16 = 125 Hz
    carrier = f_d * CFG.speed_of_sound_mps / (2 * velocity)
    features = extract_features(_tone(1, 4000, f_d, CFG.baseband_fs_hz), 2000.0, carrier, CFG)
    assert features[20:, 34].mean() == pytest.approx(0.0, abs=0.1)


@pytest.mark.parametrize("fs_hz", [2000.0, 8000.0])
def test_streaming_equals_batch_random_blocks(fs_hz: float) -> None:
    n = int(3 * fs_hz)
    iq = _noise(4, n, seed=1) + _tone(4, n, 150.0, fs_hz, amp=5.0)
    batch = extract_features(iq, fs_hz, 40000.0, CFG)
    rng = np.random.default_rng(2)
    frontend = StreamingFrontend(CFG, fs_hz, 40000.0, 4)
    outs, i = [], 0
    while i < n:
        step = int(rng.integers(1, 300))
        outs.append(frontend.process(iq[:, i : i + step]))
        i += step
    streamed = np.concatenate(outs)
    assert streamed.shape == batch.shape
    np.testing.assert_allclose(streamed, batch, atol=1e-3)


def test_frame_count_and_times() -> None:
    n = 1000
    feats = extract_features(_noise(2, n, seed=3), 2000.0, 40000.0, CFG)
    assert feats.shape == ((n - CFG.frame_len) // CFG.hop + 1, CFG.n_velocity_bins)
    assert feats.dtype == np.float32
    times = frame_end_times(feats.shape[0], CFG)
    assert times[0] == pytest.approx(CFG.frame_len / CFG.baseband_fs_hz)
    np.testing.assert_allclose(np.diff(times), CFG.hop / CFG.baseband_fs_hz)
    assert extract_features(_noise(2, 100, seed=3), 2000.0, 40000.0, CFG).shape == (0, CFG.n_velocity_bins)


def test_resampled_input_matches_native_rate_tone_peak() -> None:
    f_d = 2 * 1.2 * 40000.0 / CFG.speed_of_sound_mps
    feats = extract_features(_tone(2, 24000, f_d, 8000.0), 8000.0, 40000.0, CFG)
    assert feats.shape[0] == pytest.approx((6000 - CFG.frame_len) // CFG.hop + 1, abs=1)
    peak_v = velocity_axis(CFG)[np.argmax(feats[10:].mean(axis=0))]
    assert abs(peak_v - 1.2) < 0.06


def test_static_clutter_is_removed() -> None:
    iq = np.full((2, 6000), 3 + 4j, np.complex64) + _noise(2, 6000, seed=4, scale=1e-3)
    feats = extract_features(iq, 2000.0, 40000.0, CFG)
    zero_bin = CFG.n_velocity_bins // 2
    assert feats[20:, zero_bin - 1 : zero_bin + 1].max() < 10 * np.log10(25) - 60


def test_config_round_trip_and_validation() -> None:
    assert FrontendConfig.from_dict(CFG.to_dict()) == CFG
    with pytest.raises(ValueError):
        FrontendConfig.from_dict({**CFG.to_dict(), "typo": 1})
    with pytest.raises(ValueError):
        frontend_config(hop=100)  # 50 ms hop
    with pytest.raises(ValueError):
        StreamingFrontend(CFG, 1000.0, 40000.0, 1)  # below baseband rate
    with pytest.raises(ValueError):
        StreamingFrontend(CFG, 2000.0, 80000.0, 1)  # v_max beyond Nyquist
    with pytest.raises(ValueError):
        extract_features(np.zeros(100, np.complex64), 2000.0, 40000.0, CFG)


def test_single_mic_canceller_reports_bypass() -> None:
    assert StreamingFrontend(CFG, 2000.0, 40000.0, 1).describe()["canceller"].startswith("bypassed")
    assert StreamingFrontend(CFG, 2000.0, 40000.0, 4).describe()["canceller"].startswith("active")


def test_approaching_walker_has_positive_velocity_and_nan_is_rejected() -> None:
    from runtime.synthetic import ArrayGeometry, walker_echo

    geometry = ArrayGeometry()
    direct = geometry.steering(0.0, 40000.0, 343.0)[:, None]  # the strong static direct path
    echo = (direct + walker_echo(geometry, 8000, 2000.0, 40000.0, 343.0, 45.0, 1.0, 0.01)).astype(
        np.complex64
    )
    features = extract_features(echo, 2000.0, 40000.0, CFG)[20:]
    v = velocity_axis(CFG)
    power = 10 ** (features / 10)
    assert power[:, v > 0.3].sum() > 100 * power[:, v < -0.3].sum()
    bad = echo.copy()
    bad[1, 50] = np.nan
    with pytest.raises(ValueError):
        extract_features(bad, 2000.0, 40000.0, CFG)


def test_frame_chunking_does_not_change_features(monkeypatch) -> None:
    import runtime.frontend as frontend_module

    iq = _noise(3, 6000, seed=7) + _tone(3, 6000, 120.0, 2000.0, amp=4.0)
    whole = extract_features(iq, 2000.0, 40000.0, CFG)
    monkeypatch.setattr(frontend_module, "FRAME_CHUNK", 7)
    np.testing.assert_allclose(extract_features(iq, 2000.0, 40000.0, CFG), whole, atol=1e-4)


def _walker_scene(gain: float, n_mics: int = 2, seed: int = 3) -> np.ndarray:
    """Strong static direct path plus a weak 1 m/s echo and noise, all scaled by `gain`."""
    n = 6000
    direct = _tone(n_mics, n, 0.0, CFG.baseband_fs_hz, amp=1.0, seed=seed)
    f_d = 2 * 1.0 * 40000.0 / CFG.speed_of_sound_mps
    echo = _tone(n_mics, n, f_d, CFG.baseband_fs_hz, amp=1e-3, seed=seed + 1)
    return (gain * (direct + echo + _noise(n_mics, n, seed + 2, 1e-4))).astype(np.complex64)


def test_carrier_reference_removes_the_emission_level() -> None:
    # calibration moves the emission level by tens of dB between units: re the carrier the features
    # stay put, re a unit tone they move by the same dB (the noise is kept far above POWER_FLOOR)
    carrier = frontend_config(level_reference="carrier")
    absolute = frontend_config(level_reference="absolute")
    quiet, loud = _walker_scene(0.1), _walker_scene(1.0)
    rel = [extract_features(x, 2000.0, 40000.0, carrier)[20:] for x in (quiet, loud)]
    ab = [extract_features(x, 2000.0, 40000.0, absolute)[20:] for x in (quiet, loud)]
    # time-averaged spectra: single noise-only cells come close enough to POWER_FLOOR to move a little
    np.testing.assert_allclose(rel[0].mean(0), rel[1].mean(0), atol=0.05)
    np.testing.assert_allclose(ab[1].mean(0) - ab[0].mean(0), 20.0, atol=0.05)
    # the echo sits 60 dB below the carrier (amplitude 1e-3 against 1)
    peak_v = int(np.argmax(rel[0].mean(0)))
    assert velocity_axis(carrier)[peak_v] == pytest.approx(1.0, abs=0.06)
    assert rel[0][:, peak_v].mean() == pytest.approx(-60.0, abs=1.5)


def test_carrier_reference_does_not_depend_on_the_number_of_mics() -> None:
    carrier = frontend_config(level_reference="carrier")
    two = extract_features(_walker_scene(0.2, n_mics=2), 2000.0, 40000.0, carrier)[20:]
    four = extract_features(_walker_scene(0.2, n_mics=4), 2000.0, 40000.0, carrier)[20:]
    peak = int(np.argmax(two.mean(0)))
    assert four[:, peak].mean() == pytest.approx(two[:, peak].mean(), abs=1.0)


def test_carrier_reference_streams_like_batch_and_validates() -> None:
    # the static path is 60 dB above the echo here, so the clutter filter's float32 block-parallel
    # rounding (runtime.clutter) moves noise-only cells by hundredths of a dB whatever the reference;
    # the carrier reference itself must add no stream/batch difference of its own
    iq = _walker_scene(0.3)
    diffs = {}
    for ref in ("carrier", "absolute"):
        cfg = frontend_config(level_reference=ref)
        batch = extract_features(iq, 2000.0, 40000.0, cfg)
        stream = StreamingFrontend(cfg, 2000.0, 40000.0, iq.shape[0])
        parts = [stream.process(iq[:, a:b]) for a, b in ((0, 777), (777, 3001), (3001, iq.shape[1]))]
        diffs[ref] = np.concatenate(parts) - batch
    np.testing.assert_allclose(diffs["carrier"], diffs["absolute"], atol=1e-3)
    cfg = frontend_config(level_reference="carrier")
    assert FrontendConfig.from_dict(cfg.to_dict()) == cfg
    older = {k: v for k, v in cfg.to_dict().items() if k != "level_reference"}
    assert FrontendConfig.from_dict(older).level_reference == "absolute"  # what older frontend.json meant
    with pytest.raises(ValueError, match="level_reference"):
        frontend_config(level_reference="dbfs")
