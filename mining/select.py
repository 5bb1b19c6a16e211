"""Mine one curated batch: score it with the current model, then spend the label budget by strategy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from mining.config import MiningConfig
from mining.scoring import score_pool
from mining.strategies import MiningContext, select_with_quotas
from runtime.detector import DetectorConfig
from runtime.labels import CLASSES

NONE, MINOR, MAJOR = (CLASSES.index(c) for c in ("none", "minor", "major"))

# Named selection policies: the product's flywheel mix and the baselines it must beat.
POLICIES = {
    "flywheel": None,  # MiningConfig.quotas (params mining.quotas)
    "random": {"random": 1.0},
    "uncertainty": {"uncertainty_only": 1.0},
    "balanced_random": {"balanced_random": 1.0},
}


def weak_flags(curated_dir: str | Path, window_ids: pl.Series, min_confidence: float):
    """Per window: (implicit feedback says empty, implicit feedback says present)."""
    path = Path(curated_dir) / "weak_labels.parquet"
    n = len(window_ids)
    if not path.exists():
        return np.zeros(n, bool), np.zeros(n, bool)
    weak = pl.read_parquet(path).filter(pl.col("confidence") >= min_confidence)
    joined = pl.DataFrame({"window_id": window_ids}).join(
        weak.group_by("window_id").agg(pl.col("label").max()),
        on="window_id",
        how="left",
        maintain_order="left",  # flags line up with window_ids
    )
    label = joined["label"].fill_null(-1).to_numpy()
    return label == NONE, label >= MINOR


def _quotas(policy: str, cfg: MiningConfig) -> dict:
    if policy not in POLICIES:
        raise ValueError(f"unknown mining policy {policy!r} (known: {sorted(POLICIES)})")
    return POLICIES[policy] or cfg.quotas


def mine_batch(
    model_path: str | Path,
    curated_dir: str | Path,
    labeled_embeddings: np.ndarray,
    cfg: MiningConfig,
    detector: DetectorConfig,
    policy: str = "flywheel",
    budget: int | None = None,
    exclude: set[str] | None = None,
) -> pl.DataFrame:
    """Return the picks (window_id, strategy, scores) for `policy`, at most `budget` rows (cfg.budget when
    None). `detector`: its thresholds centre the uncertainty band, its context sizes the model's windows."""
    _quotas(policy, cfg)  # an unknown policy fails before the pool is scored
    scores, embeddings = score_pool(model_path, curated_dir, detector.context_frames)
    return pick_windows(
        scores, embeddings, curated_dir, labeled_embeddings, cfg, detector, policy, budget, exclude
    )


def pick_windows(
    scores: pl.DataFrame,
    embeddings: np.ndarray,
    curated_dir: str | Path,
    labeled_embeddings: np.ndarray,
    cfg: MiningConfig,
    detector: DetectorConfig,
    policy: str = "flywheel",
    budget: int | None = None,
    exclude: set[str] | None = None,
) -> pl.DataFrame:
    """mine_batch on a pool already scored (mining.scoring: score_pool, or its merged shards)."""
    quotas = _quotas(policy, cfg)
    budget = int(cfg.budget if budget is None else budget)
    if exclude:
        keep = ~scores["window_id"].is_in(sorted(exclude)).to_numpy()
        scores, embeddings = scores.filter(pl.Series(keep)), embeddings[keep]
    weak_none, weak_present = weak_flags(curated_dir, scores["window_id"], cfg.weak_label_confidence_min)
    ctx = MiningContext(
        p_present=scores["p_present"].to_numpy(),
        p_major=scores["p_major"].to_numpy(),
        embeddings=embeddings,
        labeled_embeddings=labeled_embeddings,
        weak_none=weak_none,
        weak_present=weak_present,
        device_ids=scores["device_id"].to_numpy(),
        strict_threshold=detector.strict_threshold,
        lenient_threshold=detector.lenient_threshold,
        uncertainty_band=cfg.uncertainty_band,
        rng=np.random.default_rng(cfg.seed),
    )
    picks = select_with_quotas(ctx, budget, quotas)
    rows = np.asarray([i for i, _ in picks], dtype=np.int64)
    return scores[rows].with_columns(pl.Series("strategy", [s for _, s in picks], dtype=pl.String))
