"""Test helpers for deploy: a tiny int8 ONNX model, its self-test vectors, manifest fields, payloads."""

from __future__ import annotations

import io
import json

import numpy as np
from config_testkit import calibration_config, detector_config, frontend_config

N_CONTEXT, N_VELOCITY, N_EMBED = 32, 48, 4
QUANT_SCALE, QUANT_ZERO_POINT = 0.05, 0


def tiny_model_bytes(seed: int = 0, constant_logits: list[float] | None = None) -> bytes:
    """features [N,32,48] -> int8 quantize/dequantize -> mean over time -> embedding [N,4] -> logits [N,3].

    constant_logits: zero weights plus this bias, so the model says the same thing for every input
    (e.g. [6, 0, 0]: always "no motion"), which makes a detector's field behaviour predictable.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w_embed = rng.normal(size=(N_VELOCITY, N_EMBED)).astype(np.float32)
    w_logits = rng.normal(size=(N_EMBED, 3)).astype(np.float32)
    if constant_logits is not None:
        w_embed, w_logits = np.zeros_like(w_embed), np.zeros_like(w_logits)
    inits = [
        numpy_helper.from_array(np.array(QUANT_SCALE, np.float32), "scale"),
        numpy_helper.from_array(np.array(QUANT_ZERO_POINT, np.int8), "zero_point"),
        numpy_helper.from_array(np.array([1], np.int64), "time_axis"),
        numpy_helper.from_array(w_embed, "w_embed"),
        numpy_helper.from_array(w_logits, "w_logits"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["features", "scale", "zero_point"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "scale", "zero_point"], ["dq"]),
        helper.make_node("ReduceMean", ["dq", "time_axis"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w_embed"], ["embedding"]),
        helper.make_node("MatMul", ["embedding", "w_logits"], ["logits"]),
    ]
    if constant_logits is not None:
        nodes[-1] = helper.make_node("MatMul", ["embedding", "w_logits"], ["raw_logits"])
        nodes.append(helper.make_node("Add", ["raw_logits", "bias"], ["logits"]))
        inits.append(numpy_helper.from_array(np.asarray(constant_logits, np.float32), "bias"))
    graph = helper.make_graph(
        nodes,
        "tiny_presence",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", N_CONTEXT, N_VELOCITY])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", N_EMBED]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model.SerializeToString()


def run_model(model: bytes, inputs: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {"features": inputs})[0]


def self_test_vectors_bytes(model: bytes, seed: int = 1, n: int = 4, corrupt: bool = False) -> bytes:
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(n, N_CONTEXT, N_VELOCITY)).astype(np.float32)
    expected = run_model(model, inputs)
    if corrupt:
        expected = expected + 1.0
    buf = io.BytesIO()
    np.savez(buf, inputs=inputs, expected_logits=expected)
    return buf.getvalue()


def manifest_fields(version: str = "1.0.0", release_counter: int = 1, profile: str = "speaker4") -> dict:
    return {
        "name": "presence",
        "version": version,
        "release_counter": release_counter,
        "profile": profile,
        "git_revision": "0123456789abcdef0123456789abcdef01234567",
        "data_hashes": {"raw/seed": "d41d8cd98f00b204e9800998ecf8427e.dir"},
        "params_hash": "ab" * 32,
        "metrics": {"false_alarms_per_hour": 0.25, "recall": 0.93},
        "model": {
            "file": "model_int8.onnx",
            "inputs": [{"name": "features", "shape": ["N", N_CONTEXT, N_VELOCITY], "dtype": "float32"}],
            "outputs": [
                {"name": "logits", "shape": ["N", 3], "dtype": "float32"},
                {"name": "embedding", "shape": ["N", N_EMBED], "dtype": "float32"},
            ],
            "quantization": {"dtype": "int8", "scale": QUANT_SCALE, "zero_point": QUANT_ZERO_POINT},
        },
        "configs": {
            "frontend": {"file": "frontend.json", "runtime_version": "0.1.0"},
            "detector": {"file": "detector.json", "runtime_version": "0.1.0"},
            "mbdp": {"file": "mbdp.json", "runtime_version": "0.1.0"},
            "calibration": {"file": "calibration.json", "runtime_version": "0.1.0"},
        },
        "created_by": "tests",
        "self_test": {
            "vectors": "test_vectors.npz",
            "atol": 1e-4,
            "mbdp_vectors": "mbdp_vectors.npz",
            "mbdp_atol": 1e-6,
        },
    }


def mbdp_tuning() -> dict:
    from runtime.mbdp import bundle_tuning

    return bundle_tuning("speaker4")


def mbdp_files(tuning: dict | None = None) -> dict[str, bytes]:
    """mbdp.json, its self-test vectors (computed from mbdp_tuning()) and the Q31 exports."""
    from deploy.mbdp_payload import TUNING_FILE, mbdp_payload

    files = mbdp_payload(mbdp_tuning(), seconds=0.05, seed=0)
    if tuning is not None:  # signed as given, vectors still from the reference tuning
        files[TUNING_FILE] = json.dumps(tuning).encode()
    return files


def payload_files(seed: int = 0, corrupt_vectors: bool = False, mbdp: dict | None = None) -> dict[str, bytes]:
    model = tiny_model_bytes(seed)
    return {
        "model_int8.onnx": model,
        "test_vectors.npz": self_test_vectors_bytes(model, corrupt=corrupt_vectors),
        "frontend.json": json.dumps({"n_velocity_bins": N_VELOCITY}).encode(),
        "detector.json": json.dumps({"strict_threshold": 0.8}).encode(),
        **mbdp_files(mbdp),
        "calibration.json": json.dumps(calibration_config().to_dict()).encode(),  # params.yaml's
        "c/model_int8.h": b"/* header */\n",
    }


def detector_payload(
    detector: dict | None = None, constant_logits: tuple = (6.0, 0.0, 0.0)
) -> dict[str, bytes]:
    """A payload the simulator can run: a constant model, default front-end, the given detector config."""

    model = tiny_model_bytes(constant_logits=list(constant_logits))
    payload = payload_files()
    payload["model_int8.onnx"] = model
    payload["test_vectors.npz"] = self_test_vectors_bytes(model)
    payload["frontend.json"] = json.dumps(frontend_config().to_dict()).encode()
    payload["detector.json"] = json.dumps({**detector_config().to_dict(), **(detector or {})}).encode()
    return payload
