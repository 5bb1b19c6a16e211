"""Whole device chain: front-end -> context windows (stride 1) -> classifier -> detector.

DevicePipeline runs one capture in a batch call; DevicePipeline.stream() runs a continuous stream fed
capture by capture (front-end state and classifier context carry over, as on the device), keeping only
the per-frame class probabilities, so a day of audio never sits in memory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime.classifier import OnnxClassifier
from runtime.detector import DetectorConfig, run_detector
from runtime.frontend import FrontendConfig, StreamingFrontend, extract_features, frame_end_times
from runtime.windows import context_windows, stream_start_windows

WINDOW_CHUNK = 4096  # end frames classified per chunk (bounds memory on long captures)


@dataclass
class CaptureDecisions:
    times_s: np.ndarray  # [T] float64, end time of each frame from capture start
    probs: np.ndarray  # [T, 3] float32; (1, 0, 0) before the first full context
    present: np.ndarray  # [T] bool
    onset_times_s: np.ndarray  # [k] float64
    embedding: np.ndarray  # [T, D] float32; zeros before the first full context
    emission_on: np.ndarray  # [T] bool (all True unless duty cycling is on)
    onset_strict: np.ndarray | None = None  # [k] bool: onset on a strict positive, else a lenient one


class DevicePipeline:
    """What the device runs, as one batch call per capture (same code path as streaming)."""

    def __init__(
        self,
        model_path: str | os.PathLike | bytes,
        frontend_cfg: FrontendConfig | dict[str, Any],
        detector_cfg: DetectorConfig | dict[str, Any],
    ):
        self.frontend_cfg = (
            frontend_cfg
            if isinstance(frontend_cfg, FrontendConfig)
            else FrontendConfig.from_dict(frontend_cfg)
        )
        self.detector_cfg = (
            detector_cfg
            if isinstance(detector_cfg, DetectorConfig)
            else DetectorConfig.from_dict(detector_cfg)
        )
        self.classifier = OnnxClassifier(model_path)
        context = self.classifier.context_frames
        if context is not None and context != self.detector_cfg.context_frames:
            raise ValueError(
                f"model context {context} != detector context_frames {self.detector_cfg.context_frames}"
            )
        hop_s = self.frontend_cfg.hop / self.frontend_cfg.baseband_fs_hz
        if abs(hop_s - self.detector_cfg.frame_hop_s) > 1e-9:
            raise ValueError(f"detector frame_hop_s {self.detector_cfg.frame_hop_s} != front-end hop {hop_s}")

    def describe(self, fs_hz: float, carrier_hz: float, n_mics: int) -> dict[str, Any]:
        """Configuration as the device would run it (front-end incl. canceller state, detector)."""
        frontend = StreamingFrontend(self.frontend_cfg, fs_hz, carrier_hz, n_mics)
        return {**frontend.describe(), "detector": self.detector_cfg.to_dict()}

    def stream(self) -> ClassifierStream:
        """The classifier over a continuous stream of front-end frames: feed_frames(frames) in order."""
        return ClassifierStream(self)

    def run_capture(self, iq: np.ndarray, fs_hz: float, carrier_hz: float) -> CaptureDecisions:
        frames = extract_features(iq, fs_hz, carrier_hz, self.frontend_cfg)  # [T, V]
        return self.run_frames(frames)

    def classify_frames(self, frames: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Probs [T - first, 3] and embeddings [T - first, D] of frames [first, T) of frames [T, V], each
        frame with the context before it. Frames before the first full context: with the detector's
        stream_start "wait", probs (1, 0, 0) and embedding zeros (None when no frame had a full context);
        otherwise a window padded as runtime.windows.stream_start_windows says (frames [0] is then the
        stream's first frame)."""
        n_frames = len(frames)
        context = self.detector_cfg.context_frames
        probs = np.zeros((n_frames - first, 3), np.float32)
        probs[:, 0] = 1.0
        embedding: np.ndarray | None = None
        if self.detector_cfg.decides_from_stream_start and first < context - 1:
            # the stream's first frames (frames starts at the stream's frame 0 here: see ClassifierStream)
            windows = stream_start_windows(frames[: context - 1], context, self.detector_cfg.stream_start)
            if len(windows) > first:
                window_probs, window_embedding = self.classifier.predict(windows[first:])
                embedding = np.zeros((n_frames - first, window_embedding.shape[1]), np.float32)
                probs[: len(window_probs)] = window_probs
                embedding[: len(window_probs)] = window_embedding
        # windows at stride 1, a chunk of end frames at a time so long captures stay small in memory
        for lo in range(max(context - 1, first), n_frames, WINDOW_CHUNK):
            hi = min(lo + WINDOW_CHUNK, n_frames)
            windows, end_frame = context_windows(frames[lo - context + 1 : hi], context, stride=1)
            window_probs, window_embedding = self.classifier.predict(windows)  # [n, 3], [n, D]
            if embedding is None:
                embedding = np.zeros((n_frames - first, window_embedding.shape[1]), np.float32)
            rows = lo + end_frame - (context - 1) - first
            probs[rows] = window_probs
            embedding[rows] = window_embedding
        return probs, embedding

    def run_frames(self, frames: np.ndarray) -> CaptureDecisions:
        """Decisions for precomputed front-end frames [T, V]."""
        n_frames = len(frames)
        probs, embedding = self.classify_frames(frames, 0)
        if embedding is None:
            embedding = np.zeros((n_frames, self.classifier.embedding_dim or 0), np.float32)
        trace = run_detector(probs, self.detector_cfg)
        trace.present[: self.detector_cfg.no_decision_frames()] = False  # waiting for the first context
        times = frame_end_times(n_frames, self.frontend_cfg)
        return CaptureDecisions(
            times_s=times,
            probs=probs,
            present=trace.present,
            onset_times_s=times[trace.onsets],
            embedding=embedding,
            emission_on=trace.emission_on,
            onset_strict=trace.onset_strict,
        )


class ClassifierStream:
    """The classifier over a continuous stream of front-end frames, fed block by block.

    feed_frames(frames [k, V]) returns the probs [k, 3] of those frames; each frame is classified with
    the context frames before it, from earlier blocks too, exactly as one long capture would be
    (frames before the stream's first full context: (1, 0, 0), or padded windows when the detector's
    stream_start says so). The front-end
    (runtime.frontend.StreamingFrontend) keeps its own state across blocks; the detector state machine
    runs over the stream's probs afterwards (runtime.detector.run_detector; with stream_start "wait" no
    frame before the first full context is ever present, as in run_frames)."""

    def __init__(self, pipeline: DevicePipeline):
        self.pipeline = pipeline
        self._tail = np.zeros((0, pipeline.frontend_cfg.frame_width), np.float32)  # last context-1 frames

    def feed_frames(self, frames: np.ndarray) -> np.ndarray:
        context = self.pipeline.detector_cfg.context_frames
        joined = np.concatenate([self._tail, frames]) if len(self._tail) else np.asarray(frames, np.float32)
        probs, _ = self.pipeline.classify_frames(joined, len(self._tail))
        self._tail = joined[len(joined) - min(len(joined), context - 1) :]
        return probs
