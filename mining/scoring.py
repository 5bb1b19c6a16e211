"""Score a pool of windows with the current model (onnxruntime): class probabilities and embeddings.

A pool splits into shards of a fixed number of windows (pool_shards): score_pool_shard scores one in
any process and any order, merge_pool_parts puts them back in table order with the bytes of one pass
(score_pool)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from mining.pool import iter_window_chunks, load_windows_table
from runtime.classifier import OnnxClassifier

SHARD_WINDOWS = 65536  # windows per pool shard: a multiple of the chunk, so every ONNX batch is the same


@dataclass(frozen=True)
class PoolShard:
    """Rows [start, stop) of a curated batch's windows table, scored on their own."""

    index: int
    start: int
    stop: int


@dataclass
class PoolPart:
    """A shard's scores: class probabilities [n, 3] and embeddings [n, D] of its windows, in table order."""

    shard: PoolShard
    probs: np.ndarray
    embeddings: np.ndarray


def pool_shards(
    curated_dir: str | Path, shard_windows: int = SHARD_WINDOWS, chunk: int = 8192
) -> list[PoolShard]:
    """The windows table in shards of shard_windows rows (the last one shorter), in table order.

    shard_windows must be a multiple of chunk: a shard then starts where a chunk of the whole-table pass
    starts, the classifier sees the same batches, and the merged scores have that pass's bytes."""
    if shard_windows <= 0 or shard_windows % chunk:
        raise ValueError(f"shard_windows {shard_windows} must be a positive multiple of chunk {chunk}")
    n = pl.scan_parquet(Path(curated_dir) / "windows.parquet").select(pl.len()).collect().item()
    return [PoolShard(k, lo, min(lo + shard_windows, n)) for k, lo in enumerate(range(0, n, shard_windows))]


def score_pool_shard(
    model_path: str | Path, curated_dir: str | Path, context: int, shard: PoolShard, chunk: int = 8192
) -> PoolPart:
    """Score one shard of a curated batch's windows with the model (onnxruntime, chunk windows at a time)."""
    end_rows = load_windows_table(curated_dir)["end_row"].to_numpy()[shard.start : shard.stop]
    classifier = OnnxClassifier(model_path)
    probs = np.zeros((len(end_rows), 3), dtype=np.float32)
    embeddings: np.ndarray | None = None
    for sl, batch in iter_window_chunks(curated_dir, context, chunk, end_rows=end_rows):
        p, emb = classifier.predict(batch)
        probs[sl] = p
        if embeddings is None:
            embeddings = np.zeros((len(end_rows), emb.shape[1]), dtype=np.float32)
        embeddings[sl] = emb
    return PoolPart(shard, probs, embeddings if embeddings is not None else np.zeros((0, 0), np.float32))


def merge_pool_parts(curated_dir: str | Path, parts: list[PoolPart]):
    """(scores table, embeddings [N, D] float32) from every shard's part (any order), as score_pool."""
    windows = load_windows_table(curated_dir)
    parts = sorted(parts, key=lambda p: p.shard.index)
    covered = [(p.shard.start, p.shard.stop) for p in parts]
    bounds = [0, *(stop for _, stop in covered)]
    if [start for start, _ in covered] != bounds[:-1] or bounds[-1] != windows.height:
        raise ValueError(f"{curated_dir}: pool parts {covered} do not cover its {windows.height} windows")
    probs = np.concatenate([p.probs for p in parts]) if parts else np.zeros((0, 3), np.float32)
    embeddings = np.concatenate([p.embeddings for p in parts]) if parts else np.zeros((0, 0), np.float32)
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


def score_pool(model_path: str | Path, curated_dir: str | Path, context: int, chunk: int = 8192):
    """Return (scores table, embeddings [N, D] float32) for every window of a curated batch, in one pass.

    The table has window_id, capture_id, device_id, t_end_s, p_none, p_minor, p_major, p_present.
    """
    n = pl.scan_parquet(Path(curated_dir) / "windows.parquet").select(pl.len()).collect().item()
    whole = [score_pool_shard(model_path, curated_dir, context, PoolShard(0, 0, n), chunk)] if n else []
    return merge_pool_parts(curated_dir, whole)


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
