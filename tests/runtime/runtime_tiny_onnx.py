"""Test helper: a tiny ONNX model built with onnx.helper that honours the classifier contract.

Used by tests, benchmarks and self-tests where no trained model exists: logits are a linear map
of the per-window mean feature over velocity bins, embedding is that mean (D = n_velocity_bins).
Lives with the tests so runtime/ itself never imports onnx.
"""

from __future__ import annotations

import numpy as np


def build_linear_model(
    context_frames: int, n_velocity_bins: int, weights: np.ndarray, bias: np.ndarray, opset: int = 18
) -> bytes:
    """Model bytes: embedding = mean over frames [N, V]; logits = embedding @ weights [V, 3] + bias [3]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.asarray(weights, np.float32)
    bias = np.asarray(bias, np.float32)
    if weights.shape != (n_velocity_bins, 3) or bias.shape != (3,):
        raise ValueError(f"weights must be [{n_velocity_bins}, 3] and bias [3]")
    features = helper.make_tensor_value_info(
        "features", TensorProto.FLOAT, ["N", context_frames, n_velocity_bins]
    )
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])
    embedding = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", n_velocity_bins])
    nodes = [
        helper.make_node("ReduceMean", ["features", "axes"], ["embedding"], keepdims=0),
        helper.make_node("MatMul", ["embedding", "W"], ["projected"]),
        helper.make_node("Add", ["projected", "B"], ["logits"]),
    ]
    initializers = [
        numpy_helper.from_array(np.array([1], np.int64), "axes"),
        numpy_helper.from_array(weights, "W"),
        numpy_helper.from_array(bias, "B"),
    ]
    graph = helper.make_graph(nodes, "tiny_presence", [features], [logits, embedding], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()
