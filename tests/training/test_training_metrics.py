"""Counting rules of the evaluation on hand-made truth and detections."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import CaptureOutcome, count_outcomes, onsets_from_present


def outcome(cid: str, duration: float, present_spans: list[tuple[float, float]], hop: float = 0.1):
    times = np.arange(hop, duration + 1e-9, hop)
    present = np.zeros_like(times, bool)
    for a, b in present_spans:
        present |= (times >= a - 1e-9) & (times <= b + 1e-9)
    return CaptureOutcome(cid, duration, times, present, onsets_from_present(times, present))


def ev(cid, t0, t1, etype, presence, motion="none"):
    return {
        "capture_id": cid,
        "t0_s": t0,
        "t1_s": t1,
        "event_type": etype,
        "is_presence": presence,
        "motion_class": motion,
    }


def test_onsets_are_rising_edges():
    times = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    assert onsets_from_present(times, np.array([1, 1, 0, 1, 0], bool)).tolist() == [0.0, 3.0]


def test_false_alarm_rules_and_attribution():
    events = [
        ev("c1", 10.0, 20.0, "walk", True, "major"),
        ev("c1", 30.0, 40.0, "ceiling_fan", False),
        ev("c1", 50.0, 55.0, "typing", True, "minor"),
    ]
    out = outcome(
        "c1",
        100.0,
        [
            (9.5, 12.0),  # onset 0.5 s before a presence event: within 1 s, not a false alarm
            (20.8, 21.5),  # onset 0.8 s after t1: within tolerance
            (22.5, 23.0),  # onset 2.5 s after: false alarm, room empty
            (35.0, 36.0),  # false alarm during the fan
            (80.0, 81.0),  # false alarm, empty
        ],
    )
    m = count_outcomes([out], events)
    assert m["false_alarms"] == 3
    assert m["by_event_type"]["empty"]["false_alarms"] == 2
    assert m["by_event_type"]["ceiling_fan"]["false_alarms"] == 1
    assert m["by_event_type"]["ceiling_fan"]["detections"] == 1
    # hours without presence: 100 s minus 10 s walk and 5 s typing
    assert m["hours_without_presence"] == pytest.approx(85.0 / 3600)
    assert m["false_alarms_per_hour"] == pytest.approx(3 / (85.0 / 3600))
    assert m["recall_major"] == 1.0 and m["recall_minor"] == 0.0
    assert m["n_presence_events"] == 2
    # walk: first present frame inside [10, 21] is at t = 10.0 -> latency 0
    assert m["median_latency_s"] == pytest.approx(0.0, abs=1e-9)
    assert m["by_event_type"]["empty"]["hours"] == pytest.approx(75.0 / 3600)
    assert m["by_event_type"]["walk"] == {
        "hours": pytest.approx(10 / 3600),
        "count": 1,
        "false_alarms": 0,
        "detections": 1,
    }


def test_detection_window_extends_one_second_after_t1_and_latency():
    events = [ev("c", 5.0, 6.0, "walk", True, "major"), ev("c", 20.0, 22.0, "shift", True, "minor")]
    out = outcome("c", 40.0, [(6.8, 7.5), (23.5, 24.0)])  # 0.8 s after t1: hit; 1.5 s after: miss
    m = count_outcomes([out], events)
    assert m["recall_major"] == 1.0
    assert m["recall_minor"] == 0.0
    assert m["median_latency_s"] == pytest.approx(1.8)
    assert m["false_alarms"] == 1  # the onset at 23.5 is 1.5 s after the shift ended


def test_events_of_unevaluated_captures_are_ignored_and_empty_batch():
    m = count_outcomes([outcome("a", 10.0, [])], [ev("b", 1.0, 2.0, "walk", True, "major")])
    assert m["n_presence_events"] == 0 and m["recall_major"] is None
    assert m["false_alarms_per_hour"] == 0.0
    assert m["median_latency_s"] is None
    assert count_outcomes([], [])["false_alarms_per_hour"] is None


def test_overlapping_presence_counted_once_in_hours():
    events = [ev("c", 0.0, 10.0, "walk", True, "major"), ev("c", 5.0, 15.0, "typing", True, "minor")]
    m = count_outcomes([outcome("c", 20.0, [])], events)
    assert m["hours_without_presence"] == pytest.approx(5.0 / 3600)
    assert m["recall_major"] == 0.0


def test_tolerance_boundary_is_inclusive():
    events = [ev("c", 10.0, 20.0, "walk", True, "major")]
    times = np.array([9.0, 21.0, 21.01])
    out = CaptureOutcome("c", 30.0, times, np.array([True, True, True]), np.array([9.0, 21.0, 21.01]))
    assert count_outcomes([out], events)["false_alarms"] == 1  # only 21.01 is more than 1 s away


def test_false_present_time_catches_a_stuck_detector():
    events = [ev("c1", 10.0, 20.0, "walk", True, "major")]
    stuck = count_outcomes([outcome("c1", 60.0, [(0.0, 60.0)])], events)
    assert stuck["false_alarms"] == 1  # one onset at the start: onsets alone look harmless
    # present everywhere except [9, 21] (presence +- 1 s tolerance): 60 - 12 s, in 0.1 s frames
    assert stuck["false_present_hours"] == pytest.approx(48.0 / 3600, abs=0.2 / 3600)
    assert stuck["false_present_fraction"] == pytest.approx(48.0 / 50.0, abs=0.01)
    clean = count_outcomes([outcome("c1", 60.0, [(10.5, 20.5)])], events)
    assert clean["false_present_hours"] == 0.0 and clean["false_alarms"] == 0


def test_latency_only_counts_decisions_made_from_idle():
    events = [ev("c", 5.0, 8.0, "walk_in", True, "major"), ev("c", 8.0, 30.0, "typing", True, "minor")]
    held = count_outcomes([outcome("c", 40.0, [(5.5, 31.0)])], events)  # still present from the walk-in
    assert held["recall_minor"] == 1.0 and held["median_latency_s"] == pytest.approx(0.5)  # the walk-in only
    late = count_outcomes([outcome("c", 40.0, [(5.5, 6.5), (12.0, 31.0)])], events)
    assert late["median_latency_s"] == pytest.approx((0.5 + 4.0) / 2)  # idle from 8 s - 1 s on: typing counts


def test_false_alarms_split_by_entry_kind_when_the_detector_reports_it():
    events = [ev("c1", 10.0, 20.0, "walk", True, "major"), ev("c1", 30.0, 40.0, "hvac", False)]
    base = outcome("c1", 100.0, [(10.0, 12.0), (31.0, 32.0), (35.0, 36.0), (80.0, 81.0)])
    kinds = np.array([True, True, False, False])  # the walk's entry (not a false alarm), then three FAs
    with_kinds = CaptureOutcome(
        base.capture_id, base.duration_s, base.times_s, base.present, base.onset_times_s, kinds
    )
    m = count_outcomes([with_kinds], events)
    assert (m["false_alarms"], m["false_alarms_strict"], m["false_alarms_lenient"]) == (3, 1, 2)
    hours = 90.0 / 3600
    assert m["false_alarms_per_hour_strict"] == pytest.approx(1 / hours)
    assert m["false_alarms_per_hour_lenient"] == pytest.approx(2 / hours)
    without = count_outcomes([base], events)  # e.g. CFAR: no kinds, no split
    assert without["false_alarms_strict"] is None and without["false_alarms_per_hour_lenient"] is None
