"""Label tables: paid labels from the annotator, lab labels for the seed set, weak labels from dialogue
(ingest's implicit feedback, and the presence failure points of mining.failure_points)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from mining.config import SelfLearningConfig
from mining.oracle import annotate

LABEL_SCHEMA = {
    "window_id": pl.String,
    "batch_id": pl.String,
    "label": pl.Int64,
    "source": pl.String,
    "confidence": pl.Float64,
    "strategy": pl.String,
}
WEAK_SCHEMA = {"window_id": pl.String, "label": pl.Int64, "source": pl.String, "confidence": pl.Float64}


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


def weak_label_table(
    curated_dir: str | Path, batch_id: str, min_confidence: float, learning: SelfLearningConfig
) -> pl.DataFrame:
    """Weak labels from implicit feedback that are confident enough to train on, then those of the
    presence failure points (failure_point_labels) for windows the first left unlabelled.

    learning: mining.failure_points.learning_params(params) (mining.self_learning + the session gap).
    """
    path = Path(curated_dir) / "weak_labels.parquet"
    if not path.exists():
        return pl.DataFrame(schema=LABEL_SCHEMA)
    implicit = pl.read_parquet(path).select(list(WEAK_SCHEMA)).cast(WEAK_SCHEMA)
    weak = pl.concat([implicit, failure_point_labels(curated_dir, learning)])
    weak = weak.filter(pl.col("confidence") >= min_confidence)
    return weak.select(
        pl.col("window_id").cast(pl.String),
        pl.lit(batch_id).alias("batch_id"),
        pl.col("label").cast(pl.Int64),
        pl.col("source").cast(pl.String),
        pl.col("confidence").cast(pl.Float64),
        pl.lit("weak").alias("strategy"),
    ).unique("window_id", keep="first", maintain_order=True)


def failure_point_labels(curated_dir: str | Path, learning: SelfLearningConfig) -> pl.DataFrame:
    """Weak labels from the presence failure points of a curated batch's dialogue sessions.

    presence_false_trigger: windows from weak_false_trigger_before_s before to weak_false_trigger_after_s
    after the routine were `none`; presence_missed: windows from weak_missed_lookback_s before the
    failure (the no-motion routine, or the request on arrival) up to the lights request were a
    present, still person (`minor`). Source `weak:<failure point>`,
    confidence the isolation's measured precision for that class (weak_label_confidence).
    """
    import datetime as dt

    from mining.failure_points import isolate
    from runtime.labels import CLASSES

    d = Path(curated_dir)
    needed = ["session_events", "dialogue", "routines", "feedback", "windows"]
    if not all((d / f"{name}.parquet").exists() for name in needed):
        return pl.DataFrame(schema=WEAK_SCHEMA)
    events, turns, routines, feedback = (pl.read_parquet(d / f"{n}.parquet") for n in needed[:4])
    points = isolate(events, turns, routines, feedback, learning)
    conf = learning.weak_label_confidence

    spans = pl.concat(
        [
            points.filter(pl.col("failure_point") == "presence_false_trigger").select(
                "device_id",
                (pl.col("ts") - dt.timedelta(seconds=learning.weak_false_trigger_before_s)).alias("start"),
                (pl.col("ts") + dt.timedelta(seconds=learning.weak_false_trigger_after_s)).alias("end"),
                pl.lit(CLASSES.index("none")).alias("label"),
                pl.lit(float(conf["presence_false_trigger"])).alias("confidence"),
                pl.lit("weak:presence_false_trigger").alias("source"),
            ),
            points.filter(pl.col("failure_point") == "presence_missed").select(
                "device_id",
                (pl.col("ts") - dt.timedelta(seconds=learning.weak_missed_lookback_s)).alias("start"),
                pl.col("evidence_ts").alias("end"),
                pl.lit(CLASSES.index("minor")).alias("label"),
                pl.lit(float(conf["presence_missed"])).alias("confidence"),
                pl.lit("weak:presence_missed").alias("source"),
            ),
        ]
    )
    if spans.is_empty():
        return pl.DataFrame(schema=WEAK_SCHEMA)
    windows = (
        pl.scan_parquet(d / "windows.parquet")
        .select("window_id", "device_id", "t_end_utc")
        .filter(pl.col("device_id").is_in(spans["device_id"].unique().implode()))
        .collect()
    )
    if windows.is_empty():
        return pl.DataFrame(schema=WEAK_SCHEMA)
    out = []
    for _, group in spans.group_by("source", maintain_order=True):  # overlapping spans of one source
        hit = windows.sort("t_end_utc").join_asof(
            group.sort("start"),
            left_on="t_end_utc",
            right_on="start",
            by="device_id",
            strategy="backward",
            check_sortedness=False,  # both sorted above; polars cannot check with `by`
        )
        out.append(hit.filter(pl.col("t_end_utc") <= pl.col("end")).select(list(WEAK_SCHEMA)))
    return pl.concat(out).cast(WEAK_SCHEMA).unique("window_id", keep="first", maintain_order=True)
