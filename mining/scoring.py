"""Score a pool of windows with the current model (onnxruntime): class probabilities and embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from mining.pool import iter_window_chunks, load_windows_table
from runtime.classifier import OnnxClassifier


def score_pool(model_path: str | Path, curated_dir: str | Path, context: int, chunk: int = 8192):
    """Return (scores table, embeddings [N, D] float32) for every window of a curated batch.

    The table has window_id, capture_id, device_id, t_end_s, p_none, p_minor, p_major, p_present.
    """
    windows = load_windows_table(curated_dir)
    classifier = OnnxClassifier(model_path)
    probs = np.zeros((windows.height, 3), dtype=np.float32)
    embeddings: np.ndarray | None = None
    for sl, batch in iter_window_chunks(curated_dir, context, chunk):
        p, emb = classifier.predict(batch)
        probs[sl] = p
        if embeddings is None:
            embeddings = np.zeros((windows.height, emb.shape[1]), dtype=np.float32)
        embeddings[sl] = emb
    if embeddings is None:
        embeddings = np.zeros((0, 0), dtype=np.float32)
    keep = [
        c for c in ("window_id", "capture_id", "device_id", "batch_id", "t_end_s") if c in windows.columns
    ]
    scores = windows.select(keep).with_columns(
        pl.Series("p_none", probs[:, 0]),
        pl.Series("p_minor", probs[:, 1]),
        pl.Series("p_major", probs[:, 2]),
        pl.Series("p_present", probs[:, 1] + probs[:, 2]),
    )
    return scores, embeddings


def score_windows(
    model_path: str | Path, curated_dir: str | Path, window_ids: pl.Series, context: int
) -> tuple[np.ndarray, np.ndarray]:
    """(p_present [n], embedding [n, D]) of the given windows of one curated batch, in the given order."""
    from mining.pool import gather_windows, open_frames

    table = load_windows_table(curated_dir).select("window_id", "end_row")
    rows = pl.DataFrame({"window_id": window_ids}).join(
        table,
        on="window_id",
        how="left",
        maintain_order="left",  # rows must follow window_ids
    )
    if rows["end_row"].null_count():
        raise ValueError(
            f"{curated_dir}: {rows['end_row'].null_count()} labelled windows are not in the batch"
        )
    probs, emb = OnnxClassifier(model_path).predict(
        gather_windows(open_frames(curated_dir), rows["end_row"].to_numpy(), context)
    )
    return probs[:, 1] + probs[:, 2], emb
