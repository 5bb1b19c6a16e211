"""Detector state machine: every transition, config round trips, streaming == batch."""

from __future__ import annotations

import numpy as np
import pytest
from config_testkit import detector_config

from runtime.detector import RARE_EVENT_THRESHOLD_KEY, Detector, DetectorConfig, run_detector

HOP = 0.1  # 10 frames per second keeps the arithmetic readable
NONE_P = (1.0, 0.0, 0.0)
MINOR_P = (0.3, 0.6, 0.1)
MAJOR_P = (0.0, 0.1, 0.9)
BORDER_P = (0.4, 0.3, 0.3)  # minor + major = 0.6: lenient only


def _cfg(**kw: object) -> DetectorConfig:
    base = dict(
        strict_threshold=0.8,
        lenient_threshold=0.5,
        occupied_window_s=3.0,
        hold_s=0.5,
        confirm_s=1.0,
        emission_off_s=0.0,
        duty_cycling=False,
        frame_hop_s=HOP,
        context_frames=1,
        lenient_reentry=True,
    )
    return detector_config(**{**base, **kw})


def _probs(*runs: tuple[tuple[float, float, float], int]) -> np.ndarray:
    return np.concatenate([np.tile(p, (n, 1)) for p, n in runs]).astype(np.float32)


def test_strict_threshold_enters_presence_and_minor_alone_does_not() -> None:
    trace = run_detector(_probs((NONE_P, 5), (MINOR_P, 10), (MAJOR_P, 1), (NONE_P, 2)), _cfg())
    assert not trace.present[:15].any()  # minor motion in a room not known to be occupied
    assert trace.present[15]
    np.testing.assert_array_equal(trace.onsets, [15])


def test_hold_keeps_presence_then_releases() -> None:
    trace = run_detector(_probs((MAJOR_P, 1), (NONE_P, 10)), _cfg(hold_s=0.5))
    # last positive at frame 0; present while frames since <= 5
    np.testing.assert_array_equal(trace.present, [True] * 6 + [False] * 5)
    assert run_detector(_probs((MAJOR_P, 1), (NONE_P, 3)), _cfg(hold_s=0.0)).present.tolist() == [
        True,
        False,
        False,
        False,
    ]


def test_lenient_threshold_keeps_presence_while_occupied() -> None:
    probs = _probs((MAJOR_P, 1), (BORDER_P, 20))
    trace = run_detector(probs, _cfg(occupied_window_s=3.0, hold_s=0.0))
    assert trace.present.all()
    np.testing.assert_array_equal(trace.onsets, [0])


def test_lenient_threshold_reenters_within_window_but_not_after() -> None:
    cfg = _cfg(occupied_window_s=2.0, hold_s=0.0)
    # major at 0, silence, minor at frame 10 (1 s later: still occupied) -> re-entry
    within = run_detector(_probs((MAJOR_P, 1), (NONE_P, 9), (MINOR_P, 1)), cfg)
    np.testing.assert_array_equal(within.onsets, [0, 10])
    # minor at frame 30 (3 s after the last major: window over) -> no presence
    after = run_detector(_probs((MAJOR_P, 1), (NONE_P, 29), (MINOR_P, 3)), cfg)
    np.testing.assert_array_equal(after.onsets, [0])
    assert not after.present[30:].any()


def test_each_onset_says_whether_it_was_an_entry_or_a_lenient_re_entry() -> None:
    cfg = _cfg(occupied_window_s=2.0, hold_s=0.0)
    probs = _probs((MAJOR_P, 1), (NONE_P, 9), (MINOR_P, 1), (NONE_P, 30), (MAJOR_P, 2), (NONE_P, 2))
    trace = run_detector(probs, cfg)
    np.testing.assert_array_equal(trace.onsets, [0, 10, 41])
    np.testing.assert_array_equal(trace.onset_strict, [True, False, True])


def test_duty_cycling_switches_emission_off_and_holds_state() -> None:
    cfg = _cfg(duty_cycling=True, confirm_s=1.0, emission_off_s=0.5, hold_s=0.2, context_frames=3)
    trace = run_detector(_probs((MAJOR_P, 10), (NONE_P, 30)), cfg)
    # 10 present frames confirm -> frames 10..14 off, frames 15..16 warm-up (context-1), then decide
    assert trace.emission_on[:10].all()
    assert not trace.emission_on[10:15].any()
    assert trace.emission_on[15:].all()
    assert trace.present[10:17].all()  # held while emission is off and during warm-up
    # clocks frozen while off: hold 0.2 s = 2 frames after the last positive (frame 9) -> frames 17, 18
    assert trace.present[17:19].all() and not trace.present[19:].any()
    np.testing.assert_array_equal(trace.onsets, [0])


def test_duty_cycling_repeats_while_presence_lasts_and_off_when_disabled() -> None:
    cfg = _cfg(duty_cycling=True, confirm_s=0.5, emission_off_s=0.3, context_frames=1)
    trace = run_detector(_probs((MAJOR_P, 40)), cfg)
    off_starts = np.flatnonzero(np.diff(trace.emission_on.astype(int)) == -1) + 1
    np.testing.assert_array_equal(off_starts, [5, 13, 21, 29, 37])  # 5 on, 3 off, repeat
    assert run_detector(_probs((MAJOR_P, 40)), _cfg(duty_cycling=False, emission_off_s=1.0)).emission_on.all()


def test_streaming_step_equals_run_detector_and_config_round_trip() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1, 1], size=500).astype(np.float32)
    cfg = _cfg(duty_cycling=True, emission_off_s=0.4, context_frames=4)
    trace = run_detector(probs, cfg)
    detector = Detector(cfg)
    stepped = np.array([detector.step(p)[0] for p in probs])
    np.testing.assert_array_equal(stepped, trace.present)
    assert DetectorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        DetectorConfig.from_dict({"strict_threshold": 0.8, "bogus": 1})
    with pytest.raises(ValueError, match="missing key 'hold_s'"):  # no code default copies params.yaml
        DetectorConfig.from_dict({k: v for k, v in cfg.to_dict().items() if k != "hold_s"})


def test_a_bundles_detector_json_drops_the_rare_event_threshold_and_nothing_else() -> None:
    cfg = _cfg()
    assert DetectorConfig.from_json({**cfg.to_dict(), RARE_EVENT_THRESHOLD_KEY: 0.7}) == cfg
    with pytest.raises(ValueError, match="unknown key 'bogus'"):
        DetectorConfig.from_json({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(ValueError):
        run_detector(np.zeros((4, 2)), cfg)


def test_from_params_derives_hop_and_context() -> None:
    params = {
        "frontend": {"hop": 64, "baseband_fs_hz": 2000.0},
        "ingest": {"context_frames": 32},
        "detector": {
            "strict_threshold": 0.7,
            "lenient_threshold": 0.4,
            "occupied_window_s": 60.0,
            "hold_s": 5.0,
            "confirm_s": 2.0,
            "emission_off_s": 0.0,
            "duty_cycling": False,
        },
    }
    cfg = DetectorConfig.from_params(params)
    assert (
        cfg.frame_hop_s == pytest.approx(0.032) and cfg.context_frames == 32 and cfg.strict_threshold == 0.7
    )


def test_vectorised_state_machine_equals_the_streaming_one_on_random_probs() -> None:
    from runtime.detector import run_detector_stepwise

    rng = np.random.default_rng(0)
    for _ in range(40):
        n = int(rng.integers(1, 2500))
        raw = np.repeat(rng.random((n // 5 + 1, 3)) ** rng.uniform(0.3, 3), 5, axis=0)[:n]
        probs = (raw / raw.sum(1, keepdims=True)).astype(np.float32)
        cfg = detector_config(
            strict_threshold=float(rng.uniform(0.2, 0.9)),
            lenient_threshold=float(rng.uniform(0.1, 0.6)),
            occupied_window_s=float(rng.uniform(0, 5)),
            hold_s=float(rng.uniform(0, 2)),
            lenient_reentry=bool(rng.random() < 0.5),
        )
        fast, slow = run_detector(probs, cfg), run_detector_stepwise(probs, cfg)
        assert np.array_equal(fast.present, slow.present)
        assert np.array_equal(fast.onsets, slow.onsets)
        assert np.array_equal(fast.onset_strict, slow.onset_strict)


def test_without_lenient_reentry_only_a_strict_positive_starts_presence() -> None:
    hop = 0.1
    probs = np.zeros((80, 3), np.float32)
    probs[:, 0] = 1.0
    probs[5] = (0.0, 0.0, 1.0)  # strict positive: presence starts
    probs[6:20] = (0.2, 0.8, 0.0)  # lenient positives hold it
    probs[40:45] = (0.2, 0.8, 0.0)  # after a lapse: lenient alone
    base = detector_config(
        hold_s=0.5, occupied_window_s=10.0, frame_hop_s=hop, context_frames=1, lenient_reentry=True
    )
    reenter = run_detector(probs, base)
    hold_only = run_detector(probs, detector_config(**{**base.to_dict(), "lenient_reentry": False}))
    assert reenter.present[5:25].all() and hold_only.present[5:25].all()  # held through the minor motion
    assert reenter.present[40:45].all() and list(reenter.onset_strict) == [True, False]
    assert not hold_only.present[30:].any() and list(hold_only.onsets) == [5]
    # an old detector.json without the key keeps re-entering presence
    assert DetectorConfig.from_dict(
        {k: v for k, v in base.to_dict().items() if k != "lenient_reentry"}
    ).lenient_reentry
