"""Assemble a firmware bundle's payload and manifest from a trained model and its configs, then sign it.

Pure over its inputs: the caller (flows/stages.py) finds the model, configs, metrics and lineage.
Test vectors are packed into a deterministic .npz (fixed zip timestamps) so the same inputs give the
same bundle bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx

from deploy.bundle import build_bundle
from deploy.keystore import Keystore
from deploy.mbdp_payload import TUNING_FILE, VECTORS_FILE, mbdp_payload
from deploy.npz import deterministic_npz
from runtime.calibration import RECORD_VERSION as CALIBRATION_RUNTIME_VERSION
from runtime.onnx_session import make_session

FRONTEND_RUNTIME_VERSION = "frontend-3"  # 2: per-bin gated canceller after the FFT; 3: feature channels
DETECTOR_RUNTIME_VERSION = "detector-1"
DEFAULT_MBDP_SELF_TEST = {"seconds": 0.25, "seed": 0, "atol": 1e-6}


def expected_logits(model_path: Path, inputs: np.ndarray) -> np.ndarray:
    """What the device's self-test and the firmware C reference must reproduce: the int8 model's logits
    on the test inputs, computed the way the device runs the model (runtime.onnx_session)."""
    session = make_session(model_path)
    (logits,) = session.run(["logits"], {"features": inputs.astype(np.float32)})
    return logits.astype(np.float32)


def input_quantization(model_path: Path) -> dict:
    """How the int8 model quantizes its input: the first QuantizeLinear in graph order.

    The per-bin normalisation (a float subtract and scale of the dB features) may come before it,
    so the quantized tensor is named: the firmware quantizes at that point.
    """
    model = onnx.load(str(model_path))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:  # ONNX graphs are stored in topological order
        if node.op_type != "QuantizeLinear" or node.input[0] in inits:
            continue
        scale = inits.get(node.input[1])
        zero = inits.get(node.input[2]) if len(node.input) > 2 else np.zeros((), np.int8)
        if scale is not None and zero is not None and scale.size == 1:
            return {
                "dtype": str(zero.dtype),
                "scale": float(scale),
                "zero_point": int(zero),
                "tensor": node.input[0],
            }
    raise ValueError(f"{model_path}: no per-tensor QuantizeLinear on an activation (is this the int8 model?)")


def _tensor_specs(model_path: Path) -> tuple[list[dict], list[dict]]:
    model = onnx.load(str(model_path))

    def spec(v) -> dict:
        dims = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "N")
            for d in v.type.tensor_type.shape.dim
        ]
        return {
            "name": v.name,
            "shape": dims,
            "dtype": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name,
        }

    return [spec(v) for v in model.graph.input], [spec(v) for v in model.graph.output]


def _config_bytes(obj: dict) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def package_bundle(
    *,
    model_int8: Path,
    frontend: dict,
    detector: dict,
    mbdp: dict,
    calibration: dict,
    test_inputs: np.ndarray,
    metrics: dict[str, float],
    lineage: dict,
    package_params: dict,
    out_path: Path,
    keystore: Keystore | None = None,
    extra_files: dict[str, Path | bytes] | None = None,
    firmware_c: bool = True,
    release: dict | None = None,
) -> dict:
    """Build and sign the bundle at out_path; returns its manifest.

    mbdp is the tuning from runtime.mbdp.bundle_tuning (its vectors and Q31 biquads are added here,
    sized by package_params["mbdp_self_test"]); calibration is the runtime.calibration config the
    device calibrates with.
    firmware_c adds the C reference inference under c/ (deploy.firmware_c_emit.firmware_payload); it
    raises deploy.firmware_c.UnsupportedModelError for a model the C cannot run (e.g. float nodes left
    by the exclude_worst_nodes fallback).
    release: which of the turn's models this is and why it was chosen (deploy.release_gate), recorded in
    the manifest as {model, candidate, reason}.
    """
    inputs, outputs = _tensor_specs(model_int8)
    vectors = {
        "inputs": test_inputs.astype(np.float32),
        "expected_logits": expected_logits(model_int8, test_inputs),
    }
    c_files: dict[str, Path | bytes] = {}
    if firmware_c:
        from deploy.firmware_c_emit import firmware_payload

        c_files.update(
            firmware_payload(model_int8, frontend, detector, vectors["inputs"], vectors["expected_logits"])
        )
    mbdp_test = {**DEFAULT_MBDP_SELF_TEST, **package_params.get("mbdp_self_test", {})}
    payload: dict[str, Path | bytes] = {
        "model_int8.onnx": model_int8,
        "frontend.json": _config_bytes(frontend),
        "detector.json": _config_bytes(detector),
        **mbdp_payload(mbdp, float(mbdp_test["seconds"]), int(mbdp_test["seed"])),
        "calibration.json": _config_bytes(calibration),
        "test_vectors.npz": deterministic_npz(vectors),
        **c_files,
        **(extra_files or {}),
    }
    fields = {
        "name": package_params["name"],
        "version": package_params["version"],
        "release_counter": int(package_params["release_counter"]),
        "profile": package_params["profile"],
        "git_revision": lineage["git_revision"],
        "data_hashes": lineage["data_hashes"],
        "params_hash": lineage["params_hash"],
        "metrics": {k: float(v) for k, v in metrics.items() if v is not None},
        "model": {
            "file": "model_int8.onnx",
            "inputs": inputs,
            "outputs": outputs,
            "quantization": input_quantization(model_int8),
        },
        "configs": {
            "frontend": {"file": "frontend.json", "runtime_version": FRONTEND_RUNTIME_VERSION},
            "detector": {"file": "detector.json", "runtime_version": DETECTOR_RUNTIME_VERSION},
            "mbdp": {"file": TUNING_FILE, "runtime_version": mbdp["runtime_version"]},
            "calibration": {"file": "calibration.json", "runtime_version": CALIBRATION_RUNTIME_VERSION},
        },
        "created_by": "presence-flywheel",
        "self_test": {
            "vectors": "test_vectors.npz",
            "atol": float(package_params.get("self_test_atol", 1e-4)),
            "mbdp_vectors": VECTORS_FILE,
            "mbdp_atol": float(mbdp_test["atol"]),
        },
    }
    if release is not None:
        fields["release"] = {k: str(release[k]) for k in ("model", "candidate", "reason")}
    return build_bundle(payload, fields, keystore or Keystore(), out_path)
