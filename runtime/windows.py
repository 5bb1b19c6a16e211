"""Context windows over a frame sequence: the classifier's input slices."""

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
