"""Gated direct-path canceller and the block-parallel clutter filter of the front-end."""

from __future__ import annotations

import numpy as np
import pytest
from config_testkit import frontend_config

from runtime.canceller import DirectPathCanceller, bin_powers, complement_basis, power_sum, signature
from runtime.clutter import ClutterFilter
from runtime.frontend import FrontendConfig, extract_features, velocity_axis
from runtime.synthetic import ArrayGeometry, static_channel

FS, F0, C = 2000.0, 40000.0, 343.0


def _scene(echo_angle_deg: float, seed: int = 0) -> dict[str, np.ndarray]:
    """4-mic scene: static direct path, a distortion tone along its signature (-0.75 m/s), an echo
    from echo_angle_deg (+1.0 m/s), noise. Returns the parts."""
    rng = np.random.default_rng(seed)
    geometry = ArrayGeometry()
    n = 8000
    t = np.arange(n) / FS
    static = static_channel(geometry, F0, C, rng)
    f_dist, f_echo = 2 * -0.75 * F0 / C, 2 * 1.0 * F0 / C
    parts = {
        "static": np.repeat(static[:, None], n, axis=1),
        "distortion": 0.05 * static[:, None] * np.exp(2j * np.pi * f_dist * t)[None],
        "echo": 0.003
        * geometry.steering(echo_angle_deg, F0, C)[:, None]
        * np.exp(2j * np.pi * f_echo * t)[None],
        "noise": 1e-5 * (rng.standard_normal((4, n)) + 1j * rng.standard_normal((4, n))),
    }
    return {k: v.astype(np.complex64) for k, v in parts.items()}


def _level_db(features: np.ndarray, v_mps: float) -> float:
    column = int(np.argmin(np.abs(velocity_axis(frontend_config()) - v_mps)))
    return float(10 * np.log10(np.mean(10 ** (features[20:, column] / 10))))


def test_gate_projects_distortion_bins_and_passes_an_echo_the_plain_projection_loses() -> None:
    parts = _scene(90.0)  # 90 deg: |u^H a|^2 about 0.8 on this array, the plain projection loses ~7 dB
    iq = sum(parts.values())
    off = extract_features(iq, FS, F0, frontend_config(canceller=False))
    gated = extract_features(iq, FS, F0, frontend_config())
    plain = extract_features(iq, FS, F0, frontend_config(canceller_gate_db=-300.0))
    for cancelled in (gated, plain):
        assert _level_db(off, -0.75) - _level_db(cancelled, -0.75) >= 30.0  # distortion bin projected
    assert abs(_level_db(off, 1.0) - _level_db(gated, 1.0)) <= 0.5  # echo bin passes whole
    assert _level_db(off, 1.0) - _level_db(plain, 1.0) >= 3.0  # what the gate saves


def test_gate_and_describe_by_microphone_count() -> None:
    assert DirectPathCanceller(4, gate_db=10.0).gated
    assert "more than 10 dB" in DirectPathCanceller(4, gate_db=10.0).describe()["canceller"]
    two = DirectPathCanceller(2, gate_db=10.0)  # one complement channel: cannot tell echo from distortion
    assert two.active and not two.gated and "two microphones" in two.describe()["canceller"]
    one = DirectPathCanceller(1, gate_db=10.0)
    assert not one.active and one.describe()["canceller"] == "bypassed: single microphone"
    assert not DirectPathCanceller(4, gate_db=-300.0).gated
    p_perp, p_along = np.array([[1.0, 1.0]]), np.array([[5.0, 20.0]])
    np.testing.assert_array_equal(
        DirectPathCanceller(4, gate_db=10.0).keep_along(p_perp, p_along), [[True, False]]
    )
    np.testing.assert_allclose(DirectPathCanceller(4, gate_db=10.0).combine(p_perp, p_along), [[6.0, 1.0]])
    np.testing.assert_allclose(DirectPathCanceller(2, gate_db=10.0).combine(p_perp, p_along), [[1.0, 1.0]])
    np.testing.assert_allclose(DirectPathCanceller(1).combine(p_perp, p_along), [[6.0, 21.0]])
    iq = sum(_scene(60.0).values())[:1]
    assert FrontendConfig.from_dict(frontend_config().to_dict()).canceller_gate_db == 10.0
    older = {k: v for k, v in frontend_config().to_dict().items() if k != "canceller_gate_db"}
    assert not DirectPathCanceller(4, gate_db=FrontendConfig.from_dict(older).canceller_gate_db).gated
    np.testing.assert_allclose(  # one mic: identical features whatever the canceller settings
        extract_features(iq, FS, F0, frontend_config()),
        extract_features(iq, FS, F0, frontend_config(canceller=False)),
    )


def test_bin_powers_split_the_total_and_keep_precision_under_a_strong_direct_component() -> None:
    rng = np.random.default_rng(3)
    unit = signature(rng.standard_normal((6, 4)) + 1j * rng.standard_normal((6, 4)))
    small = (rng.standard_normal((6, 4, 9)) + 1j * rng.standard_normal((6, 4, 9))) * 1e-4
    spectra = (unit[:, :, None] * rng.standard_normal((6, 1, 9)) + small).astype(np.complex64)
    p_perp, p_along = bin_powers(spectra.copy(), unit)
    total = power_sum(spectra.copy())
    np.testing.assert_allclose(p_perp + p_along, total, rtol=1e-5)
    expected_perp = np.sum(np.abs(complement_basis(unit).astype(np.complex128) @ small) ** 2, axis=1)
    np.testing.assert_allclose(p_perp, expected_perp, rtol=1e-2)  # 80 dB below the along power


@pytest.mark.parametrize("tau_s", [0.5, 0.01])
def test_block_clutter_filter_matches_the_recursion_for_any_blocks(tau_s: float) -> None:
    from scipy import signal

    rng = np.random.default_rng(5)
    n = 5003
    x = (0.5 * np.exp(1j * np.linspace(0, 3, n))[None] + 1e-3 * rng.standard_normal((3, n))).astype(
        np.complex64
    )
    a = np.exp(-1.0 / (tau_s * FS))  # the one-pole recursion in float64, starting at the first sample
    x64 = x.astype(np.complex128)
    ref_static, _ = signal.lfilter([1 - a], [1, -a], x64, axis=1, zi=(a * x64[:, :1]))
    residual, static = ClutterFilter(3, tau_s, FS).process(x)
    np.testing.assert_allclose(static, ref_static, atol=2e-6)
    np.testing.assert_allclose(residual, x64 - ref_static, atol=2e-6)
    streaming = ClutterFilter(3, tau_s, FS)
    pieces, i = [], 0
    while i < n:
        step = int(rng.integers(1, 400))
        pieces.append(streaming.process(x[:, i : i + step])[1])
        i += step
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), static, atol=1e-6)
