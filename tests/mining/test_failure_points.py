"""Failure-point isolation on scripted sessions of each failure kind, and its scoring functions."""

import numpy as np
import pytest
from dialogue_testkit import Script, learning

from ingest.sessions import session_events
from mining.failure_points import (
    FAILURE_POINTS,
    confusion_matrix,
    isolate,
    overall_accuracy,
    per_class_scores,
)

WRONG = "Sorry, I didn't get that."


def isolated(script: Script) -> dict[str, str]:
    """evidence event id → isolated failure point (one session each in these scripts)."""
    cfg = learning()
    turns, routines, feedback = script.tables()
    events = session_events(turns, routines, feedback, cfg.session_gap_s)
    table = isolate(events, turns, routines, feedback, cfg)
    return dict(zip(table["evidence_event_id"], table["failure_point"], strict=True))


def test_each_failure_kind_is_isolated():
    s, want = Script(), {}
    # false wake: a lone fragment, badly recognised, cut off
    want[s.turn("d1", 0, "uh", asr=0.3, nlu=0.2, response=WRONG, barge_in=True)] = "false_wake"
    # asr: a misheard request, rephrased, misheard again, given up
    s.turn("d1", 1000, "turn of the flights", asr=0.55, response=WRONG)
    want[s.turn("d1", 1006, "turn of the flights", asr=0.5, response=WRONG)] = "asr"
    # nlu: heard right, understood wrong, abandoned
    want[s.turn("d1", 2000, "dim the lights to 40 percent", asr=0.95, nlu=0.3, response=WRONG)] = "nlu"
    # result: heard and understood, unhelpful answer, the user rephrases and gives up
    s.turn("d1", 3000, "how tall is the eiffel tower", response="I don't know that one.")
    want[s.turn("d1", 3005, "eiffel tower height", response="I don't know that one.")] = "result"
    # recovered: misheard first, the rephrase worked -> not a failure
    s.turn("d1", 4000, "what's the whether like", asr=0.5, response=WRONG)
    want[s.turn("d1", 4006, "weather forecast please", response="It's 14 degrees.")] = "correct"
    # a happy barge-in on a fine answer
    want[s.turn("d1", 5000, "what's in the news", response="Headlines.", barge_in=True)] = "correct"
    # presence false trigger: a motion routine on an empty room, undone; nobody talked nearby
    r = s.motion("d1", 6000)
    s.feedback("d1", 6030, r, "undo")
    want[r] = "presence_false_trigger"
    # a thumbs down on a routine while someone was talking right there: not the detector's fault
    r2 = s.motion("d1", 8000)
    s.turn("d1", 8020, "set a timer for 5 minutes", response="Timer set.")
    s.feedback("d1", 9000, r2, "thumbs_down")
    want[r2] = "correct"
    # presence missed: lights off on a still reader, who asks for them back
    s.no_motion("d1", 10000)
    want[s.turn("d1", 10008, "turn the lights back on")] = "presence_missed"
    # presence missed on arrival: nobody switched the lights on
    want[s.turn("d1", 12000, "turn on the lights")] = "presence_missed"
    # no friction at all: not isolated
    s.turn("d1", 14000, "what's the weather like", response="Cloudy.")
    got = isolated(s)
    assert got == want
    assert set(want.values()) == set(FAILURE_POINTS)


def test_the_earliest_failure_of_a_session_wins():
    s = Script()
    s.turn("d1", 0, "uh", asr=0.2, nlu=0.1, response=WRONG, barge_in=True)  # a false wake first ...
    s.no_motion("d1", 10)  # ... then the lights go off on a reader, who asks for them back
    s.turn("d1", 20, "turn the lights back on")
    assert list(isolated(s).values()) == ["false_wake"]
    s = Script()
    s.no_motion("d1", 0)  # the detector failed here, at the lights-off ...
    s.turn("d1", 10, "uh", asr=0.2, nlu=0.1, response=WRONG, barge_in=True)  # ... before the false wake
    s.turn("d1", 20, "turn the lights back on")
    assert list(isolated(s).values()) == ["presence_missed"]


def test_scores_from_a_confusion_matrix():
    true = ["asr", "asr", "nlu", "correct"]
    pred = ["asr", "nlu", "nlu", "correct"]
    m = confusion_matrix(true, pred)
    i = {c: k for k, c in enumerate(FAILURE_POINTS)}
    assert m.sum() == 4 and m[i["asr"], i["nlu"]] == 1 and np.trace(m) == 3
    scores = per_class_scores(m)
    assert scores["asr"] == {"support": 2, "accuracy": 0.5, "precision": 1.0}
    assert scores["nlu"] == {"support": 1, "accuracy": 1.0, "precision": 0.5}
    assert scores["result"] == {"support": 0, "accuracy": None, "precision": None}
    assert overall_accuracy(m) == pytest.approx(0.75)
    with pytest.raises(KeyError):
        confusion_matrix(["not-a-class"], ["asr"])


def test_learning_config_takes_the_session_gap_and_refuses_unknown_keys():
    from common.params import load_params
    from fleet.config import REPO_PARAMS
    from mining.failure_points import learning_params

    params = load_params(REPO_PARAMS)
    cfg = learning_params(params)
    assert cfg.session_gap_s == params["ingest"]["sessions"]["gap_s"]
    assert cfg.error_responses == tuple(params["mining"]["self_learning"]["error_responses"])
    params["mining"]["self_learning"]["asr_treshold"] = 0.5
    with pytest.raises(ValueError, match=r"mining\.self_learning: unknown key 'asr_treshold'"):
        learning_params(params)
