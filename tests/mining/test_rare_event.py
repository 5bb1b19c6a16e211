"""The rare-event trigger: what counts as rare, the logistic fit, its ONNX export, the threshold rule."""

from __future__ import annotations

import numpy as np
import pytest

from mining.rare_event import (
    INPUT_NAME,
    OUTPUT_NAME,
    THRESHOLD_KEY,
    detector_with_trigger,
    fit_logistic,
    logistic_onnx,
    rare_event_scores,
    rare_event_targets,
    train_rare_event_model,
)

pytest.importorskip("onnxruntime")

RARE_PARAMS = {
    "min_seed_score": 0.5,
    "l2": 0.001,
    "epochs": 400,
    "learning_rate": 0.5,
    "max_other_rate": 0.05,
    "min_threshold": 0.5,
    "lab_windows": 100,
}


def params(**overrides):
    from mining.config import RareEventConfig
    from runtime.config import config_from_dict

    return config_from_dict(RareEventConfig, {**RARE_PARAMS, **overrides}, "mining.rare_event")


def two_clusters(n_other: int, n_rare: int, gap: float, dim: int = 6, seed: int = 0):
    """Embeddings [n, dim] of two Gaussian clusters `gap` apart along every axis, off the origin."""
    rng = np.random.default_rng(seed)
    other = rng.normal(3.0, 1.0, size=(n_other, dim))
    rare = rng.normal(3.0 + gap, 1.0, size=(n_rare, dim))
    x = np.concatenate([other, rare]).astype(np.float32)
    y = np.concatenate([np.zeros(n_other), np.ones(n_rare)]).astype(np.float32)
    return x, y


def numpy_logit(x, w, b, mean, std) -> np.ndarray:
    return ((np.asarray(x, np.float64) - mean) / std) @ w + b


def test_targets_are_paid_none_labels_the_seed_model_detected():
    labels = np.array([0, 0, 0, 1, 2, 0])
    seed_p = np.array([0.9, 0.5, 0.49, 0.95, 0.99, 0.0])
    # none & p >= 0.5 (boundary included); people are never rare however confident the seed model was
    assert rare_event_targets(labels, seed_p, 0.5).tolist() == [1, 1, 0, 0, 0, 0]
    assert rare_event_targets(labels, seed_p, 0.95).tolist() == [0, 0, 0, 0, 0, 0]
    assert rare_event_targets(labels, seed_p, 0.5).dtype == np.float32
    with pytest.raises(ValueError, match="differ in shape"):
        rare_event_targets(labels, seed_p[:-1], 0.5)


def test_fit_separates_a_separable_set_even_when_imbalanced():
    x, y = two_clusters(n_other=300, n_rare=12, gap=6.0)
    w, b, mean, std = fit_logistic(x, y, l2=1e-3, epochs=400, learning_rate=0.5)
    logit = numpy_logit(x, w, b, mean, std)
    assert np.all(logit[y > 0] > 0) and np.all(logit[y == 0] < 0)
    # class balance: the rare few are not sacrificed to the majority, the margin is on both sides
    assert logit[y > 0].min() > 1.0 and logit[y == 0].max() < -1.0
    assert np.allclose(mean, x.mean(axis=0), atol=1e-5) and np.all(std > 0)


def test_fit_is_deterministic_and_refuses_a_single_class():
    x, y = two_clusters(50, 10, gap=3.0)
    a = fit_logistic(x, y, l2=1e-3, epochs=50, learning_rate=0.5)
    b = fit_logistic(x, y, l2=1e-3, epochs=50, learning_rate=0.5)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    with pytest.raises(ValueError, match="needs both classes: 0 rare, 60 other"):
        fit_logistic(x, np.zeros(60), l2=1e-3, epochs=5, learning_rate=0.5)
    with pytest.raises(ValueError, match="needs both classes: 60 rare, 0 other"):
        fit_logistic(x, np.ones(60), l2=1e-3, epochs=5, learning_rate=0.5)


def test_onnx_model_reproduces_the_numpy_logit():
    import onnx
    import onnxruntime as ort

    x, y = two_clusters(200, 30, gap=2.0, dim=8, seed=3)
    x = x * 7.0 - 20.0  # far from zero mean / unit scale: the folded standardisation must hold
    w, b, mean, std = fit_logistic(x, y, l2=1e-3, epochs=200, learning_rate=0.5)
    model = logistic_onnx(w, b, mean, std)

    graph = onnx.load_from_string(model).graph
    assert [i.name for i in graph.input] == [INPUT_NAME] and [o.name for o in graph.output] == [OUTPUT_NAME]
    assert len(graph.input[0].type.tensor_type.shape.dim) == 2  # rank 2, as fleet.bundle_runner expects
    out = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {INPUT_NAME: x})[0]
    assert out.shape == (len(x), 1) and out.dtype == np.float32
    expected = numpy_logit(x, w, b, mean, std)
    np.testing.assert_allclose(out[:, 0], expected, rtol=1e-5, atol=1e-5)  # float32 rounding only
    np.testing.assert_allclose(rare_event_scores(model, x), 1 / (1 + np.exp(-expected)), atol=1e-6)


def test_threshold_keeps_the_rate_on_other_windows_within_max_other_rate():
    # overlapping clusters: many counter-examples score above 0.5, so the quantile rule has to bite
    x, y = two_clusters(400, 60, gap=0.8, seed=5)
    labels = np.where(y > 0, 0, np.random.default_rng(1).integers(0, 3, len(y)))  # rare ⇒ labelled none
    seed_p = np.where(y > 0, 0.9, 0.1)  # ... and detected by the seed model
    thresholds = []
    for rate in (0.02, 0.05, 0.1):
        model, summary = train_rare_event_model(x, labels, seed_p, params(max_other_rate=rate))
        scores = rare_event_scores(model, x)
        assert np.mean(scores[y == 0] > 0.5) > 0.1  # the floor alone would not keep the rate
        assert summary["n_rare"] == 60 and summary["n_other"] == 400
        assert summary["rate_on_other"] <= rate
        assert summary["rate_on_other"] == pytest.approx(np.mean(scores[y == 0] > summary["threshold"]))
        assert summary["recall_on_rare"] == pytest.approx(np.mean(scores[y > 0] > summary["threshold"]))
        assert 0.5 < summary["threshold"] <= 0.999
        thresholds.append(summary["threshold"])
    assert thresholds == sorted(thresholds, reverse=True)  # fewer false triggers allowed: higher bar
    assert summary["recall_on_rare"] > 0.5  # at 10 % false triggers, most rare windows are caught

    # a high floor wins over the quantile when the quantile sits below it
    _, floored = train_rare_event_model(x, labels, seed_p, params(max_other_rate=0.5, min_threshold=0.9))
    assert floored["threshold"] == pytest.approx(0.9)


def test_training_refuses_when_mining_found_no_hard_negative():
    x, _ = two_clusters(40, 10, gap=3.0)
    labels = np.r_[np.zeros(40, int), np.full(10, 2)]  # the confident ones were real people
    seed_p = np.r_[np.full(40, 0.1), np.full(10, 0.9)]
    with pytest.raises(ValueError, match="needs both classes: 0 rare"):
        train_rare_event_model(x, labels, seed_p, params())


def test_detector_with_trigger_adds_the_threshold_and_leaves_the_input_alone():
    detector = {"strict_threshold": 0.8, "hold_s": 5.0}
    out = detector_with_trigger(detector, np.float64(0.73))
    assert out == {"strict_threshold": 0.8, "hold_s": 5.0, THRESHOLD_KEY: 0.73}
    assert type(out[THRESHOLD_KEY]) is float and THRESHOLD_KEY not in detector
