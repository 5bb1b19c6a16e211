"""The occupancy counting rules (training.metrics) on hand-made streams and degenerate detectors."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import (
    TOLERANCE_S,
    Episode,
    StreamOutcome,
    count_stream,
    det_point,
    occupancy_intervals,
    occupancy_metrics,
    onsets_from_present,
)

HOP = 0.032


def stream(present_fn, duration=120.0, captures=None, strict_onsets=None) -> StreamOutcome:
    """A detector outcome whose present flag at frame time t is present_fn(t)."""
    times = np.arange(1, int(duration / HOP)) * HOP
    present = np.array([bool(present_fn(t)) for t in times])
    onsets = onsets_from_present(times, present)
    kinds = None if strict_onsets is None else np.array([strict_onsets] * len(onsets), bool)
    caps = captures or [("c0", 0.0)]
    return StreamOutcome("s0", "dev-0", duration, times, present, onsets, kinds, caps)


# a visit: walk_in 10-15, typing 15-60 (3 captures of 20 s: 0-20, 20-40, 40-60 ...), walk_out 60-64
VISIT = [
    Episode("e0", "walk_in", True, 10.0, 15.0, "major"),
    Episode("e1", "typing", True, 15.0, 60.0, "minor"),
    Episode("e2", "walk_out", True, 60.0, 64.0, "major"),
]
FAN = Episode("e3", "ceiling_fan", False, 80.0, 110.0)
CAPTURES = [("c0", 0.0), ("c1", 20.0), ("c2", 40.0), ("c3", 60.0), ("c4", 80.0), ("c5", 100.0)]


def metrics(outcome, episodes):
    return occupancy_metrics([(outcome, episodes)])


def test_an_episode_spanning_three_captures_is_one_entry_with_latency_from_its_onset():
    ideal = stream(lambda t: 10.5 <= t <= 69.0, captures=CAPTURES)
    m, rows = metrics(ideal, VISIT)
    assert m["entries"] == 1 and m["entries_detected"] == 1 and m["entry_recall"] == 1.0
    assert m["entry_latency_median_s"] == pytest.approx(10.528 - 10.0, abs=HOP)
    assert m["false_triggers"] == 0 and m["false_absences"] == 0
    entry = [r for r in rows if r["kind"] == "entry"]
    assert len(entry) == 1 and entry[0]["capture_id"] == "c0" and entry[0]["t_s"] == 10.0
    assert m["occupied_hours"] == pytest.approx(54.0 / 3600)


def test_a_continuation_is_not_an_entry():
    # the stream starts with someone already typing (the episode began before the stream)
    episodes = [Episode("e1", "typing", True, -30.0, 40.0, "minor"), Episode("e2", "walk_out", True, 40, 44)]
    m, _ = metrics(stream(lambda t: t < 50.0), episodes)
    assert m["entries"] == 0 and m["entry_recall"] is None
    assert m["false_triggers"] == 0  # present from the start of an occupied stream is not a trigger


def test_latency_is_measured_from_the_physical_onset_one_frame_late_costs_one_frame():
    on_time = stream(lambda t: t >= 10.0 and t <= 70.0)
    late = stream(lambda t: t >= 10.0 + HOP and t <= 70.0)
    a, _ = metrics(on_time, VISIT)
    b, _ = metrics(late, VISIT)
    assert b["entry_latency_median_s"] - a["entry_latency_median_s"] == pytest.approx(HOP, abs=1e-9)
    assert a["entry_latency_median_s"] < HOP


def test_a_departure_then_a_fan_onset_is_a_false_trigger_attributed_to_the_fan():
    detector = stream(lambda t: (10.5 <= t <= 69.0) or (85.0 <= t <= 90.0), captures=CAPTURES)
    m, rows = metrics(detector, [*VISIT, FAN])
    assert m["false_triggers"] == 1
    ft = [r for r in rows if r["kind"] == "false_trigger"]
    assert ft[0]["event_type"] == "ceiling_fan" and ft[0]["capture_id"] == "c4"
    fan = m["false_triggers_by_type"]["ceiling_fan"]
    assert fan["false_triggers"] == 1 and fan["hours"] == pytest.approx(30.0 / 3600)
    assert fan["per_hour"] == pytest.approx(1 / (30.0 / 3600))
    assert m["false_triggers_by_type"]["empty"]["false_triggers"] == 0
    assert "typing" not in m["false_triggers_by_type"]  # presence types have no false triggers


def test_a_lapse_during_a_still_reader_is_a_false_absence():
    reader = [
        Episode("e0", "walk_in", True, 10.0, 15.0, "major"),
        Episode("e1", "still", True, 15.0, 100.0, "minor"),
        Episode("e2", "walk_out", True, 100.0, 104.0, "major"),
    ]
    lapsing = stream(lambda t: (10.5 <= t <= 40.0) or (50.0 <= t <= 110.0))
    m, rows = metrics(lapsing, reader)
    assert m["false_absences"] == 1
    assert [r["event_type"] for r in rows if r["kind"] == "false_absence"] == ["still"]
    assert m["false_triggers"] == 0  # presence coming back while the reader is there is no trigger
    assert m["occupied_absent_fraction"] == pytest.approx((10.0 + 0.5) / 94.0, abs=0.01)
    assert m["false_absences_per_occupied_hour"] == pytest.approx(1 / (94.0 / 3600))


def test_the_hold_after_a_departure_is_neither_a_false_absence_nor_a_trigger():
    held = stream(lambda t: 10.5 <= t <= 64.0 + 5.0)
    m, _ = metrics(held, VISIT)
    assert m["false_absences"] == 0 and m["false_triggers"] == 0
    assert m["empty_present_fraction"] > 0  # but the hold is empty time reported present


def test_degenerate_always_present():
    m, _ = metrics(stream(lambda t: True), [*VISIT, FAN])
    assert m["empty_present_fraction"] == pytest.approx(1.0)
    assert m["false_absences"] == 0 and m["occupied_absent_fraction"] == 0.0
    assert m["false_triggers"] == 1  # one onset, at the start of an empty stream
    assert m["entry_recall"] == 1.0 and m["entries_already_present"] == 1 and m["n_latencies"] == 0
    assert m["degenerate"] == "always present"


def test_degenerate_never_present():
    m, _ = metrics(stream(lambda t: False), [*VISIT, FAN])
    assert m["entry_recall"] == 0.0 and m["entry_latency_median_s"] is None
    assert m["false_triggers"] == 0 and m["false_absences"] == 0
    assert m["occupied_absent_fraction"] == 1.0 and m["empty_present_fraction"] == 0.0
    assert det_point(m, 0.5)["missed_entry_rate"] == 1.0
    assert m["degenerate"] == "never fires"


def test_a_detector_that_works_or_errs_is_not_degenerate():
    one_late = stream(lambda t: 10.5 + 0.032 <= t <= 64.0)  # the visit, a frame late
    assert metrics(one_late, VISIT)[0]["degenerate"] is None
    fan_only = stream(lambda t: 85.0 <= t <= 86.0)  # misses the visitor, fires on the fan
    assert metrics(fan_only, [*VISIT, FAN])[0]["degenerate"] is None


def test_empty_hours_exclude_occupancy_and_its_tolerance_and_device_days_scale():
    m, _ = metrics(stream(lambda t: False), VISIT)
    assert m["empty_hours"] == pytest.approx((120.0 - 54.0 - 2 * TOLERANCE_S) / 3600)
    assert m["device_days"] == pytest.approx(120.0 / 86400)
    many, _ = occupancy_metrics([(stream(lambda t: 85.0 <= t <= 86.0), [])] * 3)
    assert many["false_triggers"] == 3 and many["false_triggers_per_device_day"] == pytest.approx(
        3 / (360 / 86400)
    )


def test_back_to_back_activities_are_one_occupancy_and_overlaps_count_once():
    spans = occupancy_intervals([*VISIT, Episode("x", "reach", True, 20.0, 30.0, "minor"), FAN])
    assert spans == [(10.0, 64.0, 0)]
    two = occupancy_intervals(
        [Episode("a", "walk_through", True, 0.0, 5.0), Episode("b", "walk_through", True, 9.0, 12.0)]
    )
    assert len(two) == 2  # a 4 s gap with nobody there: two visits


def test_false_triggers_split_by_entry_kind_when_known():
    strict = stream(lambda t: 85.0 <= t <= 86.0, strict_onsets=True)
    m, _ = metrics(strict, [])
    assert m["false_triggers_strict"] == 1 and m["false_triggers_lenient"] == 0
    unknown, _ = metrics(stream(lambda t: 85.0 <= t <= 86.0), [])
    assert unknown["false_triggers_strict"] is None


def test_tolerance_around_occupancy_edges_is_inclusive():
    just_before = stream(lambda t: 9.0 <= t <= 70.0)  # onset 1 s before the arrival
    m, _ = metrics(just_before, VISIT)
    assert m["false_triggers"] == 0 and m["entries_already_present"] == 1
    too_early = stream(lambda t: 8.0 <= t <= 70.0)
    m2, _ = metrics(too_early, VISIT)
    assert m2["false_triggers"] == 1


def test_count_stream_rows_carry_device_and_capture():
    counts = count_stream(stream(lambda t: 85.0 <= t <= 86.0, captures=CAPTURES), [FAN])
    assert counts.rows[0]["device_id"] == "dev-0" and counts.rows[0]["capture_id"] == "c4"
    assert counts.rows[0]["t_s"] == pytest.approx(5.024, abs=HOP)


def test_onsets_are_rising_edges():
    times = np.arange(6, dtype=float)
    assert list(onsets_from_present(times, np.array([1, 1, 0, 1, 0, 1], bool))) == [0.0, 3.0, 5.0]
