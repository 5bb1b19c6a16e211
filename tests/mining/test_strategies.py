"""Selection strategies pick what they promise, spend the budget exactly, never repeat a window."""

import numpy as np
import pytest

from mining.strategies import (
    MiningContext,
    balance_by_device,
    hard_negatives,
    k_center_greedy,
    novel,
    select_with_quotas,
    uncertain,
)


def make_ctx(n=200, seed=0, **overrides):
    rng = np.random.default_rng(seed)
    p_major = rng.random(n) * 0.5
    fields = dict(
        p_present=np.clip(p_major + rng.random(n) * 0.3, 0, 1),
        p_major=p_major,
        embeddings=rng.normal(size=(n, 4)).astype(np.float32),
        labeled_embeddings=rng.normal(size=(50, 4)).astype(np.float32),
        weak_none=np.zeros(n, bool),
        weak_present=np.zeros(n, bool),
        device_ids=np.array([f"d{i % 4}" for i in range(n)]),
        strict_threshold=0.8,
        lenient_threshold=0.5,
        uncertainty_band=0.1,
        rng=np.random.default_rng(seed),
    )
    fields.update(overrides)
    return MiningContext(**fields)


def test_hard_negatives_prefer_confident_detections_in_empty_rooms():
    ctx = make_ctx()
    ctx.p_present[[3, 7]] = 0.99
    ctx.weak_none[3] = True  # dialogue says empty
    ctx.weak_present[7] = True  # dialogue says someone talked: not a false alarm
    order = hard_negatives(ctx)
    assert order[0] == 3
    assert 7 not in order


def test_uncertain_stays_inside_the_band():
    ctx = make_ctx()
    picked = uncertain(ctx)
    d = np.minimum(np.abs(ctx.p_major[picked] - 0.8), np.abs(ctx.p_present[picked] - 0.5))
    assert np.all(d <= 0.1) and np.all(np.diff(d) >= 0)


def test_novel_ranks_the_far_away_window_first():
    ctx = make_ctx()
    ctx.embeddings[11] = 100.0
    assert novel(ctx)[0] == 11


def test_k_center_greedy_covers_separated_clusters():
    rng = np.random.default_rng(1)
    centers = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], float)
    points = np.concatenate([c + rng.normal(scale=0.1, size=(30, 2)) for c in centers])
    picks = k_center_greedy(points, 4, rng)
    assert sorted({int(i) // 30 for i in picks}) == [0, 1, 2, 3]


def test_select_with_quotas_spends_budget_without_repeats():
    ctx = make_ctx()
    picks = select_with_quotas(ctx, 40, {"hard_negative": 0.5, "uncertain": 0.25, "novel": 0.25})
    idx = [i for i, _ in picks]
    assert len(idx) == 40 and len(set(idx)) == 40
    assert {s for _, s in picks} <= {"hard_negative", "uncertain", "novel", "random_fill"}


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="unknown strategies"):
        select_with_quotas(make_ctx(), 10, {"magic": 1.0})


def test_balance_by_device_round_robins():
    order = np.array([0, 1, 2, 3, 4, 5])
    devices = np.array(["a", "a", "a", "b", "b", "c"])
    assert balance_by_device(order, devices).tolist() == [0, 3, 5, 1, 4, 2]
