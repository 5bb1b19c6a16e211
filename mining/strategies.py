"""Selection strategies: plain functions from pool context to ranked picks, combinable with quotas.

Each strategy takes a `MiningContext` and returns window indices in order of preference.
`select_with_quotas` draws from several strategies without repeats, balanced across devices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mining import novelty
from mining.novelty import nearest_labeled_distance


@dataclass
class MiningContext:
    p_present: np.ndarray  # [N] p(minor) + p(major)
    p_major: np.ndarray  # [N]
    embeddings: np.ndarray  # [N, D]
    labeled_embeddings: np.ndarray  # [M, D] embeddings of what is already labeled
    weak_none: np.ndarray  # [N] bool: implicit feedback says nobody was present
    weak_present: np.ndarray  # [N] bool: implicit feedback says someone was present
    device_ids: np.ndarray  # [N] str
    strict_threshold: float
    lenient_threshold: float
    uncertainty_band: float
    rng: np.random.Generator


def hard_negatives(ctx: MiningContext) -> np.ndarray:
    """Confident detections where the dialogue logs say nobody was there (then where they say nothing)."""
    evidence = np.where(ctx.weak_none, 1.0, np.where(ctx.weak_present, 0.0, 0.5))
    priority = ctx.p_present * evidence
    order = np.argsort(-priority, kind="stable")
    return order[priority[order] > 0.5 * 0.5]


def uncertain(ctx: MiningContext) -> np.ndarray:
    """Windows whose score sits near an operating threshold (strict for major, lenient for minor)."""
    distance = np.minimum(
        np.abs(ctx.p_major - ctx.strict_threshold), np.abs(ctx.p_present - ctx.lenient_threshold)
    )
    order = np.argsort(distance, kind="stable")
    return order[distance[order] <= ctx.uncertainty_band]


def novel(ctx: MiningContext) -> np.ndarray:
    """Windows far (in embedding space) from everything already labeled: nearest-neighbour distance.

    The full ranking of the pool: an exact distance for every window, O(pool x labeled) work.
    `select_with_quotas` uses `novelty_head` instead, which gives the same picks while computing exact
    distances only for the windows that can still be picked.
    """
    if len(ctx.labeled_embeddings) == 0:
        return ctx.rng.permutation(len(ctx.embeddings))
    distance = nearest_labeled_distance(ctx.embeddings, ctx.labeled_embeddings)
    return np.argsort(-distance, kind="stable")


def novelty_head(
    ctx: MiningContext, per_device: int, *, device_codes: np.ndarray | None = None, stats: dict | None = None
) -> np.ndarray:
    """Each device's `per_device` most novel windows, ranked by exact novelty like `novel`.

    `balance_by_device` of this list is exactly the first `per_device` rounds of
    `balance_by_device(novel(ctx))` (round robin takes every device's best first, then every device's second,
    ...), so a quota that fits in those rounds gets the same picks as from the full ranking, at a fraction of
    the cost (mining.novelty.most_novel_per_group). `device_codes`: `novelty.device_codes(ctx.device_ids)`
    when the caller has it already; `stats` as in most_novel_per_group.
    """
    n = len(ctx.embeddings)
    if len(ctx.labeled_embeddings) == 0 or n == 0:
        return ctx.rng.permutation(n)  # as `novel`: nothing labeled, nothing is nearer than anything else
    group = novelty.device_codes(ctx.device_ids) if device_codes is None else device_codes
    return novelty.most_novel_per_group(ctx.embeddings, ctx.labeled_embeddings, group, per_device, stats)


def k_center_greedy(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Pick k points that cover the set: each next pick is the one farthest from all picked so far."""
    n = len(points)
    if n == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    points = np.asarray(points, dtype=np.float32)  # [n, D]
    picked = [int(rng.integers(n))]
    nearest = np.linalg.norm(points - points[picked[0]], axis=1)  # [n]
    for _ in range(min(k, n) - 1):
        nxt = int(np.argmax(nearest))
        if nearest[nxt] <= 0:
            break
        picked.append(nxt)
        nearest = np.minimum(nearest, np.linalg.norm(points - points[nxt], axis=1))
    return np.asarray(picked, dtype=np.int64)


DIVERSE_CANDIDATES = 4096  # k-center greedy runs on at most this many windows (cost O(candidates * picks))
DIVERSE_PICKS = 512


def diverse(ctx: MiningContext, candidates: int = DIVERSE_CANDIDATES) -> np.ndarray:
    """k-center greedy inside the windows the model finds interesting (highest p_present), bounded set."""
    n = len(ctx.p_present)
    if n > candidates:  # top-`candidates` without sorting the whole pool
        top = np.argpartition(-ctx.p_present, candidates - 1)[:candidates]
        interest = top[np.argsort(-ctx.p_present[top], kind="stable")]
    else:
        interest = np.argsort(-ctx.p_present, kind="stable")
    picks = k_center_greedy(ctx.embeddings[interest], min(len(interest), DIVERSE_PICKS), ctx.rng)
    return interest[picks]


def random_order(ctx: MiningContext) -> np.ndarray:
    return ctx.rng.permutation(len(ctx.p_present))


def balanced_random(ctx: MiningContext) -> np.ndarray:
    """Baseline: random within each class the model predicts (major: p_major at the strict threshold,
    minor: p_present at the lenient one, else none), the classes taken in turn, so a budget buys as many
    predicted detections as predicted empty windows (class-balanced random sampling)."""
    predicted = np.where(
        ctx.p_major >= ctx.strict_threshold, 2, np.where(ctx.p_present >= ctx.lenient_threshold, 1, 0)
    )
    order = ctx.rng.permutation(len(predicted))
    cls = predicted[order]
    rank = np.empty(len(order), dtype=np.int64)  # position of each window inside its class
    for c in (0, 1, 2):
        rank[cls == c] = np.arange(int((cls == c).sum()))
    return order[np.lexsort((cls, rank))]  # round robin over the classes: rank first, then class


def uncertainty_only(ctx: MiningContext) -> np.ndarray:
    """Baseline: classic least-confidence sampling on the presence decision, no band, no context."""
    return np.argsort(np.abs(ctx.p_present - 0.5), kind="stable")


# Strategies whose full ranking is costly on a large pool but whose per-device head is cheap: name -> head
# function (ctx, per_device, device_codes) such that balance_by_device(head) is a prefix of
# balance_by_device(full ranking). `select_with_quotas` uses the head, deep enough for its quota.
HEADS: dict[str, Callable[..., np.ndarray]] = {"novel": novelty_head}
HEAD_MIN_DEPTH = 4  # per-device depth of a head's first try


STRATEGIES: dict[str, Callable[[MiningContext], np.ndarray]] = {
    "hard_negative": hard_negatives,
    "uncertain": uncertain,
    "novel": novel,
    "diverse": diverse,
    "random": random_order,
    "uncertainty_only": uncertainty_only,
    "balanced_random": balanced_random,
}


def balance_by_device(order: np.ndarray, device_ids: np.ndarray) -> np.ndarray:
    """Interleave a ranked list round-robin across devices so no single device eats the budget."""
    order = np.asarray(order, dtype=np.int64)
    if len(order) == 0:
        return order
    # vectorised round robin: rank of each entry within its device, then sort by (rank, device name)
    _, device = np.unique(np.asarray(device_ids)[order].astype(str), return_inverse=True)  # sorted names
    by_device = np.argsort(device, kind="stable")  # [n] keeps the ranked order inside each device
    starts = np.searchsorted(device[by_device], device[by_device], side="left")
    rank = np.empty(len(order), dtype=np.int64)
    rank[by_device] = np.arange(len(order)) - starts
    return order[np.lexsort((device, rank))]


def _head_order(
    ctx: MiningContext, head: Callable[..., np.ndarray], need: int, taken: set[int], codes: np.ndarray
) -> np.ndarray:
    """Device-balanced order from a strategy head, deepened until it holds `need` windows not yet taken.

    The head's balanced order is a prefix of the full ranking's, so the first `need` untaken windows, the
    only ones the quota loop reads, are the same as with the full ranking; a head that covers the whole pool
    is the full ranking.
    """
    n_devices = int(codes.max()) + 1 if len(codes) else 1
    per_device = max(HEAD_MIN_DEPTH, -(-2 * max(need, 0) // n_devices))  # 2x: room for windows already taken
    taken_idx = np.fromiter(taken, dtype=np.int64, count=len(taken))
    while True:
        ranked = head(ctx, per_device, device_codes=codes)
        order = balance_by_device(ranked, ctx.device_ids)
        if len(ranked) >= len(codes) or np.count_nonzero(~np.isin(order, taken_idx)) >= need:
            return order
        per_device *= 4


def select_with_quotas(ctx: MiningContext, budget: int, quotas: dict[str, float]) -> list[tuple[int, str]]:
    """Spend `budget` picks across strategies by their quota share, without repeats.

    Budget a strategy cannot use (too few candidates) flows to the next ones; what is left at the end
    goes to random picks, so the whole budget is always spent when the pool is large enough.
    """
    unknown = set(quotas) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"mining.quotas: unknown strategies {sorted(unknown)} (known: {sorted(STRATEGIES)})")
    total = sum(quotas.values())
    if total <= 0:
        raise ValueError("mining.quotas: shares must add up to more than 0")
    taken: set[int] = set()
    picks: list[tuple[int, str]] = []
    carry = 0.0
    codes = None
    for name, share in quotas.items():
        want = round(budget * share / total + carry)
        if name in HEADS:
            codes = novelty.device_codes(ctx.device_ids) if codes is None else codes
            order = _head_order(ctx, HEADS[name], min(want, budget - len(picks)), taken, codes)
        else:
            order = balance_by_device(STRATEGIES[name](ctx), ctx.device_ids)
        got = 0
        for idx in order:
            if got >= want or len(picks) >= budget:
                break
            if int(idx) not in taken:
                taken.add(int(idx))
                picks.append((int(idx), name))
                got += 1
        carry = want - got
    for idx in ctx.rng.permutation(len(ctx.p_present)):
        if len(picks) >= budget:
            break
        if int(idx) not in taken:
            taken.add(int(idx))
            picks.append((int(idx), "random_fill"))
    return picks
