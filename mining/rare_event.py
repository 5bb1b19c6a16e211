"""The rare-event model: a capture trigger trained on what mining found, shipped as payload/rare_event.onnx.

Definition of "rare" (truth-free, from what the flywheel already paid for): a window is a rare-event
example when the paid label says `none` (nobody present) but the seed model confidently detected it
(p_present >= mining.rare_event.min_seed_score) — the hard negatives: fans, curtains, pets, music
distortion and the like. Every other labelled window (people, quiet empty rooms) is a counter-example.

The model is a logistic regression on the shipped classifier's embedding (the device already computes
it), standardisation folded in, exported with onnx.helper. I/O, as fleet/bundle_runner.py expects:
input `embedding` float32 [N, D] (rank 2), output `rare_logit` float32 [N, 1]; the device takes
sigmoid(logit), the max over the capture's windows, and uploads the capture when it exceeds
`rare_event_threshold` from detector.json.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mining.config import MiningConfig, RareEventConfig
from runtime.detector import RARE_EVENT_THRESHOLD_KEY
from runtime.labels import CLASSES

NONE = CLASSES.index("none")
INPUT_NAME, OUTPUT_NAME = "embedding", "rare_logit"
THRESHOLD_KEY = RARE_EVENT_THRESHOLD_KEY  # in detector.json, read by fleet.bundle_runner


def rare_event_targets(labels: np.ndarray, seed_p_present: np.ndarray, min_seed_score: float) -> np.ndarray:
    """[N] 1.0 where the label is `none` but the seed model said present with p >= min_seed_score."""
    labels, seed_p_present = np.asarray(labels), np.asarray(seed_p_present)
    if labels.shape != seed_p_present.shape:
        raise ValueError(f"labels {labels.shape} and seed scores {seed_p_present.shape} differ in shape")
    return ((labels == NONE) & (seed_p_present >= min_seed_score)).astype(np.float32)


def fit_logistic(
    x: np.ndarray, y: np.ndarray, *, l2: float, epochs: int, learning_rate: float
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Class-balanced L2 logistic regression by full-batch gradient descent (deterministic).

    x [N, D], y [N] in {0, 1} -> (w [D], b, mean [D], std [D]); logit = ((x - mean) / std) @ w + b.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"rare-event model needs both classes: {n_pos:.0f} rare, {n_neg:.0f} other windows")
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / std  # [N, D]
    weight = np.where(y > 0, 0.5 / n_pos, 0.5 / n_neg)  # [N] each class carries half the loss
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(epochs):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))  # [N]
        g = weight * (p - y)  # [N]
        w -= learning_rate * (z.T @ g + l2 * w)
        b -= learning_rate * float(g.sum())
    return w, b, mean, std


def logistic_onnx(w: np.ndarray, b: float, mean: np.ndarray, std: np.ndarray, opset: int = 17) -> bytes:
    """ONNX bytes: embedding [N, D] -> rare_logit [N, 1] = ((x - mean) / std) @ w + b."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    d = len(w)
    # fold the standardisation into the weights: ((x - m) / s) @ w + b = x @ (w / s) + (b - m @ (w / s))
    w_eff = (np.asarray(w) / np.asarray(std)).astype(np.float32).reshape(d, 1)
    b_eff = np.array([b - float(np.asarray(mean) @ w_eff[:, 0])], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", [INPUT_NAME, "w", "b"], [OUTPUT_NAME])],
        "rare_event_logistic",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", d])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 1])],
        initializer=[numpy_helper.from_array(w_eff, "w"), numpy_helper.from_array(b_eff, "b")],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="presence-flywheel"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def rare_event_scores(model: bytes, embeddings: np.ndarray) -> np.ndarray:
    """[N] sigmoid(rare_logit) per window, exactly as the device computes it."""
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    logit = session.run(None, {INPUT_NAME: np.asarray(embeddings, dtype=np.float32)})[0]  # [N, 1]
    return 1.0 / (1.0 + np.exp(-logit.reshape(-1).astype(np.float64)))


def train_rare_event_model(
    embeddings: np.ndarray, labels: np.ndarray, seed_p_present: np.ndarray, rp: RareEventConfig
) -> tuple[bytes, dict]:
    """Fit the trigger on labelled windows; return (ONNX bytes, summary with the chosen threshold).

    embeddings [N, D] come from the classifier the bundle ships (the device feeds that model's
    embedding); labels [N] are paid labels; seed_p_present [N] the seed model's scores at mining time.
    The threshold keeps the trigger's rate on counter-examples at most `max_other_rate`, never below
    `min_threshold`.
    """
    y = rare_event_targets(labels, seed_p_present, rp.min_seed_score)
    w, b, mean, std = fit_logistic(embeddings, y, l2=rp.l2, epochs=rp.epochs, learning_rate=rp.learning_rate)
    model = logistic_onnx(w, b, mean, std)
    scores = rare_event_scores(model, embeddings)
    other = scores[y == 0]
    threshold = max(float(np.quantile(other, 1.0 - rp.max_other_rate)), rp.min_threshold)
    threshold = min(threshold, 0.999)
    summary = {
        "n_rare": int(y.sum()),
        "n_other": int(len(y) - y.sum()),
        "threshold": threshold,
        "recall_on_rare": float(np.mean(scores[y > 0] > threshold)),
        "rate_on_other": float(np.mean(other > threshold)),
        "definition": f"labelled none and seed-model p_present >= {rp.min_seed_score} (hard negatives)",
    }
    return model, summary


PAID_SOURCES = ("oracle", "lab", "label_studio")  # weak labels do not define rare events


def fit_trigger_on_labels(
    cfg: MiningConfig,
    context_frames: int,
    label_sets: list[tuple[Path, Path]],
    seed_model: Path,
    ship_model: Path,
    lab_sample: int,
) -> tuple[bytes, dict]:
    """Fit the trigger on what was paid for: (ONNX bytes, summary).

    label_sets: (curated batch dir, labels.parquet) pairs; paid labels only. An all-lab set (the seed
    batch) is sampled down to lab_sample windows of counter-examples. seed_model scores the windows
    (the seed model's p_present defines "rare"); ship_model (the classifier the bundle ships) gives
    the embeddings the device will feed the trigger.
    """
    import polars as pl

    from mining.scoring import score_windows

    context = int(context_frames)
    rng = np.random.default_rng(cfg.seed)
    embs, labels, seed_scores = [], [], []
    for curated, labels_path in label_sets:
        paid = pl.read_parquet(labels_path).filter(pl.col("source").is_in(list(PAID_SOURCES)))
        if paid.height > lab_sample and (paid["source"] == "lab").all():
            paid = paid[np.sort(rng.choice(paid.height, lab_sample, replace=False))]
        if paid.height == 0:
            continue
        seed_p, _ = score_windows(seed_model, curated, paid["window_id"], context)
        _, emb = score_windows(ship_model, curated, paid["window_id"], context)
        embs.append(emb)
        labels.append(paid["label"].to_numpy())
        seed_scores.append(seed_p)
    if not embs:
        raise ValueError("rare-event model needs paid labels; none were found")
    return train_rare_event_model(
        np.concatenate(embs), np.concatenate(labels), np.concatenate(seed_scores), cfg.rare_event
    )


def detector_with_trigger(detector: dict, threshold: float) -> dict:
    """detector.json with the rare-event threshold the device compares the trigger's score against."""
    return {**detector, THRESHOLD_KEY: float(threshold)}
