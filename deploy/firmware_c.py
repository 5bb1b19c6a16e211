"""Firmware C for the bundle: the int8 QDQ ONNX model as C99 weights + a reference int8 inference.

`c_sources` walks the QDQ graph (training.quantize's output) along its single activation path and turns
each QuantizeLinear point into one step: input normalisation (Sub, Mul), Conv (regular, depthwise,
pointwise), Relu, ReduceMean or GlobalAveragePool (global average pool), Gemm, shape-only
Unsqueeze/Reshape; weights come from DequantizeLinear nodes over initializers (int8 per-channel
weights, int32 biases whose scale must be input_scale * weight_scale). Activations are int8 or int16
(the int16_activations fallback); weights int8. The input and its normalisation may be int8 under an
int16 body (the int8_input_int16_activations fallback); every other tensor shares one width.
Anything else raises UnsupportedModelError, so a model the C cannot run never ships silently.

Emitted files (payload names under c/): presence_model.h (API, shapes, front-end and detector constants),
presence_model.c (weights, requantization tables, kernels, presence_infer over a static arena),
presence_selftest.c (harness) and test_vectors.bin (read by the harness; format in its header comment).
Rounding is documented in deploy/c_templates/kernels.c: by default onnxruntime's float32 requantization
with round-half-even; -DPRESENCE_FIXED_POINT switches to Q31 multiplier + shift (TFLite-micro convention).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TEMPLATES = Path(__file__).parent / "c_templates"
C_PAYLOAD_DIR = "c"
C_FILES = ("presence_model.h", "presence_model.c", "presence_selftest.c", "test_vectors.bin")
COMPILE_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
_SHAPE_OPS = ("Unsqueeze", "Reshape", "Flatten", "Squeeze")


class UnsupportedModelError(ValueError):
    """The ONNX graph has an op or a quantization pattern the C reference does not implement."""


@dataclass
class QTensor:
    name: str
    scale: float
    zero_point: int
    shape: tuple[int, ...]  # without the batch axis: (C, H, W), (T, V) or (K,)
    bits: int = 8  # 8 or 16


@dataclass
class Step:
    kind: str  # input | conv | relu | pool | gemm | requant
    src: QTensor | None
    dst: QTensor
    attrs: dict = field(default_factory=dict)


@dataclass
class Program:
    act_bits: int  # the network body's activations
    input_bits: int  # the input step's output (the first conv's input): act_bits or narrower
    steps: list[Step]
    logits: QTensor
    embedding: QTensor | None
    sha256: str


def _quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = m * 2^(shift - 31), m in [2^30, 2^31) (or 0)."""
    if real <= 0.0:
        return 0, 0
    frac, shift = math.frexp(real)
    m = round(frac * (1 << 31))
    if m == 1 << 31:
        m //= 2
        shift += 1
    if shift < -31:  # too small to represent: it requantizes everything to 0
        return 0, 0
    return int(m), int(shift)


class _Graph:
    """Indexes of an ONNX graph: initializers, producers, consumers."""

    def __init__(self, model) -> None:
        from onnx import numpy_helper

        self.model = model
        self.inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.producer = {o: n for n in model.graph.node for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in model.graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.outputs = [o.name for o in model.graph.output]

    def attr(self, node, name: str, default=None):
        from onnx import helper

        for a in node.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    def const_dq(self, tensor: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(quantized, scale, zero_point, axis) of a DequantizeLinear over an initializer."""
        node = self.producer.get(tensor)
        if node is None or node.op_type != "DequantizeLinear" or node.input[0] not in self.inits:
            raise UnsupportedModelError(
                f"{tensor!r} is not a dequantized constant (float weights are not supported)"
            )
        q = self.inits[node.input[0]]
        scale = self.inits[node.input[1]].astype(np.float32)
        zp = self.inits[node.input[2]] if len(node.input) > 2 else np.zeros_like(scale, dtype=q.dtype)
        return q, scale, zp, int(self.attr(node, "axis", 1))

    def const_float(self, tensor: str) -> np.ndarray:
        """A constant as float32, dequantized the way onnxruntime does ((q - zp) * scale in float32)."""
        if tensor in self.inits:
            return self.inits[tensor].astype(np.float32)
        q, scale, zp, axis = self.const_dq(tensor)
        if scale.size > 1:
            shape = [1] * q.ndim
            shape[axis] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        return (q.astype(np.int32) - zp.astype(np.int32)).astype(np.float32) * scale


def _act_bits(dtype: np.dtype) -> int:
    if dtype == np.int8:
        return 8
    if dtype == np.int16:
        return 16
    raise UnsupportedModelError(f"activation type {dtype} (only int8 and int16 are supported)")


def extract_program(model_int8: str | Path | bytes) -> Program:
    """Walk the QDQ graph into the list of steps the C inference runs."""
    import onnx

    blob = model_int8 if isinstance(model_int8, bytes) else Path(model_int8).read_bytes()
    g = _Graph(onnx.load_from_string(blob))
    graph_input = g.model.graph.input[0]
    dims = [d.dim_value for d in graph_input.type.tensor_type.shape.dim][1:]
    if len(dims) != 2 or min(dims) <= 0:
        raise UnsupportedModelError(f"input must be [N, T, V] with static T, V; got {dims}")
    qtensors: dict[str, QTensor] = {}  # name of an activation QuantizeLinear output -> its parameters
    deq: dict[str, QTensor] = {}  # float tensor that is an activation DequantizeLinear output -> source
    input_shape = (int(dims[0]), int(dims[1]))
    steps: list[Step] = []

    def through_shape_ops(tensor: str) -> tuple[str, list]:
        """Walk back over shape-only ops; return (first non-shape tensor, the ops in graph order)."""
        chain = []
        node = g.producer.get(tensor)
        while node is not None and node.op_type in _SHAPE_OPS:
            chain.insert(0, node)
            tensor = node.input[0]
            node = g.producer.get(tensor)
        return tensor, chain

    for node in g.model.graph.node:
        op = node.op_type
        if op == "DequantizeLinear":
            if node.input[0] in g.inits:
                continue  # a weight, bias or constant: read where it is used
            src = qtensors.get(node.input[0])
            if src is None:
                raise UnsupportedModelError(f"DequantizeLinear {node.name!r} of an unknown tensor")
            deq[node.output[0]] = src
            continue
        if op in _SHAPE_OPS:
            base = deq.get(node.input[0])
            if base is not None:  # a view of a quantized activation: same data, new shape
                deq[node.output[0]] = QTensor(
                    base.name, base.scale, base.zero_point, _shape_after(node, g, base.shape), base.bits
                )
            continue
        if op in ("Sub", "Mul", "Conv", "Gemm", "Relu", "ReduceMean", "GlobalAveragePool"):
            continue  # each is handled at the QuantizeLinear that consumes its output
        if op != "QuantizeLinear":
            raise UnsupportedModelError(f"op {op} ({node.name!r}) is not implemented in the C reference")
        zp_arr = g.inits[node.input[2]]
        if zp_arr.size != 1:
            raise UnsupportedModelError(f"{node.name!r}: activations must be quantized per tensor")
        scale = float(g.inits[node.input[1]].astype(np.float32))
        x, chain = through_shape_ops(node.input[0])
        step = _step_for(g.producer.get(x), x, g, deq, input_shape, graph_input.name)
        shape = step.attrs.pop("out_shape")
        for shape_op in chain:
            shape = _shape_after(shape_op, g, shape)
        dst = QTensor(node.output[0], scale, int(zp_arr), tuple(shape), _act_bits(zp_arr.dtype))
        step.dst = dst
        qtensors[dst.name] = dst
        same = step.src is not None and (step.src.scale, step.src.zero_point, step.src.bits) == (
            dst.scale,
            dst.zero_point,
            dst.bits,
        )
        if step.kind == "requant" and same:
            alias = QTensor(step.src.name, dst.scale, dst.zero_point, dst.shape, dst.bits)
            qtensors[dst.name] = alias
            continue
        steps.append(step)

    def output_source(name: str) -> QTensor | None:
        node = g.producer.get(name)
        if node is None or node.op_type != "DequantizeLinear" or node.input[0] not in qtensors:
            return None
        return qtensors[node.input[0]]

    logits = output_source("logits") or output_source(g.outputs[0])
    if logits is None:
        raise UnsupportedModelError("the logits output is not a DequantizeLinear of a quantized tensor")
    if not steps:
        raise UnsupportedModelError("no activation quantization found (is this the int8 model?)")
    act_bits, input_bits = _widths(steps)
    embedding = output_source("embedding") if "embedding" in g.outputs else None
    return Program(act_bits, input_bits, steps, logits, embedding, hashlib.sha256(blob).hexdigest())


def _widths(steps: list[Step]) -> tuple[int, int]:
    """(body bits, input bits). The body (from the first conv) shares one width; the stored input (the
    last step before the first conv, what the stem reads) may be narrower. The normalisation's Sub before
    it is never stored (the C input step computes Sub and Mul in one pass), so it may have either width."""
    first_conv = next((i for i, s in enumerate(steps) if s.kind == "conv"), len(steps))
    head, body = steps[:first_conv], steps[first_conv:]
    body_bits = {s.dst.bits for s in body} or {head[-1].dst.bits}
    if len(body_bits) != 1:
        raise UnsupportedModelError(f"activations after the input must share one width: {sorted(body_bits)}")
    (act_bits,) = body_bits
    input_bits = head[-1].dst.bits if head else act_bits
    if input_bits > act_bits or any(s.kind == "requant" and s.dst.bits != input_bits for s in head):
        raise UnsupportedModelError("the stem's input must be no wider than the network body")
    return act_bits, input_bits


def _shape_after(node, g: _Graph, src: tuple[int, ...]) -> tuple[int, ...]:
    """Shape (without batch) after a shape-only op applied to a tensor of shape src."""
    n = int(np.prod(src))
    if node.op_type == "Unsqueeze":
        axes = [int(a) for a in g.inits[node.input[1]]] if len(node.input) > 1 else list(g.attr(node, "axes"))
        full = [1, *src]  # with the batch axis
        for a in sorted(a if a >= 0 else a + len(full) + len(axes) for a in axes):
            full.insert(a, 1)
        return tuple(full[1:])
    if node.op_type == "Reshape":
        target = [int(d) for d in g.inits[node.input[1]]][1:]
        if -1 in target:
            known = int(np.prod([d for d in target if d != -1]))
            target[target.index(-1)] = n // known
        return tuple(target)
    if node.op_type == "Flatten":
        return (n,)
    return tuple(d for d in src if d != 1) or (1,)


def _step_for(prod, x: str, g: _Graph, deq: dict, input_shape: tuple[int, int], input_name: str) -> Step:
    """The step computing float tensor x (the input of a QuantizeLinear)."""
    if prod is None or prod.op_type == "DequantizeLinear":
        if x not in deq:
            raise UnsupportedModelError(f"QuantizeLinear of {x!r}: not an activation")
        src = deq[x]
        return Step("requant", src, src, {"out_shape": src.shape})
    op = prod.op_type
    if op == "Sub":
        if prod.input[0] != input_name:
            raise UnsupportedModelError("Sub is supported only as the input normalisation")
        mean = g.const_float(prod.input[1]).reshape(-1)
        return Step("input", None, None, {"mean": mean, "inv_std": None, "out_shape": input_shape})  # type: ignore[arg-type]
    if op == "Mul":
        a, b = prod.input
        if a not in deq:
            a, b = b, a
        src = deq.get(a)
        if src is None:
            raise UnsupportedModelError(f"Mul {prod.name!r}: no quantized activation input")
        return Step("mul", src, src, {"factor": g.const_float(b).reshape(-1), "out_shape": src.shape})
    if op == "Relu":
        src = deq.get(prod.input[0])
        if src is None:
            raise UnsupportedModelError(f"Relu {prod.name!r}: input is not a quantized activation")
        return Step("relu", src, src, {"out_shape": src.shape})
    if op == "ReduceMean":
        src = deq.get(prod.input[0])
        axes = g.inits.get(prod.input[1]) if len(prod.input) > 1 else g.attr(prod, "axes")
        if src is None or len(src.shape) != 3 or sorted(int(a) % 4 for a in axes) != [2, 3]:
            raise UnsupportedModelError(f"ReduceMean {prod.name!r}: only a global average pool over H, W")
        return Step("pool", src, src, {"out_shape": (src.shape[0], 1, 1)})
    if op == "GlobalAveragePool":  # what the TorchScript exporter emits for the same pooling
        src = deq.get(prod.input[0])
        if src is None or len(src.shape) != 3:
            raise UnsupportedModelError(
                f"GlobalAveragePool {prod.name!r}: input is not a quantized [C, H, W]"
            )
        return Step("pool", src, src, {"out_shape": (src.shape[0], 1, 1)})
    if op == "Conv":
        return _conv_step(prod, g, deq)
    if op == "Gemm":
        return _gemm_step(prod, g, deq)
    raise UnsupportedModelError(f"op {op} ({prod.name!r}) is not implemented in the C reference")


def _bias(g: _Graph, node, x: QTensor, w_scale: np.ndarray, n_out: int) -> np.ndarray:
    if len(node.input) < 3 or not node.input[2]:
        return np.zeros(n_out, np.int32)
    q, scale, zp, _ = g.const_dq(node.input[2])
    expected = np.float32(x.scale) * w_scale
    if q.dtype != np.int32 or np.any(zp != 0) or not np.allclose(scale, expected, rtol=1e-5, atol=0):
        raise UnsupportedModelError(
            f"{node.name!r}: bias must be int32 with scale = input_scale * weight_scale"
        )
    return q.astype(np.int32).reshape(n_out)


def _requant_table(x_scale: float, w_scale: np.ndarray, y_scale: float) -> list[tuple[float, int, int]]:
    """Per channel: (float32 scale as ORT computes it, Q31 multiplier, shift)."""
    f32 = (np.float32(x_scale) * w_scale.astype(np.float32)) / np.float32(y_scale)
    real = float(x_scale) * w_scale.astype(np.float64) / float(y_scale)
    return [(float(f), *_quantize_multiplier(float(r))) for f, r in zip(f32, real, strict=True)]


def _conv_step(node, g: _Graph, deq: dict) -> Step:
    x = deq.get(node.input[0])
    if x is None or len(x.shape) != 3:
        raise UnsupportedModelError(f"Conv {node.name!r}: input is not a quantized [C, H, W] activation")
    w, w_scale, w_zp, _ = g.const_dq(node.input[1])
    if w.dtype != np.int8 or w.ndim != 4:
        raise UnsupportedModelError(f"Conv {node.name!r}: weights must be int8 [O, I, kH, kW]")
    if any(d != 1 for d in g.attr(node, "dilations", [1, 1])) or g.attr(node, "auto_pad", b"NOTSET") not in (
        b"NOTSET",
        "NOTSET",
    ):
        raise UnsupportedModelError(f"Conv {node.name!r}: dilation and auto_pad are not supported")
    c_out, _, kh, kw = w.shape
    c_in, in_h, in_w = x.shape
    groups = int(g.attr(node, "group", 1))
    sh, sw = g.attr(node, "strides", [1, 1])
    pt, pl, pb, pr = g.attr(node, "pads", [0, 0, 0, 0])
    out_h = (in_h + pt + pb - kh) // sh + 1
    out_w = (in_w + pl + pr - kw) // sw + 1
    w_scale = np.broadcast_to(w_scale, (c_out,)).astype(np.float32)
    attrs = {
        "c_in": c_in, "in_h": in_h, "in_w": in_w, "c_out": c_out, "out_h": out_h, "out_w": out_w,
        "k_h": kh, "k_w": kw, "stride_h": sh, "stride_w": sw, "pad_top": pt, "pad_left": pl, "groups": groups,
        "weight": w.reshape(-1), "weight_scale": w_scale,
        "weight_zp": np.broadcast_to(w_zp, (c_out,)).astype(np.int32),
        "bias": _bias(g, node, x, w_scale, c_out), "out_shape": (c_out, out_h, out_w),
    }  # fmt: skip
    return Step("conv", x, x, attrs)


def _gemm_step(node, g: _Graph, deq: dict) -> Step:
    x = deq.get(node.input[0])
    if x is None:
        raise UnsupportedModelError(f"Gemm {node.name!r}: input is not a quantized activation")
    if g.attr(node, "transA", 0) or g.attr(node, "alpha", 1.0) != 1.0 or g.attr(node, "beta", 1.0) != 1.0:
        raise UnsupportedModelError(f"Gemm {node.name!r}: only transA=0, alpha=beta=1")
    w, w_scale, w_zp, _ = g.const_dq(node.input[1])
    if not g.attr(node, "transB", 0):
        w = w.T
    n_out, n_in = w.shape
    if w.dtype != np.int8 or n_in != int(np.prod(x.shape)):
        raise UnsupportedModelError(f"Gemm {node.name!r}: weights must be int8 [{n_in} inputs]")
    w_scale = np.broadcast_to(w_scale, (n_out,)).astype(np.float32)
    attrs = {
        "n_in": n_in, "n_out": n_out, "weight": np.ascontiguousarray(w).reshape(-1), "weight_scale": w_scale,
        "weight_zp": np.broadcast_to(w_zp, (n_out,)).astype(np.int32),
        "bias": _bias(g, node, x, w_scale, n_out), "out_shape": (n_out,),
    }  # fmt: skip
    return Step("gemm", x, x, attrs)
