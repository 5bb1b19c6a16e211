"""ONNX classifier contract, device pipeline on a tiny model, CFAR baseline."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from config_testkit import cfar_config, detector_config, frontend_config
from runtime_tiny_onnx import build_linear_model

from runtime.cfar import CfarConfig, run_cfar
from runtime.classifier import OnnxClassifier
from runtime.frontend import extract_features
from runtime.pipeline import DevicePipeline
from runtime.synthetic import ArrayGeometry, static_channel, walker_echo

FE = frontend_config()
V = FE.n_velocity_bins


def _motion_model(context: int) -> bytes:
    """Logit of 'major' grows with the mean dB in the motion band; 'none' with the rest."""
    v = np.abs(np.linspace(-FE.v_max_mps, FE.v_max_mps, V))
    w = np.zeros((V, 3), np.float32)
    w[v >= 0.5, 2] = 1.0 / np.sum(v >= 0.5)
    return build_linear_model(context, V, w, np.array([-88.0, -200.0, 0.0]))


def test_classifier_softmax_embedding_and_batching(tmp_path) -> None:
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((V, 3)).astype(np.float32)
    model = build_linear_model(4, V, weights, np.array([0.1, 0.2, 0.3]))
    windows = rng.standard_normal((70, 4, V)).astype(np.float32)
    classifier = OnnxClassifier(model, batch_size=16)
    probs, embedding = classifier.predict(windows)
    assert probs.shape == (70, 3) and embedding.shape == (70, V)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    logits = windows.mean(axis=1) @ weights + np.array([0.1, 0.2, 0.3])
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(probs, expected / expected.sum(1, keepdims=True), atol=1e-5)
    path = tmp_path / "m.onnx"
    path.write_bytes(model)
    np.testing.assert_allclose(OnnxClassifier(path).predict(windows)[0], probs, atol=1e-6)
    with pytest.raises(ValueError):
        classifier.predict(windows[:, :3])  # wrong context
    assert classifier.predict(windows[:0])[0].shape == (0, 3)


def _scene(walker: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    geometry, n = ArrayGeometry(), 16000
    iq = np.repeat(static_channel(geometry, 40000.0, 343.0, rng)[:, None], n, axis=1)
    iq = iq + 1e-4 * (rng.standard_normal((4, n)) + 1j * rng.standard_normal((4, n)))
    if walker:
        iq[:, n // 2 :] += walker_echo(geometry, n - n // 2, 2000.0, 40000.0, 343.0, 60.0, 1.0, 0.05)
    return iq.astype(np.complex64)


def test_device_pipeline_detects_walk_in_and_respects_context() -> None:
    context = 8
    det = detector_config(context_frames=context, frame_hop_s=FE.hop / FE.baseband_fs_hz, hold_s=0.5)
    pipeline = DevicePipeline(_motion_model(context), FE, det)
    decisions = pipeline.run_capture(_scene(True, 1), 2000.0, 40000.0)
    n_frames = len(decisions.times_s)
    assert decisions.probs.shape == (n_frames, 3) and decisions.embedding.shape == (n_frames, V)
    np.testing.assert_array_equal(decisions.probs[: context - 1], np.tile([1, 0, 0], (context - 1, 1)))
    assert not decisions.present[: context - 1].any()
    walk_in_s = 4.0
    assert not decisions.present[decisions.times_s < walk_in_s].any()
    assert decisions.present[decisions.times_s > walk_in_s + 0.5].mean() > 0.9
    assert len(decisions.onset_times_s) == 1 and walk_in_s <= decisions.onset_times_s[0] < walk_in_s + 0.5
    assert pipeline.describe(2000.0, 40000.0, 1)["canceller"] == "bypassed: single microphone"
    with pytest.raises(ValueError):
        DevicePipeline(_motion_model(context), FE, detector_config(context_frames=16))


def test_cfar_fires_on_walker_band_and_not_on_noise() -> None:
    cfg = cfar_config(train_frames=32, guard_frames=2, threshold_db=6.0, hold_s=0.5)
    quiet = extract_features(_scene(False, 2), 2000.0, 40000.0, FE)
    assert run_cfar(quiet, cfg).mean() < 0.02
    walk = extract_features(_scene(True, 3), 2000.0, 40000.0, FE)
    present = run_cfar(walk, cfg)
    half = len(walk) // 2
    assert not present[:half].any()
    assert present[half + 2 :].mean() > 0.9
    with pytest.raises(ValueError):
        run_cfar(walk[:, :10], cfg)
    assert CfarConfig.from_dict(cfg.to_dict()) == cfg


def test_pipeline_chunking_matches_single_pass(monkeypatch) -> None:
    import runtime.pipeline as pipeline_module

    context = 8
    det = detector_config(context_frames=context, frame_hop_s=FE.hop / FE.baseband_fs_hz, hold_s=0.5)
    frames = extract_features(_scene(True, 5), 2000.0, 40000.0, FE)
    whole = DevicePipeline(_motion_model(context), FE, det).run_frames(frames)
    monkeypatch.setattr(pipeline_module, "WINDOW_CHUNK", 37)
    chunked = DevicePipeline(_motion_model(context), FE, det).run_frames(frames)
    np.testing.assert_allclose(chunked.probs, whole.probs, atol=1e-6)
    np.testing.assert_allclose(chunked.embedding, whole.embedding, atol=1e-6)
    np.testing.assert_array_equal(chunked.present, whole.present)
    short = DevicePipeline(_motion_model(context), FE, det).run_frames(frames[:5])
    assert short.probs.shape == (5, 3) and not short.present.any() and short.embedding.shape == (5, V)


def test_stream_fed_capture_by_capture_equals_one_long_capture() -> None:
    """ClassifierStream: front-end and classifier context carry over block boundaries of any size."""
    from runtime.frontend import StreamingFrontend

    fs, f0 = 2000.0, 40000.0
    iq = np.concatenate([_scene(False, 1), _scene(True, 2)], axis=1)  # [4, 32000]
    n = iq.shape[1]
    fe = frontend_config(level_reference="carrier")
    pipeline = DevicePipeline(_motion_model(32), fe, detector_config(context_frames=32))
    whole = pipeline.run_capture(iq, fs, f0)
    frontend, stream = StreamingFrontend(fe, fs, f0, 4), pipeline.stream()
    cuts = [0, 7, 1000, 1033, 9000, n]  # blocks shorter than a frame and than a context
    blocks = [iq[:, a:b] for a, b in itertools.pairwise(cuts)]
    probs = np.concatenate([stream.feed_frames(frontend.process(block)) for block in blocks])
    assert probs.shape == whole.probs.shape
    np.testing.assert_allclose(probs, whole.probs, atol=1e-4)  # the front-end agrees to float32 rounding
    assert (probs[:31] == (1.0, 0.0, 0.0)).all()
