"""Label tables: paid labels from the annotator, lab labels for the seed set, weak labels from dialogue."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from mining.oracle import annotate

LABEL_SCHEMA = {
    "window_id": pl.String,
    "batch_id": pl.String,
    "label": pl.Int64,
    "source": pl.String,
    "confidence": pl.Float64,
    "strategy": pl.String,
}


def label_windows(
    windows: pl.DataFrame, truth_dir: str | Path, *, source: str, error_rate: float, seed: int, batch_id: str
) -> pl.DataFrame:
    """Send windows (window_id, capture_id, t_end_s[, strategy]) to the annotator; return a label table."""
    labels = annotate(windows, truth_dir, error_rate, seed)
    strategy = windows["strategy"] if "strategy" in windows.columns else pl.Series([source] * windows.height)
    return pl.DataFrame(
        {
            "window_id": windows["window_id"],
            "batch_id": [batch_id] * windows.height,
            "label": labels,
            "source": [source] * windows.height,
            "confidence": [1.0 - error_rate] * windows.height,
            "strategy": strategy,
        },
        schema=LABEL_SCHEMA,
    )


def weak_label_table(curated_dir: str | Path, batch_id: str, min_confidence: float) -> pl.DataFrame:
    """Weak labels from implicit feedback that are confident enough to train on."""
    path = Path(curated_dir) / "weak_labels.parquet"
    if not path.exists():
        return pl.DataFrame(schema=LABEL_SCHEMA)
    weak = pl.read_parquet(path).filter(pl.col("confidence") >= min_confidence)
    return weak.select(
        pl.col("window_id").cast(pl.String),
        pl.lit(batch_id).alias("batch_id"),
        pl.col("label").cast(pl.Int64),
        pl.col("source").cast(pl.String),
        pl.col("confidence").cast(pl.Float64),
        pl.lit("weak").alias("strategy"),
    ).unique("window_id", keep="first", maintain_order=True)
