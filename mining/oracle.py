"""The simulated annotator: labels windows from simulator ground truth, with a configurable error rate.

Together with fleet/ and evaluation, this is the only code allowed to read data/truth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from runtime.labels import CLASSES

MOTION_CLASS_INDEX = {name: i for i, name in enumerate(CLASSES)}


def load_truth(truth_dir: str | Path) -> pl.DataFrame:
    path = Path(truth_dir) / "events.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no ground truth for this batch")
    schema = {
        "capture_id": pl.String,
        "t0_s": pl.Float64,
        "t1_s": pl.Float64,
        "event_type": pl.String,
        "is_presence": pl.Boolean,
        "motion_class": pl.String,
    }
    if path.stat().st_size == 0:
        return pl.DataFrame(schema=schema)
    return pl.read_ndjson(path, schema=schema)


def true_classes(windows: pl.DataFrame, truth: pl.DataFrame) -> np.ndarray:
    """Class index per window: the strongest presence motion covering the window's end time."""
    presence = truth.filter(pl.col("is_presence")).with_columns(
        pl.col("motion_class").replace_strict(MOTION_CLASS_INDEX, default=0).alias("cls")
    )
    labels = np.zeros(windows.height, dtype=np.int64)
    if presence.height == 0 or windows.height == 0:
        return labels
    joined = (
        windows.select("capture_id", "t_end_s")
        .with_row_index("row")
        .join(presence.select("capture_id", "t0_s", "t1_s", "cls"), on="capture_id", how="inner")
        .filter((pl.col("t0_s") <= pl.col("t_end_s")) & (pl.col("t_end_s") <= pl.col("t1_s")))
        .group_by("row")
        .agg(pl.col("cls").max())
    )
    labels[joined["row"].to_numpy()] = joined["cls"].to_numpy()
    return labels


def annotate(windows: pl.DataFrame, truth_dir: str | Path, error_rate: float, seed: int) -> np.ndarray:
    """Labels an annotator would give: the truth, with `error_rate` of them swapped for another class."""
    if not 0.0 <= error_rate < 1.0:
        raise ValueError(f"labeling.error_rate must be in [0, 1), got {error_rate}")
    labels = true_classes(windows, load_truth(truth_dir))
    rng = np.random.default_rng(seed)
    wrong = rng.random(len(labels)) < error_rate
    shift = rng.integers(1, len(CLASSES), size=len(labels))
    return np.where(wrong, (labels + shift) % len(CLASSES), labels)


def rare_event_windows(windows: pl.DataFrame, truth_dir: str | Path) -> np.ndarray:
    """[n] bool: a rare event (any non-presence event: fans, pets, music, other devices ...) covers the
    window's end time, the time true_classes labels a window by."""
    truth = load_truth(truth_dir).filter(~pl.col("is_presence"))
    rare = np.zeros(windows.height, dtype=bool)
    if truth.height == 0 or windows.height == 0:
        return rare
    rows = (
        windows.select("capture_id", "t_end_s")
        .with_row_index("row")
        .join(truth.select("capture_id", "t0_s", "t1_s"), on="capture_id", how="inner")
        .filter((pl.col("t0_s") <= pl.col("t_end_s")) & (pl.col("t_end_s") <= pl.col("t1_s")))
    )["row"].unique()
    rare[rows.to_numpy()] = True
    return rare
