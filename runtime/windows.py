"""Context windows over a frame sequence: the classifier's input slices.

stream_start_windows gives the first context - 1 frames of a stream a window too (the stream-start
mode of runtime.detector.DetectorConfig): the missing past is padded, either with the stream's first
frame repeated ("pad_first") or with the per-bin minimum of the frames seen so far ("pad_min": a
causal estimate of the room without motion, since motion only ever adds Doppler power)."""

from __future__ import annotations

import numpy as np


def context_windows(frames: np.ndarray, context: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut frames [T, V] into windows [N, context, V] (float32) ending at frames end_frame [N].

    Window k covers frames [end - context + 1, end] with end = context - 1 + k * stride.
    Fewer than `context` frames give N = 0.
    """
    frames = np.asarray(frames)
    if frames.ndim != 2:
        raise ValueError(f"frames must be [T, V], got shape {frames.shape}")
    if context < 1 or stride < 1:
        raise ValueError(f"context and stride must be >= 1, got {context}, {stride}")
    n_frames, n_bins = frames.shape
    if n_frames < context:
        return np.zeros((0, context, n_bins), np.float32), np.zeros(0, np.int64)
    end_frame = np.arange(context - 1, n_frames, stride, dtype=np.int64)  # [N]
    view = np.lib.stride_tricks.sliding_window_view(frames, context, axis=0)  # [T-context+1, V, context]
    windows = view[end_frame - (context - 1)].transpose(0, 2, 1)  # [N, context, V]
    return np.ascontiguousarray(windows, dtype=np.float32), end_frame


STREAM_START_MODES = (
    "wait",
    "pad_first",
    "pad_min",
    "pad_mirror",
)  # wait: no decision before the first full context


def decides_from_stream_start(mode: str) -> bool:
    """True when stream-start `mode` gives frames before the first full context a (padded) decision."""
    if mode not in STREAM_START_MODES:
        raise ValueError(f"stream_start {mode!r} is not one of {', '.join(STREAM_START_MODES)}")
    return mode != "wait"


def stream_start_windows(frames: np.ndarray, context: int, mode: str) -> np.ndarray:
    """Windows [k, context, V] float32 ending at frames 0..k-1 of a stream's first frames [T, V],
    k = min(T, context - 1), the past before frame 0 padded as `mode` says (module docstring)."""
    frames = np.asarray(frames, np.float32)
    if mode not in STREAM_START_MODES[1:]:
        raise ValueError(f"stream start mode {mode!r} pads nothing (one of {STREAM_START_MODES[1:]})")
    k = min(len(frames), context - 1)
    out = np.empty((k, context, frames.shape[1]), np.float32)
    for end in range(k):
        seen = frames[: end + 1]  # [end + 1, V]
        if mode == "pad_mirror":  # ... seen[1], seen[0], seen[0], seen[1], ... seen[end]
            out[end] = np.pad(seen, ((context - end - 1, 0), (0, 0)), mode="symmetric")
            continue
        out[end, : context - end - 1] = seen[0] if mode == "pad_first" else seen.min(axis=0)  # [V]
        out[end, context - end - 1 :] = seen
    return out


def stream_start_ends(n_frames: int, context: int, stride: int) -> np.ndarray:
    """End frames [k] int64 of the stream-start windows on context_windows' stride grid (ends congruent
    to context - 1 modulo stride) before the first full context: the windows a clip that is a stream
    of its own adds for training when the detector decides from the stream's start."""
    return np.arange((context - 1) % stride, min(context - 1, n_frames), stride, dtype=np.int64)
