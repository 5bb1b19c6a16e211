"""The simulated annotator labels a window by the strongest presence motion covering its end time."""

import json

import numpy as np
import polars as pl
import pytest

from mining.oracle import annotate, true_classes


@pytest.fixture
def truth_dir(tmp_path):
    events = [
        {
            "capture_id": "c1",
            "t0_s": 1.0,
            "t1_s": 4.0,
            "event_type": "walk_in",
            "is_presence": True,
            "motion_class": "major",
        },
        {
            "capture_id": "c1",
            "t0_s": 3.0,
            "t1_s": 8.0,
            "event_type": "typing",
            "is_presence": True,
            "motion_class": "minor",
        },
        {
            "capture_id": "c2",
            "t0_s": 0.0,
            "t1_s": 9.0,
            "event_type": "ceiling_fan",
            "is_presence": False,
            "motion_class": "none",
        },
    ]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return tmp_path


def windows(rows):
    return pl.DataFrame(rows, schema=["capture_id", "t_end_s"], orient="row")


def test_true_classes_follow_the_intervals(truth_dir):
    from mining.oracle import load_truth

    w = windows([("c1", 0.5), ("c1", 2.0), ("c1", 3.5), ("c1", 6.0), ("c1", 9.0), ("c2", 5.0), ("c3", 1.0)])
    assert true_classes(w, load_truth(truth_dir)).tolist() == [0, 2, 2, 1, 0, 0, 0]


def test_annotator_error_rate_is_seeded_and_close(truth_dir):
    w = windows([("c1", 6.0)] * 4000)
    a = annotate(w, truth_dir, 0.1, seed=3)
    assert np.array_equal(a, annotate(w, truth_dir, 0.1, seed=3))
    assert 0.08 < np.mean(a != 1) < 0.12
    with pytest.raises(ValueError, match="error_rate"):
        annotate(w, truth_dir, 1.5, seed=3)


def test_rare_event_windows_flag_windows_a_nuisance_covers_at_their_end(truth_dir):
    from mining.oracle import rare_event_windows

    windows = pl.DataFrame(
        {"capture_id": ["c1", "c2", "c2", "c3"], "t_end_s": [2.0, 5.0, 9.5, 1.0], "window_id": list("abcd")}
    )
    # c1: presence only; c2: a fan over [0, 9]; c3: no truth at all
    assert rare_event_windows(windows, truth_dir).tolist() == [False, True, False, False]
    assert rare_event_windows(windows.head(0), truth_dir).tolist() == []
