"""Selection strategies pick what they promise, spend the budget exactly, never repeat a window."""

import numpy as np
import pytest

from bench.mining import synthetic_context
from mining import strategies
from mining.strategies import (
    MiningContext,
    balance_by_device,
    hard_negatives,
    k_center_greedy,
    nearest_labeled_distance,
    novel,
    novelty_head,
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


# --- novelty: exact nearest-labeled search, pruned head, same picks as the full ranking -----------------


def known_distance_pool(n_pool=3000, n_labeled=400, dim=16, n_devices=3, seed=0):
    """Pool windows at a known distance from an anchor among far-apart labeled windows: (ctx, d_i = radius_i).

    Anchors are hundreds apart, radii at most 10, so each window's nearest labeled window is its own anchor.
    """
    rng = np.random.default_rng(seed)
    anchors = rng.normal(scale=100.0, size=(n_labeled, dim))
    direction = rng.normal(size=(n_pool, dim))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    radius = rng.permutation(np.linspace(0.5, 10.0, n_pool))  # distinct: the answer is unique
    pool = anchors[rng.integers(0, n_labeled, n_pool)] + radius[:, None] * direction
    ctx = make_ctx(
        n=n_pool,
        seed=seed,
        embeddings=pool.astype(np.float32),
        labeled_embeddings=anchors.astype(np.float32),
        device_ids=np.array([f"d{i % n_devices}" for i in range(n_pool)]),
    )
    return ctx, radius


def test_nearest_labeled_distance_matches_a_kd_tree():
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(3)
    pool, labeled = rng.normal(size=(3000, 32)), rng.normal(size=(700, 32))
    expected, _ = cKDTree(labeled).query(pool, k=1)
    np.testing.assert_allclose(nearest_labeled_distance(pool, labeled), expected, rtol=0, atol=1e-9)


def test_novelty_picks_are_the_windows_farthest_from_the_labeled_set():
    ctx, radius = known_distance_pool(n_devices=1)
    np.testing.assert_allclose(
        nearest_labeled_distance(ctx.embeddings, ctx.labeled_embeddings), radius, atol=1e-3
    )
    farthest = np.argsort(-radius)[:25]
    picks = select_with_quotas(ctx, 25, {"novel": 1.0})
    assert [i for i, _ in picks] == farthest.tolist()
    assert {s for _, s in picks} == {"novel"}
    assert novel(ctx)[:25].tolist() == farthest.tolist()
    assert novelty_head(ctx, 25).tolist() == farthest.tolist()


def test_novelty_head_is_a_prefix_of_the_full_balanced_ranking():
    known, _ = known_distance_pool(n_devices=5)
    # exact ties: broken by window index, like the full sort
    known.embeddings[100:110] = known.embeddings[200]
    gaussian = synthetic_context(20000, 32, 2000, 5, 3)  # the bench's kind of pool
    for ctx in (known, gaussian):
        full = balance_by_device(novel(ctx), ctx.device_ids)
        for per_device in (1, 3, 40):
            stats = {}
            head = novelty_head(ctx, per_device, stats=stats)
            assert len(head) == 5 * per_device
            assert balance_by_device(head, ctx.device_ids).tolist() == full[: len(head)].tolist()
            assert stats["alive"][-1] < len(ctx.embeddings) // 4  # most windows were ruled out early
    assert stats["exact"] < len(gaussian.embeddings) // 10  # and never got an exact distance


def test_novelty_head_keeps_every_window_of_a_small_device():
    ctx, _ = known_distance_pool(n_pool=400, n_devices=2)
    ctx.device_ids[:3] = "tiny"  # 3 windows: fewer than the depth asked for
    head = novelty_head(ctx, 5)
    assert set(range(3)) <= set(head.tolist())
    full = balance_by_device(novel(ctx), ctx.device_ids)
    assert balance_by_device(head, ctx.device_ids).tolist() == full[: len(head)].tolist()


def full_ranking_picks(ctx, budget, quotas, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(strategies, "HEADS", {})  # every strategy from its full ranking
        return select_with_quotas(ctx, budget, quotas)


def test_quota_picks_with_the_novelty_head_equal_those_from_the_full_ranking(monkeypatch):
    quotas = {"hard_negative": 0.35, "uncertain": 0.25, "novel": 0.2, "diverse": 0.2}
    for seed in range(3):
        fresh = lambda seed=seed: synthetic_context(6000, 32, 900, 7, seed)  # noqa: E731
        assert select_with_quotas(fresh(), 120, quotas) == full_ranking_picks(
            fresh(), 120, quotas, monkeypatch
        )


def test_novelty_head_deepens_when_earlier_strategies_took_its_windows(monkeypatch):
    def fresh():
        ctx, radius = known_distance_pool(n_pool=2000, n_devices=2, seed=4)
        ctx.p_present[:] = 0.0
        ctx.p_present[np.argsort(-radius)[:150]] = 0.99  # hard negatives take the most novel windows first
        return ctx

    depths = []
    real_head = strategies.novelty_head

    def counting_head(ctx, per_device, **kw):
        depths.append(per_device)
        return real_head(ctx, per_device, **kw)

    quotas = {"hard_negative": 0.6, "novel": 0.4}
    with monkeypatch.context() as m:
        m.setattr(strategies, "HEADS", {"novel": counting_head})
        picks = select_with_quotas(fresh(), 250, quotas)
    assert len(depths) > 1  # the first head was used up by the hard negatives
    assert picks == full_ranking_picks(fresh(), 250, quotas, monkeypatch)
    assert sum(s == "novel" for _, s in picks) == 100


def test_selection_is_deterministic_for_a_seed():
    quotas = {"hard_negative": 0.35, "uncertain": 0.25, "novel": 0.2, "diverse": 0.2}
    first = select_with_quotas(synthetic_context(20000, 32, 2000, 10, 7), 200, quotas)
    again = select_with_quotas(synthetic_context(20000, 32, 2000, 10, 7), 200, quotas)
    other = select_with_quotas(synthetic_context(20000, 32, 2000, 10, 8), 200, quotas)
    assert first == again
    assert first != other
    assert len({i for i, _ in first}) == 200


def test_novelty_without_labeled_windows_is_the_seeded_permutation():
    ctx = make_ctx(labeled_embeddings=np.zeros((0, 4), np.float32))
    expected = np.random.default_rng(0).permutation(200)
    assert novelty_head(ctx, 3).tolist() == expected.tolist()
    assert novel(make_ctx(labeled_embeddings=np.zeros((0, 4), np.float32))).tolist() == expected.tolist()
