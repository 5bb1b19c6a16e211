"""DSP budget check for an ONNX classifier (float or int8 QDQ) against a device profile.

Counts parameters; int8 weight bytes (one byte per Conv/Gemm/MatMul weight element); weight storage
(int8 weights + int32 biases + per-channel scales, 4 bytes per weight a quantization fallback left
in float); MACs per inference (batch 1); peak activation memory (liveness over the graph: Q/DQ and
reshape-like nodes alias their input, ReLU runs in place when its input has no other consumer); and the
MAC/s needed at the profile's inference rate. A quantized tensor counts at its own width (int8 1 byte,
int16 2: a mixed model's int8 input costs half its int16 body's bytes per element); a float model is
budgeted as it will run once quantized, activation_bytes_per_element bytes per element.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PROFILES_FILE = Path(__file__).with_name("dsp_profiles.yaml")
ALIAS_OPS = {"QuantizeLinear", "DequantizeLinear", "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze"}
WEIGHT_OPS = {"Conv", "Gemm", "MatMul"}
INPLACE_OPS = {"Relu", "Clip"}  # elementwise activations written over their single-use input


class BudgetError(ValueError):
    """The model does not fit the device profile; the message lists every violation."""


def load_profile(profile: str | dict) -> dict:
    """A profile dict, by name from dsp_profiles.yaml or passed through."""
    if isinstance(profile, dict):
        return profile
    import yaml

    profiles = yaml.safe_load(PROFILES_FILE.read_text(encoding="utf-8"))
    if profile not in profiles:
        raise BudgetError(f"unknown DSP profile {profile!r} (known: {', '.join(sorted(profiles))})")
    return {"name": profile, **profiles[profile]}


def _batch_one(model):
    """Copy of the model with every dynamic input dim fixed to 1, shapes inferred."""
    import onnx

    for inp in model.graph.input:
        for dim in inp.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value"):
                dim.dim_value = 1
    for vi in list(model.graph.value_info):
        model.graph.value_info.remove(vi)
    for out in model.graph.output:  # let inference recompute output shapes with batch 1
        for dim in out.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value"):
                dim.dim_value = 1
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def _measured_shapes(model) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape from one batch-1 onnxruntime run.

    ONNX shape inference gives up on some quantized graphs (16-bit QDQ fallbacks at opset 21 leave
    intermediate shapes unknown); running the graph on zeros measures them instead.
    """
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for out in node.output:
            if out and out not in known:
                probe.graph.output.append(onnx.ValueInfoProto(name=out))
                known.add(out)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {}
    for inp in session.get_inputs():
        dims = [d if isinstance(d, int) else 1 for d in inp.shape]
        feeds[inp.name] = np.zeros(dims, dtype=np.float32)
    names = [o.name for o in session.get_outputs()]
    return {
        name: tuple(np.shape(value)) for name, value in zip(names, session.run(names, feeds), strict=True)
    }


def analyse_model(onnx_path: str | Path | bytes) -> dict:
    """Profile-independent figures of an ONNX model."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(onnx_path) if isinstance(onnx_path, bytes) else onnx.load(str(onnx_path))
    model = _batch_one(model)
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:  # Constant nodes are data baked into the model, not kernels the DSP runs
        if node.op_type == "Constant":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None:
                inits[node.output[0]] = numpy_helper.to_array(value)
    shapes: dict[str, tuple[int, ...]] = {}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = tuple(d.dim_value for d in dims)
    if any(out not in shapes for node in graph.node for out in node.output if out):
        shapes.update(_measured_shapes(model))
    producer = {out: node for node in graph.node for out in node.output}

    def source_initializer(name: str) -> np.ndarray | None:
        """The initializer behind a tensor, seen through DequantizeLinear (int8 weights in QDQ)."""
        if name in inits:
            return inits[name]
        node = producer.get(name)
        if node is not None and node.op_type == "DequantizeLinear" and node.input[0] in inits:
            return inits[node.input[0]]
        return None

    n_params = weight_elems = float_weight_elems = bias_bytes = macs = 0
    quantized = any(node.op_type == "DequantizeLinear" for node in graph.node)
    for node in graph.node:
        if node.op_type not in WEIGHT_OPS:
            continue
        weight = source_initializer(node.input[1])
        if weight is None:
            raise BudgetError(f"{node.name}: weight input is not a constant; cannot budget")
        bias = source_initializer(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        n_params += weight.size + (0 if bias is None else bias.size)
        if quantized and weight.dtype == np.float32:  # a node left in float (quantization fallback)
            float_weight_elems += weight.size
        else:
            weight_elems += weight.size
        bias_bytes += 0 if bias is None else bias.size * 4  # int32 on the DSP
        out_elems = int(np.prod(shapes[node.output[0]]))
        if node.op_type == "Conv":
            macs += out_elems * int(np.prod(weight.shape[1:]))  # (C_in/groups) * kH * kW per output
        elif node.op_type == "Gemm":
            trans_b = any(a.name == "transB" and a.i == 1 for a in node.attribute)
            k = weight.shape[1] if trans_b else weight.shape[0]
            macs += out_elems * int(k)
        else:  # MatMul with a constant right operand [K, N]
            macs += out_elems * int(weight.shape[0])
    widths = _activation_widths(graph, inits) if quantized else {}
    peak_elements, peak_bytes = _peak_activation(graph, inits, shapes, widths)
    scale_bytes = 0
    if quantized:
        scale_bytes = sum(
            inits[node.input[1]].size * 4
            for node in graph.node
            if node.op_type == "DequantizeLinear" and node.input[0] in inits and node.input[1] in inits
        )
    return {
        "quantized": quantized,
        "params": int(n_params),
        "int8_weight_bytes": int(weight_elems),
        "float_weight_elements": int(float_weight_elems),
        "weight_storage_bytes": int(weight_elems + 4 * float_weight_elems + bias_bytes + scale_bytes),
        "macs_per_inference": int(macs),
        "peak_activation_elements": peak_elements,
        "peak_activation_bytes_own_types": peak_bytes,
        # the widest activation type (int8 1, int16 2); None for a float model (the profile's element size)
        "activation_element_bytes": max(widths.values(), default=1) if quantized else None,
        "ops": sorted({node.op_type for node in graph.node if node.op_type != "Constant"}),
    }


def _activation_widths(graph, inits: dict) -> dict[str, int]:
    """Bytes per element of each float tensor an activation QuantizeLinear quantizes, and of the graph
    input (held at the width of the first quantization of the network: the DSP's input buffer)."""
    widths = {
        node.input[0]: int(inits[node.input[2]].dtype.itemsize)
        for node in graph.node
        if node.op_type == "QuantizeLinear"
        and node.input[0] not in inits
        and len(node.input) > 2
        and node.input[2] in inits
    }
    first = next(iter(widths.values()), None)
    for inp in graph.input:
        if inp.name not in inits and inp.name not in widths and first is not None:
            widths[inp.name] = first
    return widths


def _peak_activation(graph, inits: dict, shapes: dict, widths: dict[str, int]) -> tuple[int, int | None]:
    """(elements, bytes) held live at the peak of the schedule (inputs still needed + outputs being
    written). Bytes count each tensor at its widths entry (None when widths is empty: a float model);
    a tensor the map misses counts at the widest width, so the figure never undercounts."""
    alias: dict[str, str] = {}
    consts = set(inits)  # initializers and what Q/DQ nodes make of them (weights, not activations)
    for node in graph.node:
        if node.op_type in ALIAS_OPS and node.input[0] in consts:
            consts.update(node.output)

    def root(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    def is_activation(name: str) -> bool:
        return bool(name) and name not in consts and root(name) in shapes

    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1

    # pass 1: aliases, last use of each root tensor
    last_use: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        if node.op_type in ALIAS_OPS and node.input[0] not in consts:
            alias[node.output[0]] = node.input[0]
        elif node.op_type in INPLACE_OPS and consumers.get(node.input[0], 0) == 1:
            alias[node.output[0]] = node.input[0]  # fused into the producing kernel on the DSP
        for name in node.input:
            if is_activation(name):
                last_use[root(name)] = i
    for out in graph.output:
        last_use[root(out.name)] = len(graph.node)

    def size(name: str) -> int:
        return int(np.prod(shapes.get(name, (0,))))

    widest = max(widths.values(), default=0)
    root_width: dict[str, int] = {}
    for name, width in widths.items():  # a Q node reads an alias (a Relu output, a DQ): width of the root
        root_width[root(name)] = max(root_width.get(root(name), 0), width)

    def nbytes(name: str) -> int:
        return size(name) * root_width.get(name, widest)

    live = {root(inp.name) for inp in graph.input if inp.name not in consts}
    peak, peak_bytes = sum(size(n) for n in live), sum(nbytes(n) for n in live)
    for i, node in enumerate(graph.node):
        if node.output[0] not in alias and node.op_type != "Constant":
            new = {o for o in node.output if o and o not in consts and root(o) == o and o in shapes}
            live |= new
            peak = max(peak, sum(size(n) for n in live))
            peak_bytes = max(peak_bytes, sum(nbytes(n) for n in live))
        live = {n for n in live if last_use.get(n, -1) > i}
    return int(peak), (int(peak_bytes) if widths else None)


def peak_activation_bytes(figures: dict, profile: dict) -> int:
    """The arena a model needs on the profile: a quantized model's tensors at their own widths (the int16
    fallbacks double their arena), never under the profile's element size; a float model at the profile's."""
    floor = figures["peak_activation_elements"] * int(profile.get("activation_bytes_per_element", 1))
    return max(floor, figures["peak_activation_bytes_own_types"] or 0)


def check_budget(onnx_path: str | Path | bytes, profile: str | dict) -> dict:
    """Figures of the model against the profile; raises BudgetError listing every limit exceeded."""
    prof = load_profile(profile)
    figures = analyse_model(onnx_path)
    inferences_per_s = float(prof["frame_rate_hz"]) / int(prof.get("inference_stride_frames", 1))
    report = {
        **figures,
        "profile": prof.get("name", "custom"),
        "peak_activation_bytes": peak_activation_bytes(figures, prof),
        "inferences_per_s": inferences_per_s,
        "macs_per_s_needed": figures["macs_per_inference"] * inferences_per_s,
        "macs_per_s_budget": float(prof["detector_macs_per_s"]),
        "weight_bytes_budget": int(prof["weight_bytes"]),
        "activation_bytes_budget": int(prof["activation_bytes"]),
    }
    problems = []
    if report["macs_per_s_needed"] > report["macs_per_s_budget"]:
        problems.append(
            f"compute: {report['macs_per_inference']:,} MAC x {inferences_per_s:g}/s = "
            f"{report['macs_per_s_needed']:,.0f} MAC/s > budget {report['macs_per_s_budget']:,.0f} MAC/s"
        )
    if report["weight_storage_bytes"] > report["weight_bytes_budget"]:
        problems.append(
            f"weights: {report['weight_storage_bytes']:,} bytes (int8 weights + int32 biases + scales) "
            f"> budget {report['weight_bytes_budget']:,} bytes"
        )
    if report["peak_activation_bytes"] > report["activation_bytes_budget"]:
        problems.append(
            f"activations: peak {report['peak_activation_bytes']:,} bytes > budget "
            f"{report['activation_bytes_budget']:,} bytes"
        )
    unsupported = sorted(set(figures["ops"]) - set(prof.get("supported_ops", figures["ops"])))
    if unsupported:
        problems.append(f"ops not supported by {report['profile']}: {', '.join(unsupported)}")
    report["within_budget"] = not problems
    if problems:
        raise BudgetError(f"model over the {report['profile']} budget: " + "; ".join(problems))
    return report
