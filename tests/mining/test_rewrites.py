"""Rewrite mining: an absorbing chain solved by hand, and rewrites mined from scripted rephrase chains."""

import numpy as np
import pytest
from dialogue_testkit import Script, learning

from ingest.sessions import session_events
from mining.rewrites import chain_from_paths, mine_rewrites, request_paths, win_loss

# a: the failing utterance, b: its rewrite, c: a worse follow-up of b
PATHS = [
    (["a", "b"], "success"),
    (["a", "b"], "success"),
    (["a", "a", "b"], "success"),  # the user repeated a first
    (["a"], "abandon"),
    (["a"], "abandon"),
    (["b"], "success"),
    (["b", "c"], "abandon"),
    (["c"], "success"),
]


def test_absorption_probabilities_match_the_fundamental_matrix_by_hand():
    chain = chain_from_paths(PATHS)
    assert chain.states == ["a", "b", "c"]
    # counts out of a: a->a 1, a->b 3, a->abandon 2; b: b->c 1, b->success 4; c: success 1, abandon 1
    q = np.array([[1 / 6, 3 / 6, 0], [0, 0, 1 / 5], [0, 0, 0]])
    r = np.array([[0, 2 / 6], [4 / 5, 0], [1 / 2, 1 / 2]])
    np.testing.assert_allclose(chain.q, q)
    np.testing.assert_allclose(chain.r, r)
    # N = (I - Q)^-1 by hand: N_aa = 1/(1 - 1/6) = 1.2, N_ab = 1.2 * 0.5, N_ac = N_ab * 0.2, N_bc = 0.2
    n = np.array([[1.2, 0.6, 0.12], [0, 1, 0.2], [0, 0, 1]])
    np.testing.assert_allclose(chain.fundamental(), n)
    # B = N R: from b 0.8 + 0.2 * 0.5 = 0.9 success; from a 0.6 * 0.9 = 0.54 success
    b = chain.absorption()
    np.testing.assert_allclose(b, [[0.54, 0.46], [0.9, 0.1], [0.5, 0.5]])
    np.testing.assert_allclose(b.sum(axis=1), 1.0)


def test_the_rewrite_most_likely_to_succeed_with_enough_support():
    rewrites = mine_rewrites(PATHS, min_support=3, min_gain=0.1)
    assert rewrites == [
        {"utterance": "a", "rewrite": "b", "support": 3, "p_success": pytest.approx(0.54),
         "p_success_rewrite": pytest.approx(0.9)}
    ]  # fmt: skip
    assert mine_rewrites(PATHS, min_support=4, min_gain=0.1) == []  # too few chains show it
    assert mine_rewrites(PATHS, min_support=1, min_gain=0.5) == []  # c from b: worse, never a rewrite
    with pytest.raises(ValueError, match="ends in 'maybe'"):
        chain_from_paths([(["a"], "maybe")])


def test_request_paths_from_logs_and_win_loss():
    s = Script()
    for k in range(3):  # three devices mishear the same phrase; the rephrase works
        s.turn(f"d{k}", 100, "turn of the flights", asr=0.5, response="Sorry, I didn't get that.")
        s.turn(f"d{k}", 105, "Switch the lights  off", response="Okay.")
    s.turn("d0", 1000, "turn of the flights", asr=0.5, response="Sorry, I didn't get that.")  # gave up
    cfg = learning()
    turns, routines, feedback = s.tables()
    paths = request_paths(session_events(turns, routines, feedback, cfg.session_gap_s), turns, cfg)
    assert sorted(paths) == sorted(
        [(["turn of the flights", "switch the lights off"], "success")] * 3
        + [(["turn of the flights"], "abandon")]
    )
    best = mine_rewrites(paths, 3, 0.1)
    assert [(r["utterance"], r["rewrite"], r["support"]) for r in best] == [
        ("turn of the flights", "switch the lights off", 3)
    ]
    assert best[0]["p_success"] == pytest.approx(0.75)
    assert win_loss([True] * 17 + [False] * 2) == pytest.approx(8.5)
    assert win_loss([True]) is None
