"""Detector figures of `flywheel bench runtime` (bench.runtime): latency counting, day segments,
fresh-decision frames, and the duty cycling they measure (runtime.detector)."""

from __future__ import annotations

import numpy as np
import pytest
from config_testkit import detector_config

from bench.runtime import _episodes, _outcome, active_segments, latency_stats, observed_frames
from runtime.detector import run_detector
from runtime.labels import MAJOR
from training.metrics import TOLERANCE_S, occupancy_metrics

HOP = 0.032


class Walk:
    """A fleet event stand-in: a walk-in from t0 to t1."""

    event_type, is_presence, motion_class = "walk_in", True, "major"

    def __init__(self, t0: float, t1: float):
        self.t0, self.t1 = t0, t1


def _clip(name: str, present_from: list[tuple[float, float]], walk: Walk, duration: float = 20.0):
    times = (np.arange(int(duration / HOP)) + 2) * HOP  # frame end times
    present = np.zeros(times.size, bool)
    for a, b in present_from:
        present |= (times >= a) & (times < b)
    onsets = times[present & ~np.concatenate([[False], present[:-1]])]
    return _outcome(name, "dev", duration, times, present, onsets), _episodes([walk], 0.0, name)


def test_walk_in_latencies_follow_the_evaluation_rules() -> None:
    clips = [
        _clip("a", [(3.4, 9.0)], Walk(3.0, 8.0)),  # 0.4 s after the walk starts
        _clip("b", [(8.5, 12.0)], Walk(4.0, 7.0)),  # after t1 + tolerance (t1 = 7): missed
        _clip("c", [(5.0, 6.0)], Walk(2.0, 6.0)),  # 3 s after the onset
    ]
    stats = latency_stats(occupancy_metrics(clips)[0])
    times = clips[0][0].times_s
    expected = [times[times >= 3.4][0] - 3.0, times[times >= 5.0][0] - 2.0]
    assert stats["latency_median_s"] == pytest.approx(np.median(expected))
    assert stats["latency_p95_s"] == pytest.approx(np.percentile(expected, 95))
    assert (stats["latency_n"], stats["latency_missed"]) == (2, 1)
    # detection just inside the tolerance after the walk counts, just outside does not
    inside = _clip("d", [(7.0 + TOLERANCE_S - 0.05, 15.0)], Walk(4.0, 7.0))
    outside = _clip("e", [(7.0 + TOLERANCE_S + 0.05, 15.0)], Walk(4.0, 7.0))
    assert latency_stats(occupancy_metrics([inside])[0])["latency_n"] == 1
    assert latency_stats(occupancy_metrics([outside])[0])["latency_missed"] == 1
    assert latency_stats(occupancy_metrics([outside])[0])["latency_median_s"] is None


def test_active_segments_pad_merge_and_clip_to_the_day() -> None:
    spans = [(100.0, 130.0), (150.0, 160.0), (500.0, 505.0), (3595.0, 3700.0)]
    segments = active_segments(spans, 3600.0, pre_s=3.0, post_s=25.0, chunk_s=10.0)
    # 97..155 and 147..185 touch -> chunks 9..19; 497..530 -> 49..53; the last is clipped at the day end
    assert segments == [(9, 19), (49, 53), (359, 360)]
    assert active_segments([], 3600.0, 3.0, 25.0, 10.0) == []


def test_observed_frames_drop_emission_off_and_warm_up_like_the_detector() -> None:
    cfg = detector_config(duty_cycling=True, confirm_s=1.0, emission_off_s=0.5, hold_s=0.2, frame_hop_s=0.1,
                          context_frames=3)  # fmt: skip
    probs = np.zeros((40, 3), np.float32)
    probs[:, 0] = 1.0
    probs[:10] = 0.0
    probs[:10, MAJOR] = 1.0
    trace = run_detector(probs, cfg)
    observed = observed_frames(trace.emission_on, cfg.context_frames)
    # frames 10..14 emission off, 15..16 warm-up: held state, not a fresh decision
    np.testing.assert_array_equal(np.flatnonzero(~observed), np.arange(10, 17))
    assert observed_frames(np.ones(5, bool), 3).all()


def test_duty_cycled_detector_switches_emission_off_for_emission_off_s_after_confirmation() -> None:
    cfg = detector_config(duty_cycling=True, emission_off_s=30.0, confirm_s=2.0, frame_hop_s=HOP)
    probs = np.zeros((2000, 3), np.float32)
    probs[:, MAJOR] = 1.0  # someone moving all along
    trace = run_detector(probs, cfg)
    confirm, off = cfg.frames(2.0), cfg.frames(30.0)
    first_off = int(np.flatnonzero(~trace.emission_on)[0])
    assert first_off == confirm  # presence confirmed after confirm_s (the first frame is present)
    assert not trace.emission_on[first_off : first_off + off].any()
    assert trace.emission_on[first_off + off]
    assert trace.present[first_off : first_off + off].all()  # held while emission is off
    always = run_detector(probs, detector_config(duty_cycling=False, emission_off_s=30.0, frame_hop_s=HOP))
    assert always.emission_on.all()


def test_run_bench_merges_the_dsp_and_detector_figures(monkeypatch) -> None:
    import bench.runtime as bench_runtime

    monkeypatch.setattr(bench_runtime, "dsp_figures", lambda params, quick=False: {"walker_loss_db": 1.0})
    monkeypatch.setattr(bench_runtime, "detector_figures", lambda params, quick=False: {"latency_p95_s": 0.5})
    assert bench_runtime.run_bench({}, quick=True) == {"walker_loss_db": 1.0, "latency_p95_s": 0.5}


def test_quick_overrides_merge_into_the_detector_section() -> None:
    params = {
        "bench": {
            "runtime": {
                "detector": {
                    "train": {"hours": 0.1, "epochs": 8},
                    "day": {"hours": 8.0, "seed": 44},
                    "quick": {"train": {"epochs": 5}, "day": {"hours": 1.5}},
                }
            }
        }
    }
    from bench.models import bench_section

    section = params["bench"]["runtime"]["detector"]
    quick = bench_section(section, quick=True)
    assert quick["train"] == {"hours": 0.1, "epochs": 5} and quick["day"] == {"hours": 1.5, "seed": 44}
    full = bench_section(section, quick=False)
    assert full["day"]["hours"] == 8.0 and "quick" not in full
    assert "quick" not in quick and "quick" in section  # the params themselves are left alone
