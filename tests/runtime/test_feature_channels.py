"""Feature channels (runtime.feature_channels): layout, streaming, and the physics each channel reads."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from config_testkit import frontend_config

from runtime.feature_channels import (
    DIRECT_FLOOR_DB,
    ExponentialAverage,
    check_channels,
    power_channel,
    split_channels,
)
from runtime.frontend import FrontendConfig, StreamingFrontend, extract_features, velocity_axis

FS, CARRIER, C = 2000.0, 40000.0, 343.0
ALL = ("power", "direct", "recent", "background")
BASE = frontend_config(level_reference="carrier", recent_tau_s=4.0, background_tau_s=60.0)


def _cfg(*channels: str) -> FrontendConfig:
    return dataclasses.replace(BASE, channels=tuple(channels))


def _steering(n_mics: int, angle_rad: float, radius_m: float = 0.035) -> np.ndarray:
    """Plane-wave phases [M] on a circular array for a wave from angle_rad."""
    mic = 2 * np.pi * np.arange(n_mics) / n_mics
    k = 2 * np.pi * CARRIER / C
    return np.exp(1j * k * radius_m * np.cos(angle_rad - mic))


def _scene(n: int, n_mics: int, echo_angle: float | None, direct_doppler: bool, seed: int = 0) -> np.ndarray:
    """Direct path from angle 0, plus a 1 m/s Doppler component either along the direct path (distortion)
    or from echo_angle, plus white noise: complex64 [M, n]."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    direct = _steering(n_mics, 0.0)
    fd = 2 * 1.0 * CARRIER / C
    tone = np.exp(2j * np.pi * fd * t)
    x = direct[:, None] * np.ones(n)[None]
    if direct_doppler:
        x = x + 0.01 * direct[:, None] * tone[None]
    if echo_angle is not None:
        x = x + 0.01 * _steering(n_mics, echo_angle)[:, None] * tone[None]
    noise = 1e-4 * (rng.normal(size=(n_mics, n)) + 1j * rng.normal(size=(n_mics, n)))
    return (x + noise).astype(np.complex64)


def _walker_bin(cfg: FrontendConfig) -> int:
    return int(np.argmin(np.abs(velocity_axis(cfg) - 1.0)))


def test_power_only_is_the_frontend_as_before_and_power_comes_first() -> None:
    iq = _scene(4000, 4, np.pi / 2, False)
    alone = extract_features(iq, FS, CARRIER, _cfg("power"))
    every = extract_features(iq, FS, CARRIER, _cfg(*ALL))
    assert every.shape == (alone.shape[0], alone.shape[1] * 4)
    np.testing.assert_array_equal(power_channel(every, 4), alone)
    np.testing.assert_array_equal(split_channels(every, 4)[..., 0], alone)
    with pytest.raises(ValueError, match="start with 'power'"):
        check_channels(("direct", "power"))
    with pytest.raises(ValueError, match="unknown feature channel"):
        check_channels(("power", "colour"))
    with pytest.raises(ValueError, match="recent_tau_s"):
        StreamingFrontend(dataclasses.replace(_cfg("power", "recent"), recent_tau_s=None), FS, CARRIER, 4)


def test_streaming_equals_batch_with_every_channel() -> None:
    iq = _scene(3 * 2000, 4, np.pi / 2, True, seed=3)
    cfg = _cfg(*ALL)
    batch = extract_features(iq, FS, CARRIER, cfg)
    rng = np.random.default_rng(4)
    frontend, outs, i = StreamingFrontend(cfg, FS, CARRIER, 4), [], 0
    while i < iq.shape[1]:
        step = int(rng.integers(1, 400))
        outs.append(frontend.process(iq[:, i : i + step]))
        i += step
    streamed = np.concatenate(outs)
    assert streamed.shape == batch.shape
    # the clutter filter's float32 rounding differs with the block size (runtime.clutter): in bins at
    # the noise floor (-94 dB re carrier here) the direct share, a ratio of two noise powers, shows it most
    split_s, split_b = split_channels(streamed, 4), split_channels(batch, 4)
    for c, atol in enumerate((0.05, 0.1, 0.05, 0.05)):
        np.testing.assert_allclose(split_s[..., c], split_b[..., c], atol=atol)


def test_direct_share_tells_distortion_from_an_echo_off_the_direct_path() -> None:
    cfg = _cfg("power", "direct")
    v = _walker_bin(cfg)
    distortion = split_channels(extract_features(_scene(4000, 4, None, True), FS, CARRIER, cfg), 2)
    echo = split_channels(extract_features(_scene(4000, 4, np.pi * 0.6, False), FS, CARRIER, cfg), 2)
    share_distortion = np.median(distortion[40:, v, 1])
    share_echo = np.median(echo[40:, v, 1])
    assert share_distortion > -0.5  # all of it along the direct path
    assert share_echo < share_distortion - 3.0
    assert (distortion[..., 1] <= 0).all() and (distortion[..., 1] >= DIRECT_FLOOR_DB).all()
    # one microphone has no spatial view: every bin reads 0 dB
    one = split_channels(extract_features(_scene(4000, 1, np.pi * 0.6, False), FS, CARRIER, cfg), 2)
    np.testing.assert_allclose(one[..., 1], 0.0, atol=1e-4)


def test_background_cancels_what_stays_and_shows_what_arrives() -> None:
    cfg = _cfg("power", "background")
    v = _walker_bin(cfg)
    n = int(90 * FS)
    steady = split_channels(extract_features(_scene(n, 4, np.pi / 2, False), FS, CARRIER, cfg), 2)
    assert abs(np.median(steady[-300:, v, 1])) < 1.0  # a fan that ran 90 s is background
    quiet = _scene(n, 4, None, False)
    arrival = quiet.copy()
    arrival[:, n - 4000 :] = _scene(n, 4, np.pi / 2, False)[:, n - 4000 :]  # someone in the last 2 s
    late = split_channels(extract_features(arrival, FS, CARRIER, cfg), 2)
    assert np.median(late[-20:, v, 1]) > 20.0


def test_exponential_average_continues_exactly_across_blocks() -> None:
    x = np.random.default_rng(5).random((500, 6))
    whole = ExponentialAverage(2.0, 0.032).process(x)
    parts = ExponentialAverage(2.0, 0.032)
    pieces = np.concatenate([parts.process(x[:1]), parts.process(x[1:77]), parts.process(x[77:])])
    np.testing.assert_array_equal(whole, pieces)
    np.testing.assert_allclose(whole[0], x[0])  # starts as if the first frame had always been there
