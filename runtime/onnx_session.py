"""The one way this product opens an ONNX model for inference, on the device and everywhere that
must agree with the device (self-test vectors, quantization gate, evaluation, mining).

Graph optimisation stays at the basic level: onnxruntime's extended optimisations fuse QDQ pairs
into its own int8 kernels (QLinearConv/QGemm), which on x86 without VNNI saturate int16 pair sums,
so their outputs depend on the host CPU. Unfused, the graph follows the ONNX QDQ semantics exactly,
which is what the firmware's C reference reproduces bit for bit.
"""

from __future__ import annotations

import os

import onnxruntime as ort


def make_session(model: str | os.PathLike | bytes, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
