"""Selection strategies: plain functions from pool context to ranked picks, combinable with quotas.

Each strategy takes a `MiningContext` and returns window indices in order of preference.
`select_with_quotas` draws from several strategies without repeats, balanced across devices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree


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


NOVELTY_CHUNK = 65536  # pool windows per k-d tree query: bounds the query's temporary memory


def nearest_labeled_distance(
    embeddings: np.ndarray, labeled: np.ndarray, chunk: int = NOVELTY_CHUNK
) -> np.ndarray:
    """[N] Euclidean distance from each pool embedding [N, D] to its nearest labeled one [M, D]."""
    tree = cKDTree(np.asarray(labeled, dtype=np.float64))
    distance = np.empty(len(embeddings), dtype=np.float64)
    for start in range(0, len(embeddings), chunk):
        part = np.asarray(embeddings[start : start + chunk], dtype=np.float64)  # [n, D]
        distance[start : start + len(part)], _ = tree.query(part, k=1)
    return distance


def novel(ctx: MiningContext) -> np.ndarray:
    """Windows far (in embedding space) from everything already labeled: nearest-neighbour distance."""
    if len(ctx.labeled_embeddings) == 0:
        return ctx.rng.permutation(len(ctx.embeddings))
    distance = nearest_labeled_distance(ctx.embeddings, ctx.labeled_embeddings)
    return np.argsort(-distance, kind="stable")


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
    for name, share in quotas.items():
        want = round(budget * share / total + carry)
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
