"""Self-training: the model's own confident predictions on the pool as labels (no paid label).

The baseline published work finds often matches active learning: score the pool with the current
model, keep the windows whose top class probability reaches min_confidence, and take at most
per_class of each predicted class, the most confident first (so the pool's majority class, an empty
room, does not drown the rest). Each pseudo-label is weighted by its probability (`confidence`).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from mining.labels import LABEL_SCHEMA

SOURCE = "pseudo"


def pseudo_label_table(
    scores: pl.DataFrame, batch_id: str, min_confidence: float, per_class: int
) -> pl.DataFrame:
    """scores: mining.scoring.score_pool's table (window_id, p_none, p_minor, p_major) -> label table
    (mining.labels.LABEL_SCHEMA) of the confident windows, per predicted class by falling confidence."""
    if not 0.0 < min_confidence <= 1.0 or per_class < 0:
        raise ValueError(
            f"need 0 < min_confidence <= 1 and per_class >= 0, got {min_confidence}, {per_class}"
        )
    probs = scores.select("p_none", "p_minor", "p_major").to_numpy()  # [N, 3]
    label = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    picked: list[np.ndarray] = []
    for c in range(probs.shape[1]):
        idx = np.flatnonzero((label == c) & (confidence >= min_confidence))
        idx = idx[np.argsort(-confidence[idx], kind="stable")][:per_class]
        picked.append(np.sort(idx))  # back in pool order inside the class
    rows = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    return pl.DataFrame(
        {
            "window_id": scores["window_id"].gather(rows).cast(pl.String),
            "batch_id": [batch_id] * len(rows),
            "label": label[rows].astype(np.int64),
            "source": [SOURCE] * len(rows),
            "confidence": confidence[rows].astype(np.float64),
            "strategy": ["self_training"] * len(rows),
        },
        schema=LABEL_SCHEMA,
    )
