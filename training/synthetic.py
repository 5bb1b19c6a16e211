"""Synthetic curated batches (feature store + windows + labels) for tests and benchmarks.

Frames are log-power Doppler spectra in dB with class-dependent bands: `none` is noise floor only
(plus, sometimes, a narrow fan-like line), `minor` a weak narrow band near zero velocity, `major`
a strong broad band that wanders in velocity. Layout follows docs/CONTRACTS.md (curated batch
folder and labels table), so the data module reads it exactly like an ingested batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from common.io import atomic_save_npy, atomic_write_parquet


def synth_frames(labels_per_frame: np.ndarray, n_bins: int, rng: np.random.Generator) -> np.ndarray:
    """Frames [T, V] float32 dB for a per-frame class sequence [T] (0 none, 1 minor, 2 major)."""
    n_frames = labels_per_frame.shape[0]
    v_axis = np.linspace(-1.0, 1.0, n_bins)  # normalised velocity axis
    frames = rng.normal(-60.0, 2.0, size=(n_frames, n_bins))  # noise floor, dB
    centre = np.cumsum(rng.normal(0.0, 0.03, size=n_frames)).clip(-0.6, 0.6)  # wandering velocity
    fan_bin = rng.integers(0, n_bins)
    for t in range(n_frames):
        cls = labels_per_frame[t]
        if cls == 2:
            frames[t] += 25.0 * np.exp(-0.5 * ((v_axis - centre[t]) / 0.25) ** 2)
        elif cls == 1:
            frames[t] += 12.0 * np.exp(-0.5 * (v_axis / 0.06) ** 2)
        elif t % 7 < 2:  # a periodic fan-like line in an empty room
            frames[t, fan_bin] += 8.0
    return frames.astype(np.float32)


def make_synthetic_batch(
    root: str | Path,
    batch_id: str = "synth",
    n_captures: int = 6,
    frames_per_capture: int = 192,
    context_frames: int = 32,
    window_stride: int = 8,
    n_bins: int = 48,
    seed: int = 0,
    frame_hop_s: float = 0.032,
    segment_frames: int | None = None,
) -> tuple[Path, Path]:
    """Write CURATED root/<batch_id>/ and root/labels/<batch_id>/labels.parquet; return both paths.

    Each capture is a sequence of class segments of segment_frames frames (default: one segment per
    capture, classes rotating over captures so every class is present); a window's label is the class
    of its last frame.
    """
    rng = np.random.default_rng(seed)
    curated = Path(root) / batch_id
    labels_path = Path(root) / "labels" / batch_id / "labels.parquet"
    all_frames, capture_rows, window_rows, label_rows = [], [], [], []
    offset = 0
    segment = segment_frames or frames_per_capture
    first_class = int(rng.integers(0, 3))
    for c in range(n_captures):
        capture_id = f"{batch_id}-cap{c:03d}"
        n_segments = int(np.ceil(frames_per_capture / segment))
        if segment_frames is None:
            seg_classes = np.array([(first_class + c) % 3])
        else:
            seg_classes = rng.integers(0, 3, size=n_segments)
        per_frame = np.repeat(seg_classes, segment)[:frames_per_capture]
        frames = synth_frames(per_frame, n_bins, rng)
        all_frames.append(frames)
        capture_rows.append(
            {
                "capture_id": capture_id,
                "batch_id": batch_id,
                "n_frames": frames_per_capture,
                "frame_offset": offset,
            }
        )
        for end_frame in range(context_frames - 1, frames_per_capture, window_stride):
            window_id = f"{capture_id}:{end_frame}"
            window_rows.append(
                {
                    "window_id": window_id,
                    "capture_id": capture_id,
                    "device_id": f"dev-{c % 3}",
                    "batch_id": batch_id,
                    "end_row": offset + end_frame,
                    "end_frame": end_frame,
                    "t_end_s": (end_frame + 2) * frame_hop_s,
                }
            )
            label_rows.append(
                {
                    "window_id": window_id,
                    "batch_id": batch_id,
                    "label": int(per_frame[end_frame]),
                    "source": "lab",
                    "confidence": float(rng.uniform(0.7, 1.0)),
                    "strategy": "synthetic",
                }
            )
        offset += frames_per_capture
    curated.mkdir(parents=True, exist_ok=True)
    atomic_save_npy(curated / "frames.npy", np.concatenate(all_frames, axis=0))
    atomic_write_parquet(curated / "captures.parquet", pl.DataFrame(capture_rows))
    atomic_write_parquet(curated / "windows.parquet", pl.DataFrame(window_rows))
    atomic_write_parquet(labels_path, pl.DataFrame(label_rows))
    return curated, labels_path
