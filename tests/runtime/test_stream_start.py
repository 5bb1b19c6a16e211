"""Decisions from a stream's first frame (runtime.windows.stream_start_windows, DetectorConfig.stream_start)
and settled demodulator edges for recordings (runtime.demod edge="settled")."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from config_testkit import detector_config, frontend_config
from runtime_tiny_onnx import build_linear_model

from runtime.demod import demodulate
from runtime.detector import DetectorConfig
from runtime.pipeline import DevicePipeline
from runtime.windows import STREAM_START_MODES, stream_start_windows

FE = frontend_config()
V = FE.n_velocity_bins


def test_stream_start_windows_pad_the_missing_past() -> None:
    frames = np.arange(5 * 3, dtype=np.float32).reshape(5, 3)  # [T=5, V=3]
    first = stream_start_windows(frames, 4, "pad_first")
    assert first.shape == (3, 4, 3)  # ends 0, 1, 2: context - 1 of them
    np.testing.assert_array_equal(first[1], frames[[0, 0, 0, 1]])
    minimum = stream_start_windows(frames[::-1].copy(), 4, "pad_min")
    np.testing.assert_array_equal(minimum[1, :2], np.repeat(frames[3:4], 2, axis=0))  # min of frames 4, 3
    mirror = stream_start_windows(frames, 4, "pad_mirror")
    np.testing.assert_array_equal(mirror[1], frames[[1, 0, 0, 1]])
    np.testing.assert_array_equal(mirror[2], frames[[0, 0, 1, 2]])
    assert stream_start_windows(frames[:2], 4, "pad_mirror").shape == (2, 4, 3)
    with pytest.raises(ValueError):
        stream_start_windows(frames, 4, "wait")


def test_detector_config_default_keeps_old_behaviour() -> None:
    old = detector_config().to_dict()
    del old["stream_start"]  # a detector.json written before the option existed
    cfg = DetectorConfig.from_dict(old)
    assert cfg.stream_start == "wait" and cfg.no_decision_frames() == cfg.context_frames - 1
    assert detector_config(stream_start="pad_mirror").no_decision_frames() == 0
    with pytest.raises(ValueError, match="stream_start"):
        detector_config(stream_start="guess")
    assert set(STREAM_START_MODES) >= {"wait", "pad_first", "pad_min", "pad_mirror"}


def _loud_model(context: int) -> bytes:
    """'major' when the mean dB of the window is above -50."""
    w = np.zeros((V, 3), np.float32)
    w[:, 2] = 1.0 / V
    return build_linear_model(context, V, w, np.array([-50.0, -200.0, 0.0]))


@pytest.mark.parametrize("mode", ["pad_first", "pad_min", "pad_mirror"])
def test_pipeline_decides_from_the_first_frame_and_streams_like_batch(mode) -> None:
    context = 8
    det = detector_config(
        context_frames=context, frame_hop_s=FE.hop / FE.baseband_fs_hz, hold_s=0.2, stream_start=mode
    )
    rng = np.random.default_rng(0)
    frames = rng.normal(-90.0, 2.0, (40, V)).astype(np.float32)
    frames[1:8] += 80.0  # loud from the second frame on
    pipeline = DevicePipeline(_loud_model(context), FE, det)
    whole = pipeline.run_frames(frames)
    assert whole.present[: context - 1].any() and not whole.present[0]  # decided inside the first context
    waiting = DevicePipeline(_loud_model(context), FE, detector_config(context_frames=context, hold_s=0.2))
    assert not waiting.run_frames(frames).present[: context - 1].any()
    stream = pipeline.stream()
    cuts = [0, 1, 3, 9, 40]  # blocks inside the first context, and across it
    probs = np.concatenate([stream.feed_frames(frames[a:b]) for a, b in itertools.pairwise(cuts)])
    np.testing.assert_allclose(probs, whole.probs, atol=1e-6)


def test_settled_demod_edges_have_no_ramp() -> None:
    fs, f0, n = 44100.0, 20000.0, 44100
    t = np.arange(n) / fs
    pcm = (0.3 * np.cos(2 * np.pi * f0 * t + 0.7)).astype(np.float32)
    zeros, settled = demodulate(pcm, fs, f0, 2000.0), demodulate(pcm, fs, f0, 2000.0, edge="settled")
    assert zeros.shape == settled.shape == (1, 2000)
    assert abs(abs(zeros[0, 0]) - 0.3) > 0.05  # the filters start from zeros: a ramp
    np.testing.assert_allclose(np.abs(settled[0, [0, 1, -2, -1]]), 0.3, atol=1e-3)
    np.testing.assert_allclose(settled[0, 200:-200], zeros[0, 200:-200], atol=1e-6)  # the same inside
    with pytest.raises(ValueError, match="edge"):
        demodulate(pcm, fs, f0, 2000.0, edge="mirror")
