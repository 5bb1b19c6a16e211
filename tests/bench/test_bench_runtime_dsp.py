"""bench.runtime's DSP figures that are behaviour, not timing: canceller suppression and walker loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from bench.runtime import _canceller_figures
from runtime.frontend import FrontendConfig
from runtime.synthetic import ArrayGeometry, bass_excursion, playback_distortion, static_channel

PARAMS = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())


def test_bench_canceller_meets_targets_on_synthetic_scene() -> None:
    bench = {
        **PARAMS["bench"]["runtime"],
        "capture_s": 4.0,
        "excursion_mm": [0.3, 1.5],
        "walker_sweep_deg": [30, 180, 30],
    }
    figures = _canceller_figures(FrontendConfig.from_dict(PARAMS["frontend"]), bench, quick=False)
    assert figures["canceller_suppression_db"] >= 20.0
    assert len(figures["canceller_suppression_db_per_volume"]) == 2
    per_angle = figures["walker_loss_db_per_angle"]
    assert figures["walker_loss_db"] == pytest.approx(max(per_angle.values()), abs=1e-3)  # worst, >= 30 deg
    assert figures["walker_loss_db"] == figures["walker_loss_worst_db"] >= figures["walker_loss_db_median"]
    # the plain projection loses the part of a 90 / 180 deg echo along the direct path (aliased array);
    # the gate keeps those echoes whole while no music plays
    for angle in ("90", "180"):
        assert figures["plain_walker_loss_no_music_db_per_angle"][angle] >= 3.0
        assert figures["walker_loss_no_music_db_per_angle"][angle] <= 0.5
        assert figures["walker_loss_db_per_angle"][angle] < figures["plain_walker_loss_db_per_angle"][angle]


def test_playback_distortion_is_rank_one_with_sidebands_at_bass() -> None:
    rng = np.random.default_rng(0)
    geometry = ArrayGeometry()
    static = static_channel(geometry, 40000.0, 343.0, rng)
    distortion = playback_distortion(static, bass_excursion(4000, 2000.0, 1e-3, rng), 40000.0, 343.0)
    singular = np.linalg.svd(distortion, compute_uv=False)
    assert singular[1] / singular[0] < 1e-6
    spectrum = np.abs(np.fft.fft(distortion[0] - distortion[0].mean()))
    peak_hz = abs(np.fft.fftfreq(4000, 1 / 2000.0)[np.argmax(spectrum)])
    assert 40.0 <= peak_hz <= 240.0  # first sidebands sit at the bass partials (or their sums)


def test_room_reflections_bound_the_suppression() -> None:
    from bench.runtime import _suppression_and_loss

    bench = {**PARAMS["bench"]["runtime"], "capture_s": 3.0, "excursion_mm": [1.0], "walker_angles_deg": [60]}
    gated = FrontendConfig.from_dict(PARAMS["frontend"])
    plain = FrontendConfig.from_dict({**PARAMS["frontend"], "canceller_gate_db": -300.0})
    weak_room, _, _ = _suppression_and_loss(plain, bench, False, -40.0)
    strong_room, _, _ = _suppression_and_loss(plain, bench, False, -10.0)
    assert weak_room[0] > strong_room[0] + 15.0  # suppression follows the direct-to-room ratio
    assert 5.0 < strong_room[0] < 25.0
    # the gate projects bins whose energy is direct-path-like: the same suppression while the room's
    # copies are well below the gate (speaker4), little once they reach it (a documented trade-off)
    gated_weak, _, _ = _suppression_and_loss(gated, bench, False, -40.0)
    gated_strong, _, _ = _suppression_and_loss(gated, bench, False, -10.0)
    assert gated_weak[0] >= 20.0
    assert gated_strong[0] < strong_room[0]


def test_dsp_figures_report_the_contract_keys() -> None:
    from bench.runtime import dsp_figures

    params = {
        **PARAMS,
        "bench": {**PARAMS["bench"], "runtime": {**PARAMS["bench"]["runtime"], "capture_s": 6.0}},
    }
    results = dsp_figures(params, quick=True)
    for key in (
        "canceller_suppression_db",
        "walker_loss_db",
        "frontend_realtime_factor",
        "demod_realtime_factor",
    ):
        assert np.isfinite(results[key])
    assert results["frontend_realtime_factor"] > 0 and results["demod_realtime_factor"] > 0
    bad = {
        **params,
        "bench": {**params["bench"], "runtime": {**params["bench"]["runtime"], "capture_s": 2.0}},
    }
    with pytest.raises(ValueError):
        dsp_figures(bad, quick=True)
