"""Read context windows out of a curated batch's feature store in bounded chunks (never the whole store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl


def load_windows_table(curated_dir: str | Path) -> pl.DataFrame:
    path = Path(curated_dir) / "windows.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no windows table (run ingest on this batch first)")
    return pl.read_parquet(path)


def open_frames(curated_dir: str | Path) -> np.ndarray:
    """Memory-map frames.npy [total_frames, V] float32."""
    return np.load(Path(curated_dir) / "frames.npy", mmap_mode="r", allow_pickle=False)


def gather_windows(frames: np.ndarray, end_rows: np.ndarray, context: int) -> np.ndarray:
    """frames [F, V], end_rows [N] -> windows [N, context, V]; window k = rows end-context+1 .. end."""
    offsets = np.arange(-context + 1, 1)  # [C]
    index = end_rows.astype(np.int64)[:, None] + offsets[None, :]  # [N, C]
    if index.min(initial=0) < 0:
        raise ValueError("a window starts before the first frame of the store")
    return np.asarray(frames[index], dtype=np.float32)


def iter_window_chunks(
    curated_dir: str | Path, context: int, chunk: int = 8192, end_rows: np.ndarray | None = None
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (slice into the windows table, windows [n, C, V]) chunk by chunk."""
    frames = open_frames(curated_dir)
    if end_rows is None:
        end_rows = load_windows_table(curated_dir)["end_row"].to_numpy()
    for start in range(0, len(end_rows), chunk):
        sl = slice(start, min(start + chunk, len(end_rows)))
        yield sl, gather_windows(frames, end_rows[sl], context)
