"""Exact nearest-neighbour search for novelty: how far each pool embedding is from everything labeled.

Pure numpy over arrays (no mining context): the full distance for every window, and the per-device head of
the most novel windows with bounded pruning, both exact. mining/strategies.py ranks windows with them.
"""

from __future__ import annotations

import numpy as np

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


def min_sq_distance(
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
    _, nearest = min_sq_distance(x, labeled, np.float64, argmin=True)
    return np.sqrt(np.sum((x - labeled[nearest]) ** 2, axis=1))


def device_codes(device_ids: np.ndarray) -> np.ndarray:
    """[N] int code per window's device (codes follow sorted device names, as in `balance_by_device`)."""
    return np.unique(np.asarray(device_ids).astype(str), return_inverse=True)[1].reshape(-1)


def top_per_group(key: np.ndarray, group: np.ndarray, r: int) -> np.ndarray:
    """Positions of each group's `r` largest keys (ties: lower position first)."""
    order = np.argsort(-key, kind="stable")  # stable: equal keys keep position order
    order = order[np.argsort(group[order], kind="stable")]  # then by group, keeping that order inside
    g = group[order]
    rank = np.arange(len(order)) - np.searchsorted(g, g, side="left")
    return order[rank < r]


def most_novel_per_group(
    embeddings: np.ndarray, labeled: np.ndarray, group: np.ndarray, per_device: int, stats: dict | None = None
) -> np.ndarray:
    """Each group's (device's) `per_device` windows farthest from labeled, ranked by exact distance.

    embeddings [N, D], labeled [M, D] (M >= 1, N >= 1), group [N] int codes (`device_codes`). Ranked as
    `np.argsort(-nearest_labeled_distance(...))` restricted to each group's head (ties: lower index first),
    computing exact distances only where they can matter. Exact pruning (no approximate index):

    - an upper bound u(x) >= d(x) on every window's nearest-labeled distance d: the nearest among the
      labeled windows visited so far (a first small subset in one pass over the pool, then more stage by
      stage, doubling, only for the windows still possible);
    - a lower bound tau_g on the `per_device`-th largest d in device g: the `per_device`-th largest of the
      exact d computed so far (for each device's windows with the largest u, refreshed every stage);
    - a window with u(x) < tau_g cannot be in g's head and is dropped; after the last stage u = d for the
      survivors, whose exact float64 distances give the head.

    `stats`, when given, receives the number of windows still possible after each stage and how many exact
    distances were computed.
    """
    n = len(embeddings)
    labeled = np.asarray(labeled)
    n_groups = int(group.max()) + 1
    # float32 copies centred on the labeled mean (distances do not change; float32 rounding and the margin,
    # relative to the squared norms, shrink when embeddings sit far from the origin)
    centre = np.mean(labeled, axis=0, dtype=np.float64)
    x32 = np.empty(np.shape(embeddings), dtype=np.float32)
    for r0 in range(0, n, NOVELTY_COPY_ROWS):  # chunks: no float64 copy of the whole pool
        x32[r0 : r0 + NOVELTY_COPY_ROWS] = embeddings[r0 : r0 + NOVELTY_COPY_ROWS] - centre
    visit = np.random.default_rng(NOVELTY_ORDER_SEED).permutation(len(labeled))
    lab32 = (labeled[visit] - centre).astype(np.float32)
    tol = NOVELTY_TOL * (np.einsum("ij,ij->i", x32, x32) + float(np.max(np.einsum("ij,ij->i", lab32, lab32))))
    exact = np.full(n, np.nan)  # exact distances computed so far
    known = np.zeros(0, dtype=np.int64)

    def threshold(alive: np.ndarray) -> np.ndarray:
        """[n_groups] squared tau_g, after computing exact d for each device's best candidates by bound."""
        nonlocal known
        cand = alive[top_per_group(bound[alive], group[alive], 2 * per_device)]
        new = cand[np.isnan(exact[cand])]
        exact[new] = nearest_labeled_distance(embeddings[new], labeled)
        known = np.concatenate([known, new])
        top = known[top_per_group(exact[known], group[known], per_device)]
        counts = np.bincount(group[top], minlength=n_groups)
        smallest = np.full(n_groups, np.inf)
        np.minimum.at(smallest, group[top], exact[top])
        return np.where(counts >= per_device, smallest**2, -np.inf)  # fewer windows: keep them all

    start = min(len(lab32), NOVELTY_FIRST_STAGE)
    bound = min_sq_distance(x32, lab32[:start]).astype(np.float64)  # [n] >= d^2 up to float32 rounding
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
        bound[alive] = np.minimum(bound[alive], min_sq_distance(x32[alive], chunk))
        start += len(chunk)
    if stats is not None:
        stats["alive"] = counts
        stats["exact"] = len(known)
    missing = alive[np.isnan(exact[alive])]
    exact[missing] = nearest_labeled_distance(embeddings[missing], labeled)
    keep = alive[top_per_group(exact[alive], group[alive], per_device)]
    return keep[np.lexsort((keep, -exact[keep]))]
