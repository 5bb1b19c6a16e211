"""On-device self-test: the bundle's own test vectors through its int8 model, and its MBDP tuning.

payload/test_vectors.npz holds "inputs" float32 [N, C, V] and "expected_logits" float32 [N, 3].
1. logits from onnxruntime must match expected_logits within self_test.atol;
2. runtime.classifier.OnnxClassifier (what the device pipeline runs) must give softmax(expected_logits)
   within atol and a finite embedding [N, D];
3. every LR4 crossover split in mbdp.json must equal runtime.crossover's own design at that frequency and
   be stable (the MBDP streaming processor is not in runtime yet, so its coefficients are what is checked).
Never raises on a bad bundle: it reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy.manifest import self_test_settings


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
    if problem is None and "mbdp" in manifest["configs"]:
        problem = _mbdp_problem(payload / manifest["configs"]["mbdp"]["file"])
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


def _mbdp_problem(mbdp_path: Path) -> str | None:
    """Re-derive each crossover split with the runtime's own design and check stability."""
    from runtime.crossover import lr4_sections

    try:
        config = json.loads(mbdp_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"mbdp config unreadable: {exc}"
    if not isinstance(config, dict):
        return "mbdp config must be a JSON object"
    splits = config.get("splits", [])
    if splits and "fs_hz" not in config:
        return "mbdp config has splits but no fs_hz"
    for split in splits:
        try:
            fc = float(split["fc_hz"])
            design = lr4_sections(fc, float(config["fs_hz"]))  # {lowpass, highpass: sos [2, 6]}
            for kind in ("lowpass", "highpass"):
                sos = np.asarray(split[f"{kind}_sos"], dtype=np.float64)
                if sos.shape != design[kind].shape or not np.allclose(
                    sos, design[kind], rtol=1e-9, atol=1e-12
                ):
                    return f"mbdp {kind} split at {fc:g} Hz differs from the runtime's LR4 design"
                poles = np.concatenate([np.roots(section[3:]) for section in sos])
                if np.any(np.abs(poles) >= 1.0):
                    return f"mbdp {kind} split at {fc:g} Hz is unstable"
        except (KeyError, TypeError, ValueError) as exc:
            return f"mbdp split malformed: {exc}"
    return None
