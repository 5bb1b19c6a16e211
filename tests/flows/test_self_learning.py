"""Scoring the self-learning against the simulator's truth, and the `flywheel self-learning` command."""

import json

import polars as pl
from dialogue_testkit import Script, learning

from flows.self_learning import score_isolation, score_rewrites, session_truth
from ingest.sessions import session_events
from mining.failure_points import FAILURE_POINTS

WRONG = "Sorry, I didn't get that."


def test_session_truth_is_the_earliest_real_failure_and_scores_count_it():
    s = Script()
    a = s.turn("d1", 0, "what's the weather like")  # fine ...
    b = s.turn("d1", 20, "uh", asr=0.3, response=WRONG, barge_in=True)  # ... then a false wake
    off = s.no_motion("d1", 30)
    back = s.turn("d1", 40, "turn the lights back on")
    c = s.turn("d1", 5000, "stop them music", asr=0.8, response=WRONG)  # misheard, recovered
    d = s.turn("d1", 5005, "pause the music")
    truth = [
        {"event_ids": [a], "failure_point": "correct"},
        {"event_ids": [b], "failure_point": "false_wake"},
        {"event_ids": [off, back], "failure_point": "presence_missed"},
        {"event_ids": [c, d], "failure_point": "correct"},
    ]
    turns, routines, feedback = s.tables()
    events = session_events(turns, routines, feedback, learning().session_gap_s)
    sid = dict(zip(events["event_id"], events["session_id"], strict=True))
    got = session_truth(events, truth)
    assert got == {sid[a]: "false_wake", sid[c]: "correct"}
    isolation = pl.DataFrame({"session_id": [sid[a], sid[c]], "failure_point": ["asr", "correct"]})
    scores = score_isolation(isolation, got)
    assert scores["sessions"] == 2 and scores["accuracy"] == 0.5
    assert scores["per_class"]["false_wake"]["accuracy"] == 0.0
    assert scores["per_class"]["correct"] == {"support": 1, "accuracy": 1.0, "precision": 1.0}
    assert sum(map(sum, scores["confusion"])) == 2 and scores["classes"] == list(FAILURE_POINTS)


def test_a_rewrite_is_correct_when_it_means_the_same_and_works():
    s = Script()
    m1, r1 = s.turn("d1", 0, "stop them music"), s.turn("d1", 5, "pause the music")
    m2, r2 = s.turn("d2", 0, "stop them music"), s.turn("d2", 5, "what's the weather like")
    truth = [
        {"event_ids": [m1, r1], "intent": "music", "components": ["asr", "none"], "failure_point": "correct"},
        {"event_ids": [m2, r2], "intent": "music", "components": ["asr", "asr"], "failure_point": "asr"},
    ]
    turns, _, _ = s.tables()
    rewrites = [
        {"utterance": "stop them music", "rewrite": "pause the music"},
        {"utterance": "stop them music", "rewrite": "what's the weather like"},  # itself misheard
        {"utterance": "stop them music", "rewrite": "never said"},
    ]
    scored = score_rewrites(rewrites, turns, truth)
    assert [r["correct"] for r in scored["rewrites"]] == [True, False, False]
    assert (scored["wins"], scored["losses"], scored["win_loss"]) == (1, 2, 0.5)


def test_self_learning_command_writes_its_report(tmp_path, project_root):
    from typer.testing import CliRunner

    from flows.cli import app

    out = tmp_path / "sl"
    params = str(project_root / "params.yaml")
    args = ["self-learning", "--out", str(out), "--devices", "6", "--hours", "12", "--params", params]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    report = json.loads((out / "self_learning.json").read_text())
    assert report["devices"] == 6 and report["isolation"]["sessions"] > 0
    assert (out / "isolation_confusion.png").stat().st_size > 0
    assert "| presence_missed |" in (out / "self_learning.md").read_text()
    assert "overall accuracy" in res.output
    res = CliRunner().invoke(app, ["self-learning", "--out", str(out), "--raw", str(out)])
    assert res.exit_code == 2 and "both --raw and --truth" in res.output
