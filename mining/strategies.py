"""Selection strategies: plain functions from pool context to ranked picks, combinable with quotas.

Each strategy takes a `MiningContext` and returns window indices in order of preference.
`select_with_quotas` draws from several strategies without repeats, balanced across devices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


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


# Novelty = Euclidean distance to the nearest labeled window, found by an exact search (no approximate
# index). A k-d tree degenerates to brute force in 32 dimensions, so distances come from blocked matrix
# products |x|^2 - 2 x.l + |l|^2 (BLAS on all cores, memory bounded by the block size), and selection only
# computes the exact distance where it can matter: see `novelty_head`.
NOVELTY_BLOCK = 1 << 22  # pool x labeled distances per block (16 MB of float32 temporaries)
NOVELTY_BLOCK_COLS = 4096  # labeled windows per block at most (fewer: more pool windows per block)
NOVELTY_FIRST_STAGE = 64  # labeled windows in the cascade's first pass over the whole pool
NOVELTY_TOL = 3e-5  # float32 rounding margin on squared distances, relative to |x|^2 + max |l|^2
NOVELTY_COPY_ROWS = 65536  # pool windows per chunk when making the centred float32 copy
NOVELTY_ORDER_SEED = 0  # fixed order in which the cascade visits labeled windows (speed only, not results)


def _min_sq_distance(
    x: np.ndarray, labeled: np.ndarray, dtype: type = np.float32, argmin: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """[n] min over labeled [m, D] of |x - l|^2 for x [n, D] (and the argmin), in `dtype`, blocked.

    |x - l|^2 = |x|^2 + (|l|^2 - 2 l.x): one matrix product per block of at most NOVELTY_BLOCK distances,
    laid out [labeled, pool] for the min (vectorised across pool windows) and [pool, labeled] for the argmin
    (fast along rows); |x|^2 is added once at the end.
    """
    x = np.asarray(x, dtype=dtype)
    labeled = np.asarray(labeled, dtype=dtype)
    best = np.full(len(x), np.inf, dtype=dtype)
    arg = np.zeros(len(x), dtype=np.int64)
    # few, large products (each BLAS call has a fixed cost in thread hand-offs, large on a busy machine)
    rows = min(max(len(x), 1), max(256, NOVELTY_BLOCK // min(max(len(labeled), 1), NOVELTY_BLOCK_COLS)))
    cols = min(max(len(labeled), 1), max(NOVELTY_BLOCK_COLS, NOVELTY_BLOCK // rows))
    blocks = [
        (
            c0,
            -2 * labeled[c0 : c0 + cols],
            np.einsum("ij,ij->i", labeled[c0 : c0 + cols], labeled[c0 : c0 + cols]),
        )
        for c0 in range(0, len(labeled), cols)
    ]  # (offset, -2 l [c, D], |l|^2 [c])
    for r0 in range(0, len(x), rows):
        part = x[r0 : r0 + rows]  # [r, D]
        seg = best[r0 : r0 + len(part)]
        for c0, minus2l, l2 in blocks:
            if argmin:  # argmin is fast along rows: [r, c]
                g = part @ minus2l.T
                g += l2
                j = g.argmin(axis=1)
                v = g[np.arange(len(part)), j]
                better = v < seg
                seg[better] = v[better]
                arg[r0 : r0 + len(part)][better] = j[better] + c0
            else:  # min is fast down columns: [c, r]
                g = minus2l @ part.T
                g += l2[:, None]
                np.minimum(seg, g.min(axis=0), out=seg)
    best += np.einsum("ij,ij->i", x, x)
    np.maximum(best, 0, out=best)
    return (best, arg) if argmin else best


def nearest_labeled_distance(embeddings: np.ndarray, labeled: np.ndarray) -> np.ndarray:
    """[N] exact Euclidean distance (float64) from each pool embedding [N, D] to its nearest labeled [M, D].

    The nearest neighbour comes from a float64 blocked search; its distance is then recomputed directly as
    |x - l| so that a window's value does not depend on which other windows it was computed with.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    labeled = np.asarray(labeled, dtype=np.float64)
    if len(x) == 0:
        return np.zeros(0, dtype=np.float64)
    _, nearest = _min_sq_distance(x, labeled, np.float64, argmin=True)
    return np.sqrt(np.sum((x - labeled[nearest]) ** 2, axis=1))


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


def _device_codes(device_ids: np.ndarray) -> np.ndarray:
    """[N] int code per window's device (codes follow sorted device names, as in `balance_by_device`)."""
    return np.unique(np.asarray(device_ids).astype(str), return_inverse=True)[1].reshape(-1)


def _top_per_group(key: np.ndarray, group: np.ndarray, r: int) -> np.ndarray:
    """Positions of each group's `r` largest keys (ties: lower position first)."""
    order = np.argsort(-key, kind="stable")  # stable: equal keys keep position order
    order = order[np.argsort(group[order], kind="stable")]  # then by group, keeping that order inside
    g = group[order]
    rank = np.arange(len(order)) - np.searchsorted(g, g, side="left")
    return order[rank < r]


def novelty_head(
    ctx: MiningContext, per_device: int, *, device_codes: np.ndarray | None = None, stats: dict | None = None
) -> np.ndarray:
    """Each device's `per_device` most novel windows, ranked by exact novelty like `novel`.

    `balance_by_device` of this list is exactly the first `per_device` rounds of
    `balance_by_device(novel(ctx))` (round robin takes every device's best first, then every device's second,
    ...), so a quota that fits in those rounds gets the same picks as from the full ranking, at a fraction of
    the cost. Exact pruning (no approximate index):

    - an upper bound u(x) >= d(x) on every window's nearest-labeled distance d: the nearest among the
      labeled windows visited so far (a first small subset in one pass over the pool, then more stage by
      stage, doubling, only for the windows still possible);
    - a lower bound tau_g on the `per_device`-th largest d in device g: the `per_device`-th largest of the
      exact d computed so far (for each device's windows with the largest u, refreshed every stage);
    - a window with u(x) < tau_g cannot be in g's head and is dropped; after the last stage u = d for the
      survivors, whose exact float64 distances give the head.

    `device_codes`: `_device_codes(ctx.device_ids)` when the caller has it already. `stats`, when given,
    receives the number of windows still possible after each stage and how many exact distances were computed.
    """
    n = len(ctx.embeddings)
    labeled = np.asarray(ctx.labeled_embeddings)
    if len(labeled) == 0 or n == 0:
        return ctx.rng.permutation(n)  # as `novel`: nothing labeled, nothing is nearer than anything else
    group = _device_codes(ctx.device_ids) if device_codes is None else device_codes
    n_groups = int(group.max()) + 1
    # float32 copies centred on the labeled mean (distances do not change; float32 rounding and the margin,
    # relative to the squared norms, shrink when embeddings sit far from the origin)
    centre = np.mean(labeled, axis=0, dtype=np.float64)
    x32 = np.empty(np.shape(ctx.embeddings), dtype=np.float32)
    for r0 in range(0, n, NOVELTY_COPY_ROWS):  # chunks: no float64 copy of the whole pool
        x32[r0 : r0 + NOVELTY_COPY_ROWS] = ctx.embeddings[r0 : r0 + NOVELTY_COPY_ROWS] - centre
    visit = np.random.default_rng(NOVELTY_ORDER_SEED).permutation(len(labeled))
    lab32 = (labeled[visit] - centre).astype(np.float32)
    tol = NOVELTY_TOL * (np.einsum("ij,ij->i", x32, x32) + float(np.max(np.einsum("ij,ij->i", lab32, lab32))))
    exact = np.full(n, np.nan)  # exact distances computed so far
    known = np.zeros(0, dtype=np.int64)

    def threshold(alive: np.ndarray) -> np.ndarray:
        """[n_groups] squared tau_g, after computing exact d for each device's best candidates by bound."""
        nonlocal known
        cand = alive[_top_per_group(bound[alive], group[alive], 2 * per_device)]
        new = cand[np.isnan(exact[cand])]
        exact[new] = nearest_labeled_distance(ctx.embeddings[new], labeled)
        known = np.concatenate([known, new])
        top = known[_top_per_group(exact[known], group[known], per_device)]
        counts = np.bincount(group[top], minlength=n_groups)
        smallest = np.full(n_groups, np.inf)
        np.minimum.at(smallest, group[top], exact[top])
        return np.where(counts >= per_device, smallest**2, -np.inf)  # fewer windows: keep them all

    start = min(len(lab32), NOVELTY_FIRST_STAGE)
    bound = _min_sq_distance(x32, lab32[:start]).astype(np.float64)  # [n] >= d^2 up to float32 rounding
    alive = np.arange(n)
    counts = []
    size = start
    while True:
        tau2 = threshold(alive)
        alive = alive[bound[alive] + tol[alive] >= tau2[group[alive]]]
        counts.append(len(alive))
        if start >= len(lab32) or len(alive) == 0:
            break
        size *= 2
        chunk = lab32[start : start + size]
        bound[alive] = np.minimum(bound[alive], _min_sq_distance(x32[alive], chunk))
        start += len(chunk)
    if stats is not None:
        stats["alive"] = counts
        stats["exact"] = len(known)
    missing = alive[np.isnan(exact[alive])]
    exact[missing] = nearest_labeled_distance(ctx.embeddings[missing], labeled)
    keep = alive[_top_per_group(exact[alive], group[alive], per_device)]
    return keep[np.lexsort((keep, -exact[keep]))]


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
            codes = _device_codes(ctx.device_ids) if codes is None else codes
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
