"""The flywheel's baselines in mining/: class-balanced random sampling and self-training pseudo-labels."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from mining.labels import LABEL_SCHEMA
from mining.pseudo_labels import pseudo_label_table
from mining.strategies import MiningContext, balanced_random


def _ctx(p_major: np.ndarray, p_present: np.ndarray) -> MiningContext:
    n = len(p_major)
    return MiningContext(
        p_present=p_present,
        p_major=p_major,
        embeddings=np.zeros((n, 2), np.float32),
        labeled_embeddings=np.zeros((0, 2), np.float32),
        weak_none=np.zeros(n, bool),
        weak_present=np.zeros(n, bool),
        device_ids=np.array(["d"] * n),
        strict_threshold=0.8,
        lenient_threshold=0.5,
        uncertainty_band=0.1,
        rng=np.random.default_rng(0),
    )


def test_balanced_random_takes_the_predicted_classes_in_turn():
    # 90 predicted empty, 6 predicted minor, 4 predicted major
    p_major = np.r_[np.zeros(90), np.zeros(6), np.full(4, 0.9)]
    p_present = np.r_[np.zeros(90), np.full(6, 0.6), np.full(4, 0.95)]
    order = balanced_random(_ctx(p_major, p_present))
    assert sorted(order.tolist()) == list(range(100))  # a ranking of the whole pool
    predicted = np.where(p_major >= 0.8, 2, np.where(p_present >= 0.5, 1, 0))[order]
    assert sorted(predicted[:12].tolist()) == [0] * 4 + [1] * 4 + [2] * 4  # 4 rounds of every class
    assert np.array_equal(order, balanced_random(_ctx(p_major, p_present)))  # seeded


def test_pseudo_labels_are_the_confident_predictions_per_class():
    scores = pl.DataFrame(
        {
            "window_id": [f"w{i}" for i in range(6)],
            "p_none": [0.99, 0.97, 0.5, 0.01, 0.02, 0.1],
            "p_minor": [0.005, 0.02, 0.3, 0.01, 0.96, 0.1],
            "p_major": [0.005, 0.01, 0.2, 0.98, 0.02, 0.8],
        }
    )
    table = pseudo_label_table(scores, "field-1", min_confidence=0.95, per_class=1)
    assert dict(table.schema) == LABEL_SCHEMA
    assert table["window_id"].to_list() == ["w0", "w4", "w3"]  # the most confident of each class
    assert table["label"].to_list() == [0, 1, 2] and set(table["source"]) == {"pseudo"}
    assert table["confidence"].to_list() == pytest.approx([0.99, 0.96, 0.98])
    assert pseudo_label_table(scores, "b", 0.95, 10).height == 4  # w2, w5 are not confident enough
    with pytest.raises(ValueError, match="min_confidence"):
        pseudo_label_table(scores, "b", 0.0, 1)
