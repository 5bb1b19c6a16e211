"""Captures → the on-disk feature store (frames.npy) and the windows table, one capture at a time.

frames.npy grows by appending rows after a .npy header whose shape is rewritten in place at the end
(numpy pads the header so the growth axis can be rewritten), so memory never holds more than one
capture's frames. Window rows are flushed to part files every few hundred captures.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

FRAME_DTYPE = np.dtype("<f4")
WINDOW_BASE_SCHEMA = {
    "window_id": pl.String,
    "capture_id": pl.String,
    "device_id": pl.String,
    "batch_id": pl.String,
    "end_row": pl.Int64,
    "end_frame": pl.Int64,
    "t_end_s": pl.Float64,
    "t_end_utc": pl.Datetime("us", "UTC"),
    "capture_playback_volume": pl.Float64,
}


def _npy_header(n_rows: int, n_cols: int) -> bytes:
    buf = io.BytesIO()
    header = {
        "descr": np.lib.format.dtype_to_descr(FRAME_DTYPE),
        "fortran_order": False,
        "shape": (n_rows, n_cols),
    }
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


class FeatureStore:
    """Append-only float32 [total_frames, n_bins] .npy file."""

    def __init__(self, path: Path, n_bins: int) -> None:
        self.path = path
        self.n_bins = n_bins
        self.n_rows = 0
        self._fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._header_len = len(_npy_header(0, n_bins))
        self._fh.write(_npy_header(0, n_bins))

    def append(self, frames: np.ndarray) -> int:
        """Append frames [n, n_bins]; return the row of the first one."""
        if frames.ndim != 2 or frames.shape[1] != self.n_bins:
            raise ValueError(f"frames shape {frames.shape}, expected (n, {self.n_bins})")
        offset = self.n_rows
        self._fh.write(np.ascontiguousarray(frames, dtype=FRAME_DTYPE).tobytes())
        self.n_rows += frames.shape[0]
        return offset

    def append_from(self, other: Path, chunk_rows: int = 65536) -> int:
        """Copy every row of an existing store (memory-mapped, chunk by chunk); return its first row here."""
        src = np.load(other, allow_pickle=False, mmap_mode="r")  # [n, n_bins]
        offset = self.n_rows
        for start in range(0, src.shape[0], chunk_rows):
            self.append(np.asarray(src[start : start + chunk_rows]))
        return offset

    def close(self) -> int:
        header = _npy_header(self.n_rows, self.n_bins)
        assert len(header) == self._header_len, "npy header length changed"
        self._fh.seek(0)
        self._fh.write(header)
        self._fh.flush()
        self._fh.close()
        return self.n_rows


FEATURE_STATS_SCHEMA = {
    "capture_id": pl.String,
    "device_id": pl.String,
    "n_frames": pl.Int64,
    "n_nonfinite": pl.Int64,
    "feature_min": pl.Float64,
    "feature_max": pl.Float64,
    "feature_mean": pl.Float64,
    "feature_std": pl.Float64,
}


@dataclass
class FeatureStats:
    """Streaming per-bin sums (float64) for drift, plus per-capture rows for validation."""

    n_bins: int
    count: int = 0
    sums: np.ndarray | None = None
    sq_sums: np.ndarray | None = None
    per_capture: list[dict] = field(default_factory=list)

    def add(self, capture_id: str, device_id: str, frames: np.ndarray) -> None:
        finite = np.isfinite(frames)
        values = np.where(finite, frames, 0.0).astype(np.float64)
        if self.sums is None:
            self.sums = np.zeros(self.n_bins)
            self.sq_sums = np.zeros(self.n_bins)
        self.sums += values.sum(axis=0)
        self.sq_sums += (values**2).sum(axis=0)
        self.count += frames.shape[0]
        ok = frames[finite] if frames.size else np.zeros(1, np.float32)
        self.per_capture.append(
            {
                "capture_id": capture_id,
                "device_id": device_id,
                "n_frames": int(frames.shape[0]),
                "n_nonfinite": int((~finite).sum()),
                "feature_min": float(ok.min()) if ok.size else float("nan"),
                "feature_max": float(ok.max()) if ok.size else float("nan"),
                "feature_mean": float(ok.mean()) if ok.size else float("nan"),
                "feature_std": float(ok.std()) if ok.size else float("nan"),
            }
        )

    def table(self) -> pl.DataFrame:
        return pl.DataFrame(self.per_capture, schema=FEATURE_STATS_SCHEMA, orient="row")

    def bin_mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.count:
            return np.zeros(self.n_bins), np.zeros(self.n_bins)
        mean = self.sums / self.count
        return mean, np.sqrt(np.maximum(self.sq_sums / self.count - mean**2, 0.0))


def capture_windows(
    capture: dict, frames: np.ndarray, frame_offset: int, frontend_cfg, context: int, stride: int
) -> pl.DataFrame:
    """Window rows of one capture (runtime.windows decides which windows exist)."""
    from runtime.frontend import frame_end_times
    from runtime.windows import context_windows

    n_frames = frames.shape[0]
    if n_frames >= context:
        _, end_frame = context_windows(frames, context, stride)  # end_frame [N]
        end_frame = np.asarray(end_frame, dtype=np.int64)
    else:
        end_frame = np.zeros(0, dtype=np.int64)
    t_end_s = np.asarray(frame_end_times(n_frames, frontend_cfg), dtype=np.float64)[end_frame]
    start_us = int(capture["t_start_utc"].timestamp() * 1_000_000)
    t_end_us = start_us + np.round(t_end_s * 1e6).astype(np.int64)
    cid = capture["capture_id"]
    return pl.DataFrame(
        {
            "window_id": [f"{cid}:{int(e)}" for e in end_frame],
            "capture_id": pl.Series([cid] * len(end_frame), dtype=pl.String),
            "device_id": pl.Series([capture["device_id"]] * len(end_frame), dtype=pl.String),
            "batch_id": pl.Series([capture["batch_id"]] * len(end_frame), dtype=pl.String),
            "end_row": (frame_offset + end_frame).astype(np.int64),
            "end_frame": end_frame,
            "t_end_s": t_end_s,
            "t_end_utc": pl.Series(t_end_us, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "capture_playback_volume": np.full(len(end_frame), float(capture["playback_volume"])),
        },
        schema=WINDOW_BASE_SCHEMA,
    )


class WindowParts:
    """Buffers window rows and writes them as numbered part files in a folder."""

    def __init__(self, folder: Path, captures_per_part: int) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.captures_per_part = captures_per_part
        self._pending: list[pl.DataFrame] = []
        self.paths: list[Path] = []

    def add(self, frame: pl.DataFrame) -> None:
        self._pending.append(frame)
        if len(self._pending) >= self.captures_per_part:
            self.flush()

    def add_table(self, path: Path) -> None:
        """An existing windows table joins the parts as-is (merging into an existing batch)."""
        self.paths.append(path)

    def flush(self) -> None:
        if not self._pending:
            return
        path = self.folder / f"part-{len(self.paths):05d}.parquet"
        pl.concat(self._pending, how="vertical").write_parquet(path)
        self.paths.append(path)
        self._pending = []

    def scan(self) -> pl.LazyFrame:
        """Every window so far, base columns only (an older table may carry more)."""
        self.flush()
        columns = list(WINDOW_BASE_SCHEMA)
        scans = [pl.scan_parquet(p).select(columns) for p in self.paths]
        return pl.concat(scans, how="vertical") if scans else pl.LazyFrame(schema=WINDOW_BASE_SCHEMA)
