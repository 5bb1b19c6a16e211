"""`flywheel bench deploy`: bundle build, verification and device install throughput.

Uses a throwaway keystore and device in a temp folder, a tiny ONNX model for the self-test and a random
blob (params bench.deploy.payload_mb; `quick` overrides for --quick) so the hashing/extraction paths
carry a realistic byte count.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.models import bench_section


def _tiny_model(rng: np.random.Generator, context: int, bins: int) -> bytes:
    """features [N, context, bins] -> mean over time -> embedding [N, 4] -> logits [N, 3]."""
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(np.array([1], np.int64), "axis"),
        numpy_helper.from_array(rng.normal(size=(bins, 4)).astype(np.float32), "w_embed"),
        numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "w_logits"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["features", "axis"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w_embed"], ["embedding"]),
        helper.make_node("MatMul", ["embedding", "w_logits"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "bench",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", context, bins])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 4]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model.SerializeToString()


def _payload(rng: np.random.Generator, context: int, bins: int, blob_bytes: int) -> dict[str, bytes]:
    from deploy.selftest import run_model_logits

    model = _tiny_model(rng, context, bins)
    inputs = rng.normal(size=(8, context, bins)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "m.onnx").write_bytes(model)
        expected = run_model_logits(Path(tmp) / "m.onnx", inputs)
    vectors = io.BytesIO()
    np.savez(vectors, inputs=inputs, expected_logits=expected)
    from deploy.mbdp_payload import mbdp_payload
    from runtime.mbdp import bundle_tuning

    configs = {f"{name}.json": json.dumps({"bench": True}).encode() for name in ("frontend", "detector")}
    return {
        **mbdp_payload(bundle_tuning("speaker4"), seconds=0.05, seed=0),
        "model_int8.onnx": model,
        "test_vectors.npz": vectors.getvalue(),
        "calibration.json": b"{}",
        "c/blob.bin": rng.integers(0, 256, size=blob_bytes, dtype=np.uint8).tobytes(),
        **configs,
    }


def _fields(context: int, bins: int, counter: int) -> dict:
    config = {"runtime_version": "bench"}
    return {
        "name": "bench",
        "version": f"0.0.{counter}",
        "release_counter": counter,
        "profile": "bench",
        "git_revision": "bench",
        "data_hashes": {},
        "params_hash": "0" * 64,
        "metrics": {},
        "model": {
            "file": "model_int8.onnx",
            "inputs": [{"name": "features", "shape": ["N", context, bins], "dtype": "float32"}],
            "outputs": [{"name": "logits", "shape": ["N", 3], "dtype": "float32"}],
            "quantization": {"dtype": "int8", "scale": 1.0, "zero_point": 0},
        },
        "configs": {
            name: {"file": f"{name}.json", **config}
            for name in ("frontend", "detector", "mbdp", "calibration")
        },
        "created_by": "bench.deploy",
        "self_test": {"mbdp_vectors": "mbdp_vectors.npz"},
    }


def run_bench(params: dict, quick: bool = False) -> dict:
    """Measure build / verify / install seconds and MB/s for one bundle; returns a dict of figures."""
    from deploy.agent import install_bundle, provision_device
    from deploy.bundle import build_bundle
    from deploy.keystore import Keystore
    from deploy.verify import verify_bundle

    bench = bench_section(params["bench"]["deploy"], quick)
    payload_mb = float(bench["payload_mb"])
    rng = np.random.default_rng(int(bench["seed"]))
    context = int(params["ingest"]["context_frames"])
    bins = int(params["frontend"]["n_velocity_bins"])
    payload = _payload(rng, context, bins, int(payload_mb * 1024 * 1024))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = Keystore(root / "keys")
        bundle = root / "bench.tar"
        t0 = time.perf_counter()
        build_bundle(payload, _fields(context, bins, 1), store, bundle)
        t1 = time.perf_counter()
        verify_bundle(bundle, store.trusted_public_keys())
        t2 = time.perf_counter()
        provision_device(root / "device", "bench", store.trusted_public_keys())
        t3 = time.perf_counter()
        result = install_bundle(bundle, root / "device")
        t4 = time.perf_counter()
        if not result.installed:
            raise RuntimeError(f"bench install refused: {result.reason}")
        size_mb = bundle.stat().st_size / 1e6
    return {
        "bundle_mb": round(size_mb, 3),
        "build_s": t1 - t0,
        "verify_s": t2 - t1,
        "install_s": t4 - t3,
        "build_mb_per_s": size_mb / (t1 - t0),
        "verify_mb_per_s": size_mb / (t2 - t1),
        "install_mb_per_s": size_mb / (t4 - t3),
        "quick": quick,
    }
