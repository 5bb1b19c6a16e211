"""ONNX classifier wrapper: context windows [N, context, V] -> softmax probs [N, 3], embedding [N, D].

Model contract: input `features` float32 [N, context_frames, n_velocity_bins] (dynamic N);
outputs `logits` float32 [N, 3] and `embedding` float32 [N, D]. Normalisation lives in the model.
"""

from __future__ import annotations

import os

import numpy as np

from runtime.labels import N_CLASSES
from runtime.onnx_session import make_session

INPUT_NAME = "features"
LOGITS_NAME = "logits"
EMBEDDING_NAME = "embedding"
DEFAULT_BATCH = 256


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


class OnnxClassifier:
    """Runs the exported (float or int8) model with onnxruntime on the CPU, one thread by default."""

    def __init__(
        self,
        model_path_or_bytes: str | os.PathLike | bytes,
        batch_size: int = DEFAULT_BATCH,
        n_threads: int = 1,
    ):
        self.session = make_session(model_path_or_bytes, threads=n_threads)
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        if INPUT_NAME not in inputs or {LOGITS_NAME, EMBEDDING_NAME} - set(outputs):
            raise ValueError(
                f"model must have input {INPUT_NAME!r} and outputs {LOGITS_NAME!r}, {EMBEDDING_NAME!r}; "
                f"has {sorted(inputs)} -> {sorted(outputs)}"
            )
        shape = inputs[INPUT_NAME].shape  # [N, context, V] with N symbolic
        self.context_frames = shape[1] if isinstance(shape[1], int) else None
        self.n_velocity_bins = shape[2] if isinstance(shape[2], int) else None
        emb_dim = outputs[EMBEDDING_NAME].shape[-1]
        self.embedding_dim = emb_dim if isinstance(emb_dim, int) else None
        self.batch_size = batch_size

    def predict(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """windows [N, context, V] -> (probs [N, 3] float32, embedding [N, D] float32)."""
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 3:
            raise ValueError(f"windows must be [N, context, V], got {windows.shape}")
        expected = (self.context_frames, self.n_velocity_bins)
        for got, want, name in zip(windows.shape[1:], expected, ("context", "velocity bins"), strict=True):
            if want is not None and got != want:
                raise ValueError(f"model expects {want} {name}, got {got}")
        probs, embeddings = [], []
        for lo in range(0, len(windows), self.batch_size):
            logits, embedding = self.session.run(
                [LOGITS_NAME, EMBEDDING_NAME], {INPUT_NAME: windows[lo : lo + self.batch_size]}
            )
            if logits.shape[-1] != N_CLASSES:
                raise ValueError(f"model returns {logits.shape[-1]} logits, expected {N_CLASSES}")
            probs.append(softmax(logits.astype(np.float32)))
            embeddings.append(embedding.astype(np.float32).reshape(len(logits), -1))
        if not probs:
            dim = self.embedding_dim or 0
            return np.zeros((0, N_CLASSES), np.float32), np.zeros((0, dim), np.float32)
        return np.concatenate(probs), np.concatenate(embeddings)
