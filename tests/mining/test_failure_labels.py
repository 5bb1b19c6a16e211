"""Presence failure points become weak labels with their own sources, beside ingest's implicit ones."""

import datetime as dt

import polars as pl
from dialogue_testkit import T0, Script, learning

from ingest.sessions import session_events
from mining.labels import failure_point_labels, weak_label_table


def curated(tmp_path, script: Script):
    cfg = learning()
    turns, routines, feedback = script.tables()
    d = tmp_path / "curated"
    d.mkdir()
    session_events(turns, routines, feedback, cfg.session_gap_s).write_parquet(d / "session_events.parquet")
    turns.write_parquet(d / "dialogue.parquet")
    routines.write_parquet(d / "routines.parquet")
    feedback.write_parquet(d / "feedback.parquet")
    ends = [T0 + dt.timedelta(seconds=s) for s in range(0, 3000, 1)]  # one window a second on d1
    pl.DataFrame(
        {"window_id": [f"w{k}" for k in range(len(ends))], "device_id": ["d1"] * len(ends), "t_end_utc": ends}
    ).write_parquet(d / "windows.parquet")
    # ingest's implicit labels already hold one of the windows the failure points would label
    pl.DataFrame(
        {"window_id": ["w2000"], "label": [0], "source": ["weak:talking"], "confidence": [0.8]},
        schema={"window_id": pl.String, "label": pl.Int8, "source": pl.String, "confidence": pl.Float64},
    ).write_parquet(d / "weak_labels.parquet")
    return d, cfg


def test_presence_failure_points_label_windows(tmp_path):
    s = Script()
    r = s.motion("d1", 1000)  # nobody there; undone in the app
    s.feedback("d1", 1030, r, "undo")
    s.no_motion("d1", 2000)
    s.turn("d1", 2010, "turn the lights back on")  # a still reader in the dark
    d, cfg = curated(tmp_path, s)
    labels = failure_point_labels(d, cfg)
    by_source = {k: sorted(g["window_id"].to_list()) for (k,), g in labels.group_by("source")}
    assert by_source["weak:presence_false_trigger"] == ["w1000", "w1001", "w997", "w998", "w999"]
    assert len(by_source["weak:presence_missed"]) == 131  # the routine at 2000 - 120 s .. the request at 2010
    false_trigger = labels.filter(pl.col("source") == "weak:presence_false_trigger")
    assert set(false_trigger["label"]) == {0}
    assert set(false_trigger["confidence"]) == {cfg.weak_label_confidence["presence_false_trigger"]}
    assert set(labels.filter(pl.col("source") == "weak:presence_missed")["label"]) == {1}

    table = weak_label_table(d, "field", 0.7, cfg)
    counts = dict(table.group_by("source").len().iter_rows())
    assert counts == {"weak:talking": 1, "weak:presence_false_trigger": 5, "weak:presence_missed": 130}
    assert table["window_id"].is_unique().all()
    assert weak_label_table(d, "field", 0.9999, cfg).is_empty()  # below the floor: not trained on


def test_no_dialogue_tables_no_failure_point_labels(tmp_path):
    assert failure_point_labels(tmp_path, learning()).is_empty()
