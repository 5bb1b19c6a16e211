"""On-device self-test: the bundle's own test vectors through its int8 model, and its MBDP tuning.

payload/test_vectors.npz holds "inputs" float32 [N, C, V] and "expected_logits" float32 [N, 3].
1. logits from onnxruntime must match expected_logits within self_test.atol;
2. runtime.classifier.OnnxClassifier (what the device pipeline runs) must give softmax(expected_logits)
   within atol and a finite embedding [N, D];
3. the rare-event trigger, when the bundle ships one, must run on the classifier's embeddings;
4. mbdp.json must parse into runtime.mbdp configs, and when the manifest names MBDP vectors
   (self_test.mbdp_vectors: "input" and "expected_<mode>"), the device's own streaming MBDP must
   reproduce every mode's expected output within self_test.mbdp_atol.
Never raises on a bad bundle: it reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy.manifest import self_test_settings

RARE_EVENT_FILE = "rare_event.onnx"  # optional: the capture trigger (mining.rare_event)


@dataclass(frozen=True)
class SelfTestResult:
    ok: bool
    reason: str
    max_abs_diff: float | None = None
    n_vectors: int = 0


def run_model_logits(model_path: Path, inputs: np.ndarray, input_name: str = "features") -> np.ndarray:
    """logits [N, 3] for inputs [N, C, V], single-threaded CPU onnxruntime."""
    from runtime.onnx_session import make_session

    session = make_session(model_path)
    outputs = session.run(None, {input_name: inputs})
    names = [o.name for o in session.get_outputs()]
    if "logits" not in names:
        raise ValueError(f"model has no 'logits' output (outputs: {names})")
    for name, value in zip(names, outputs, strict=True):
        if not np.all(np.isfinite(value)):
            raise ValueError(f"model output {name!r} has non-finite values")
    return outputs[names.index("logits")]


def run_self_test(slot_dir: str | Path, manifest: dict) -> SelfTestResult:
    """Self-test an extracted bundle folder (manifest.json, payload/...)."""
    settings = self_test_settings(manifest)
    payload = Path(slot_dir) / "payload"
    vectors_path = payload / settings["vectors"]
    model_path = payload / manifest["model"]["file"]
    input_name = manifest["model"]["inputs"][0]["name"]
    try:
        with np.load(vectors_path, allow_pickle=False) as vectors:
            if not {"inputs", "expected_logits"} <= set(vectors.files):
                return SelfTestResult(False, f"{settings['vectors']} lacks inputs/expected_logits")
            inputs = vectors["inputs"]
            expected = vectors["expected_logits"]
    except (OSError, ValueError) as exc:
        return SelfTestResult(False, f"cannot read test vectors: {exc}")
    if inputs.dtype != np.float32 or inputs.ndim != 3 or len(inputs) == 0:
        return SelfTestResult(
            False, f"test inputs must be float32 [N,C,V], got {inputs.dtype} {inputs.shape}"
        )
    if expected.dtype != np.float32 or expected.shape != (len(inputs), 3):
        return SelfTestResult(
            False, f"expected_logits must be float32 [{len(inputs)},3], got {expected.shape}"
        )
    try:
        logits = run_model_logits(model_path, inputs, input_name)  # [N, 3]
    except Exception as exc:  # onnxruntime raises its own exception types for broken models
        return SelfTestResult(False, f"model failed to run: {exc}", n_vectors=len(inputs))
    if logits.shape != expected.shape:
        return SelfTestResult(False, f"model logits have shape {logits.shape}, expected {expected.shape}")
    diff = float(np.max(np.abs(logits.astype(np.float64) - expected)))
    if diff > settings["atol"]:
        return SelfTestResult(
            False,
            f"logits differ from the test vectors by {diff:.3g} > atol {settings['atol']:g}",
            diff,
            len(inputs),
        )
    problem = _classifier_problem(model_path, inputs, expected, settings["atol"])
    if problem is None and RARE_EVENT_FILE in manifest["files"]:
        problem = _rare_event_problem(payload / RARE_EVENT_FILE, model_path, inputs)
    if problem is None and "mbdp" in manifest["configs"]:
        vectors = settings.get("mbdp_vectors")
        problem = _mbdp_problem(
            payload / manifest["configs"]["mbdp"]["file"],
            None if vectors is None else payload / vectors,
            float(settings["mbdp_atol"]),
        )
    if problem is not None:
        return SelfTestResult(False, problem, diff, len(inputs))
    return SelfTestResult(True, "ok", diff, len(inputs))


def _classifier_problem(
    model_path: Path, inputs: np.ndarray, expected: np.ndarray, atol: float
) -> str | None:
    """The device pipeline's classifier must agree with the test vectors too."""
    from runtime.classifier import OnnxClassifier, softmax

    try:
        probs, embedding = OnnxClassifier(model_path).predict(inputs)  # [N, 3], [N, D]
    except Exception as exc:  # onnxruntime and the classifier raise their own types
        return f"runtime classifier failed: {exc}"
    diff = float(np.max(np.abs(probs - softmax(expected))))
    if diff > atol:
        return f"runtime classifier probabilities differ by {diff:.3g} > atol {atol:g}"
    if embedding.shape[0] != len(inputs) or not np.all(np.isfinite(embedding)):
        return f"runtime classifier embedding is malformed ({embedding.shape})"
    return None


def _rare_event_problem(trigger_path: Path, model_path: Path, inputs: np.ndarray) -> str | None:
    """The rare-event trigger must take the classifier's embedding and give one finite logit each."""
    from runtime.classifier import OnnxClassifier
    from runtime.onnx_session import make_session

    try:
        _, embedding = OnnxClassifier(model_path).predict(inputs)  # [N, D]
        session = make_session(trigger_path)
        (logit,) = session.run(None, {session.get_inputs()[0].name: embedding})
    except Exception as exc:  # onnxruntime raises its own exception types for broken models
        return f"rare-event trigger failed to run: {exc}"
    if logit.shape != (len(inputs), 1) or not np.all(np.isfinite(logit)):
        return f"rare-event trigger output must be finite [{len(inputs)}, 1], got {logit.shape}"
    return None


def _mbdp_problem(tuning_path: Path, vectors_path: Path | None, atol: float) -> str | None:
    """The device's MBDP must accept the tuning and reproduce the bundle's MBDP vectors."""
    from runtime.mbdp import MultibandProcessor, tuning_configs

    try:
        configs = tuning_configs(json.loads(tuning_path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        return f"mbdp tuning refused: {exc}"
    if vectors_path is None:
        return None
    try:
        with np.load(vectors_path, allow_pickle=False) as vectors:
            arrays = {name: vectors[name] for name in vectors.files}
    except (OSError, ValueError) as exc:
        return f"cannot read mbdp vectors: {exc}"
    x = arrays.get("input")
    if x is None or x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        return "mbdp vectors lack a finite 1-D input"
    for mode, cfg in configs.items():
        expected = arrays.get(f"expected_{mode}")
        if expected is None or expected.shape != x.shape:
            return f"mbdp vectors lack expected_{mode} of shape {x.shape}"
        diff = float(np.max(np.abs(MultibandProcessor(cfg).process_aligned(x) - expected)))
        if not diff <= atol:
            return f"mbdp {mode} output differs from the test vectors by {diff:.3g} > atol {atol:g}"
    return None
