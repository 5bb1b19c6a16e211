"""Training data: windows gathered lazily from curated feature stores, split by capture, augmented.

A TrainingBatch pairs a curated batch folder (frames.npy + windows.parquet, docs/CONTRACTS.md) with a
labels table. Only labelled windows are read, frame by frame from a memory-mapped store, so a large
store is never loaded whole. The validation split is drawn by capture (never by window: overlapping
windows of one capture would leak) from training.seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from runtime.labels import N_CLASSES
from training.config import TrainRun


class DataError(ValueError):
    """Training data is missing, empty or inconsistent with the contract."""


@dataclass(frozen=True)
class TrainingBatch:
    curated_dir: Path | str
    labels_path: Path | str


@dataclass
class WindowIndex:
    """Where every labelled window lives: store index, end row, label, weight, capture."""

    stores: list[np.ndarray]  # memory-mapped frames.npy per batch, each [rows, V]
    store_idx: np.ndarray  # [N] int
    end_row: np.ndarray  # [N] int
    label: np.ndarray  # [N] int
    confidence: np.ndarray  # [N] float32
    capture_id: np.ndarray  # [N] str
    window_id: np.ndarray  # [N] str
    end_frame: np.ndarray  # [N] int
    source: np.ndarray  # [N] str: where the label came from (lab | oracle | label_studio | weak:<kind>)
    # the detector's stream-start mode: windows ending before the first full context of a clip that is a
    # stream of its own (end_frame < context - 1) are padded as runtime.windows.stream_start_windows says
    stream_start: str = "wait"

    def __len__(self) -> int:
        return int(self.end_row.shape[0])

    def subset(self, mask: np.ndarray) -> WindowIndex:
        return WindowIndex(
            self.stores,
            self.store_idx[mask],
            self.end_row[mask],
            self.label[mask],
            self.confidence[mask],
            self.capture_id[mask],
            self.window_id[mask],
            self.end_frame[mask],
            self.source[mask],
            self.stream_start,
        )


def stream_start_rows(curated_dir: str | Path, context: int, stride: int, frontend_cfg=None) -> pl.DataFrame:
    """Stream-start windows of a curated batch (window_id, capture_id, end_row, end_frame, and t_end_s
    when frontend_cfg, a runtime.frontend.FrontendConfig, gives the frame times): for every capture read
    from pcm/*.wav (a clip is a stream of its own, as evaluation runs it), the ends
    runtime.windows.stream_start_ends gives. Not in windows.parquet: only the label stages and
    training, which pad them (gather_windows), use them."""
    from runtime.frontend import frame_end_times
    from runtime.windows import stream_start_ends

    captures = pl.read_parquet(
        Path(curated_dir) / "captures.parquet", columns=["capture_id", "file", "n_frames", "frame_offset"]
    )
    timed = frontend_cfg is not None
    rows: dict[str, list] = {"window_id": [], "capture_id": [], "end_row": [], "end_frame": []}
    rows |= {"t_end_s": []} if timed else {}
    for cid, _file, n_frames, offset in captures.filter(pl.col("file").str.ends_with(".wav")).iter_rows():
        ends = stream_start_ends(int(n_frames), context, stride)
        times = frame_end_times(int(n_frames), frontend_cfg) if timed else None
        for e in ends.tolist():
            rows["window_id"].append(f"{cid}:{e}")
            rows["capture_id"].append(cid)
            rows["end_row"].append(int(offset) + e)
            rows["end_frame"].append(e)
            if timed:
                rows["t_end_s"].append(float(times[e]))
    schema = {"window_id": pl.String, "capture_id": pl.String, "end_row": pl.Int64, "end_frame": pl.Int64,
              "t_end_s": pl.Float64}  # fmt: skip
    return pl.DataFrame(rows, schema={k: schema[k] for k in rows})


def load_window_index(
    batches: list[TrainingBatch], context_frames: int, stream_start: str = "wait", stride: int = 8
) -> WindowIndex:
    """Join each labels table with its batch's windows; drop labels of windows the batch lacks. With a
    stream-start mode other than "wait", the batches' stream-start windows (stream_start_rows) count too."""
    stores, parts = [], []
    for i, batch in enumerate(batches):
        curated = Path(batch.curated_dir)
        frames_path, windows_path = curated / "frames.npy", curated / "windows.parquet"
        for p in (frames_path, windows_path, Path(batch.labels_path)):
            if not p.exists():
                raise DataError(f"{p}: missing")
        store = np.load(frames_path, mmap_mode="r", allow_pickle=False)
        if store.ndim != 2:
            raise DataError(f"{frames_path}: expected [rows, bins], got shape {store.shape}")
        stores.append(store)
        windows = pl.scan_parquet(windows_path).select("window_id", "capture_id", "end_row", "end_frame")
        starts = stream_start != "wait"
        if starts:
            extra = stream_start_rows(curated, context_frames, stride)
            windows = pl.concat([windows, extra.lazy().cast(dict(windows.collect_schema()))])
        # one label per window: a window labelled twice (paid + weak) keeps its most confident label
        table_columns = pl.scan_parquet(batch.labels_path).collect_schema().names()
        source = pl.col("source") if "source" in table_columns else pl.lit("unknown").alias("source")
        labels = (
            pl.scan_parquet(batch.labels_path)
            .select("window_id", "label", pl.col("confidence").fill_null(1.0), source)
            .sort(["window_id", "confidence", "label"], descending=[False, True, False])
            .unique(subset="window_id", keep="first", maintain_order=True)
        )
        joined = (
            labels.join(windows, on="window_id", how="inner")
            .filter((pl.col("end_frame") >= context_frames - 1) | pl.lit(starts))
            .with_columns(pl.lit(i).alias("store_idx"))
            .sort("end_row", "window_id")  # join order is not guaranteed; training order must be
            .collect()
        )
        if joined.height and int(joined["end_row"].max()) >= store.shape[0]:
            raise DataError(f"{windows_path}: end_row beyond {frames_path} ({store.shape[0]} rows)")
        parts.append(joined)
    table = pl.concat(parts) if parts else pl.DataFrame()
    if table.height == 0:
        raise DataError("no labelled windows found in the given batches")
    label = table["label"].to_numpy().astype(np.int64)
    if label.min() < 0 or label.max() >= N_CLASSES:
        raise DataError(f"labels must be class indices 0..{N_CLASSES - 1}")
    confidence = table["confidence"].fill_null(1.0).to_numpy().astype(np.float32).clip(0.0, 1.0)
    return WindowIndex(
        stores=stores,
        store_idx=table["store_idx"].to_numpy().astype(np.int64),
        end_row=table["end_row"].to_numpy().astype(np.int64),
        label=label,
        confidence=confidence,
        capture_id=table["capture_id"].to_numpy().astype(str),
        window_id=table["window_id"].to_numpy().astype(str),
        end_frame=table["end_frame"].to_numpy().astype(np.int64),
        source=table["source"].fill_null("unknown").to_numpy().astype(str),
        stream_start=stream_start,
    )


def gather_windows(index: WindowIndex, positions: np.ndarray, context_frames: int) -> np.ndarray:
    """Windows [len(positions), context, V] float32: rows end_row-context+1 .. end_row of their store."""
    positions = np.asarray(positions, dtype=np.int64)
    n_bins = index.stores[0].shape[1]
    out = np.empty((len(positions), context_frames, n_bins), np.float32)
    offsets = np.arange(context_frames) - (context_frames - 1)  # [T]: end-T+1 .. end
    store_of = index.store_idx[positions]
    for s in np.unique(store_of):
        sel = np.flatnonzero(store_of == s)
        rows = index.end_row[positions[sel]][:, None] + offsets[None, :]  # [n, T]
        early = index.end_frame[positions[sel]] < context_frames - 1  # stream-start windows (padded)
        if index.stream_start != "wait" and early.any():
            out[sel[early]] = _padded_windows(index, positions[sel[early]], context_frames)
            sel, rows = sel[~early], rows[~early]
        out[sel] = index.stores[int(s)][rows]  # fancy indexing reads only these rows of the memmap
    return out


def _padded_windows(index: WindowIndex, positions: np.ndarray, context: int) -> np.ndarray:
    """Stream-start windows [n, context, V], padded by runtime.windows.stream_start_windows (device code)."""
    from runtime.windows import stream_start_windows

    out = []
    for p in positions:
        end, end_frame = int(index.end_row[p]), int(index.end_frame[p])
        frames = np.asarray(
            index.stores[int(index.store_idx[p])][end - end_frame : end + 1]
        )  # [end_frame + 1, V]
        out.append(stream_start_windows(frames, context, index.stream_start)[-1])
    return np.stack(out)


def split_by_capture(capture_ids: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask [N]: True for windows of the captures drawn for validation (deterministic)."""
    captures = np.unique(capture_ids)  # sorted, so the draw does not depend on row order
    n_val = round(val_fraction * len(captures))
    if val_fraction > 0 and len(captures) >= 2:
        n_val = min(max(n_val, 1), len(captures) - 1)
    rng = np.random.default_rng(seed)
    val_captures = rng.permutation(captures)[:n_val]
    return np.isin(capture_ids, val_captures)


def class_weights(labels: np.ndarray) -> np.ndarray:
    """Inverse-frequency class weights [3], mean 1 over present classes (absent classes get 0)."""
    counts = np.bincount(labels, minlength=N_CLASSES).astype(np.float64)
    weights = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    present = counts > 0
    weights[present] *= present.sum() / weights[present].sum()
    return weights.astype(np.float32)


def normalisation_stats(
    index: WindowIndex, context_frames: int, chunk: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std [V * C] over the frames of the given windows, in chunks."""
    n_bins = index.stores[0].shape[1]
    total, total_sq, count = np.zeros(n_bins), np.zeros(n_bins), 0
    for start in range(0, len(index), chunk):
        w = gather_windows(index, np.arange(start, min(start + chunk, len(index))), context_frames)
        w64 = w.reshape(-1, n_bins).astype(np.float64)  # [n*T, V]
        total += w64.sum(0)
        total_sq += (w64**2).sum(0)
        count += w64.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32)


def augment(x, gain_db: float, noise_db: float, shift_bins: int, generator, level_mask=None):
    """Physics-respecting augmentation of dB windows x [N, T, V * C] (torch, channels interleaved by bin as
    runtime.feature_channels lays them out), in place of a copy.

    gain: one dB offset per window (emission level / range) on the level channels (level_mask [C] bool,
    runtime.feature_channels.LEVEL_CHANNELS; None: the one channel is a level); noise: Gaussian jitter in
    dB (the log-periodogram's estimator noise); shift: move the spectrum by up to ±shift_bins velocity
    bins, every channel of a bin together, repeating the edge bin (a small change of speed; never wraps
    +v_max onto -v_max).
    """
    import torch

    n = x.shape[0]
    n_channels = 1 if level_mask is None else len(level_mask)
    out = x.clone()
    if gain_db > 0:
        gain = (torch.rand(n, 1, 1, generator=generator) * 2 - 1) * gain_db
        if level_mask is None:
            out += gain
        else:  # [V * C] columns: 1 on the level channels
            columns = torch.as_tensor(list(level_mask), dtype=out.dtype).repeat(x.shape[-1] // n_channels)
            out += gain * columns
    if noise_db > 0:
        out += torch.randn(out.shape, generator=generator) * noise_db
    if shift_bins > 0:
        shifts = torch.randint(-shift_bins, shift_bins + 1, (n,), generator=generator)
        n_bins = x.shape[-1] // n_channels
        base = torch.arange(n_bins)
        binned = out.view(n, x.shape[1], n_bins, n_channels)  # [N, T, V, C] view of out
        for s in shifts.unique().tolist():
            if s == 0:
                continue
            rows = shifts == s
            src = (base - s).clamp(0, n_bins - 1)  # output bin v reads input bin v - s
            binned[rows] = binned[rows][:, :, src]
    return out


def make_datamodule(batches: list[TrainingBatch], run: TrainRun):
    """Build the LightningDataModule (lightning imported here to keep CLI start-up fast)."""
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, Dataset

    tr = run.training
    context = run.model.context_frames

    class WindowDataset(Dataset):
        def __init__(self, index: WindowIndex) -> None:
            self.index = index

        def __len__(self) -> int:
            return len(self.index)

        def __getitems__(self, positions: list[int]):
            pos = np.asarray(positions)
            x = torch.from_numpy(gather_windows(self.index, pos, context))  # [B,T,V]
            y = torch.from_numpy(self.index.label[pos])  # [B]
            w = torch.from_numpy(self.index.confidence[pos])  # [B]
            return x, y, w

        def __getitem__(self, k: int):
            x, y, w = self.__getitems__([k])
            return x[0], y[0], w[0]

    def identity_collate(batch):
        return batch

    class FeatureStoreDataModule(L.LightningDataModule):
        def __init__(self) -> None:
            super().__init__()
            self.index = load_window_index(
                batches,
                context,
                stream_start=run.detector.stream_start,
                stride=run.window_stride,
            )
            self.val_mask = split_by_capture(self.index.capture_id, tr.val_fraction, tr.seed)
            self.train_index = self.index.subset(~self.val_mask)
            self.val_index = self.index.subset(self.val_mask)
            if len(self.train_index) == 0:
                raise DataError("the capture split left no training windows")
            self.class_weights = class_weights(self.train_index.label)
            self.mean, self.std = normalisation_stats(self.train_index, context)

        def train_dataloader(self):
            gen = torch.Generator().manual_seed(tr.seed)
            return DataLoader(
                WindowDataset(self.train_index),
                batch_size=tr.batch_size,
                shuffle=True,
                generator=gen,
                num_workers=0,
                collate_fn=identity_collate,
            )

        def val_dataloader(self):
            return DataLoader(
                WindowDataset(self.val_index),
                batch_size=tr.batch_size,
                shuffle=False,
                num_workers=0,
                collate_fn=identity_collate,
            )

    return FeatureStoreDataModule()
