"""Write the firmware C (header, source, self-test harness, test vectors) from an extracted Program.

Public entry points: `c_sources` (file name -> text), `pack_test_vectors` (the harness's input file),
`firmware_payload` (the c/... entries package_bundle puts in the bundle) and `compile_c` (gcc, for tests
and the benchmark). The kernels are deploy/c_templates/kernels.c, pasted into presence_model.c.
"""

from __future__ import annotations

import math
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np

from deploy.firmware_c import (
    C_FILES,
    C_PAYLOAD_DIR,
    COMPILE_FLAGS,
    TEMPLATES,
    Program,
    QTensor,
    Step,
    UnsupportedModelError,
    extract_program,
)

_VALUES_PER_LINE = 16
_TV_MAGIC = b"PRTV"


def _f(x: float) -> str:
    """A float32 C literal that round-trips exactly."""
    x = float(np.float32(x))
    if not math.isfinite(x):
        raise UnsupportedModelError(f"non-finite constant {x}")
    s = f"{x:.9g}"
    if not any(ch in s for ch in ".e"):
        s += ".0"
    return s + "f"


def _array(ctype: str, name: str, values, fmt=str) -> str:
    vals = [fmt(v) for v in np.asarray(values).reshape(-1).tolist()]
    rows = [", ".join(vals[i : i + _VALUES_PER_LINE]) for i in range(0, len(vals), _VALUES_PER_LINE)]
    body = ",\n    ".join(rows)
    return f"static const {ctype} {name}[{len(vals)}] = {{\n    {body}\n}};\n"


def _c_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_").upper()


def _config_constants(prefix: str, cfg: dict) -> tuple[list[str], list[str], list[str]]:
    """(#defines for the header, extern declarations, array definitions) for a flat-ish config dict."""
    defines, externs, arrays = [], [], []
    for key in sorted(cfg):
        value, name = cfg[key], f"{prefix}_{_c_name(str(key))}"
        if isinstance(value, dict):
            d, e, a = _config_constants(name, value)
            defines, externs, arrays = defines + d, externs + e, arrays + a
        elif isinstance(value, bool):
            defines.append(f"#define {name} {int(value)}")
        elif isinstance(value, int):
            defines.append(f"#define {name} {value}")
        elif isinstance(value, float):
            defines.append(f"#define {name} {_f(value)}")
        elif isinstance(value, str):
            defines.append(f"#define {name} {json_string(value)}")
        elif (
            isinstance(value, list | tuple)
            and value
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            defines.append(f"#define {name}_LEN {len(value)}")
            externs.append(f"extern const float {name}[{len(value)}];")
            vals = ", ".join(_f(v) for v in value)
            arrays.append(f"const float {name}[{len(value)}] = {{{vals}}};")
        elif isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            # names in order, e.g. the feature channels (their layout: runtime/feature_channels.py)
            defines.append(f"#define {name}_LEN {len(value)}")
            defines.append(f"#define {name} {json_string(','.join(value))}")
        # None and empty lists have no C form the firmware needs: left out
    return defines, externs, arrays


def json_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _numel(t: QTensor) -> int:
    return int(np.prod(t.shape))


def _weight_arrays(name: str, step, y) -> str:
    """C arrays of a conv or gemm step: int8 weights, their zero points, int32 biases, requantization."""
    a = step.attrs
    return (
        _array("int8_t", f"{name}_weight", a["weight"])
        + _array("int32_t", f"{name}_weight_zp", a["weight_zp"])
        + _array("int32_t", f"{name}_bias", a["bias"])
        + _array("presence_requant_t", f"{name}_requant", _requant_rows(step, y), str)
    )


def _requant_rows(step: Step, y: QTensor) -> list[str]:
    from deploy.firmware_c import _requant_table

    table = _requant_table(step.src.scale, step.attrs["weight_scale"], y.scale)
    return [f"{{{_f(s)}, {m}, {sh}}}" for s, m, sh in table]


def _scalar_requant(real: float) -> str:
    from deploy.firmware_c import _quantize_multiplier

    m, sh = _quantize_multiplier(real)
    return f"{{{_f(real)}, {m}, {sh}}}"


def _emit_step(i: int, step: Step, nxt: Step | None) -> tuple[str, str, bool]:
    """(static definitions, call with IN/OUT placeholders, consumed the next step)."""
    name = f"step{i}"
    a, y = step.attrs, step.dst
    if step.kind == "input":
        frames, bins = y.shape[-2], y.shape[-1]
        defs = _array("float", f"{name}_mean", a["mean"], _f)
        merged = nxt is not None and nxt.kind == "mul" and nxt.src.name == y.name
        out = nxt.dst if merged else y
        inv = "NULL"
        if merged:
            defs += _array("float", f"{name}_inv_std", np.broadcast_to(nxt.attrs["factor"], (bins,)), _f)
            inv = f"{name}_inv_std"
        sub_min, sub_max = -(1 << (y.bits - 1)), (1 << (y.bits - 1)) - 1
        defs += (
            f"static const presence_input_t {name} = {{{frames}, {bins}, {name}_mean, {_f(y.scale)}, "
            f"{y.zero_point}, {sub_min}, {sub_max}, {inv}, {_f(out.scale)}, {out.zero_point}}};\n"
        )
        return defs, f"presence_input(features, {{OUT}}, &{name});", merged
    if step.kind == "conv":
        defs = _weight_arrays(name, step, y)
        fields = ", ".join(
            str(a[k])
            for k in ("c_in", "in_h", "in_w", "c_out", "out_h", "out_w", "k_h", "k_w", "stride_h", "stride_w")
        )
        defs += (
            f"static const presence_conv_t {name} = {{{fields}, {a['pad_top']}, {a['pad_left']}, "
            f"{a['groups']}, "
            f"{name}_weight, {name}_weight_zp, {name}_bias, {name}_requant, {step.src.zero_point}, "
            f"{y.zero_point}}};\n"
        )
        kernel = "presence_conv2d_in" if step.src.bits != y.bits else "presence_conv2d"
        return defs, f"{kernel}({{IN}}, {{OUT}}, &{name});", False
    if step.kind == "gemm":
        defs = _weight_arrays(name, step, y)
        defs += (
            f"static const presence_gemm_t {name} = {{{a['n_in']}, {a['n_out']}, {name}_weight, "
            f"{name}_weight_zp, {name}_bias, {name}_requant, {step.src.zero_point}, {y.zero_point}}};\n"
        )
        return defs, f"presence_gemm({{IN}}, {{OUT}}, &{name});", False
    if step.kind in ("relu", "requant", "mul"):
        if step.kind == "mul":
            raise UnsupportedModelError("Mul is supported only right after the input Sub")
        x = step.src
        defs = (
            f"static const presence_relu_t {name} = {{{_f(x.scale)}, {x.zero_point}, {_f(y.scale)}, "
            f"{y.zero_point}, {_scalar_requant(x.scale / y.scale)}}};\n"
        )
        fn = "presence_relu" if step.kind == "relu" else "presence_requant_copy"
        return defs, f"{fn}({{IN}}, {{OUT}}, {_numel(x)}, &{name});", False
    if step.kind == "pool":
        x = step.src
        channels, area = x.shape[0], x.shape[1] * x.shape[2]
        defs = (
            f"static const presence_pool_t {name} = {{{channels}, {area}, {_f(x.scale)}, {x.zero_point}, "
            f"{_f(y.scale)}, {y.zero_point}, {_scalar_requant(x.scale / (area * y.scale))}}};\n"
        )
        return defs, f"presence_mean_pool({{IN}}, {{OUT}}, &{name});", False
    raise UnsupportedModelError(f"step kind {step.kind}")


def _ctype(bits: int) -> str:
    return "int8_t" if bits == 8 else "int16_t"


IN_PLACE = ("relu", "requant")  # elementwise steps that may overwrite their input (same width)


def _plan_arena(placed: list[tuple[str, Step, QTensor]], bits: int) -> tuple[int, dict[str, str]]:
    """(arena elements of the body's type, tensor name -> C pointer expression).

    One arena instead of two ping-pong buffers: a step's output goes to the opposite end of the arena from
    its input (the first tensor at the low end, the next flush with the high end, ...), an elementwise step
    of the same width runs in place, so the arena is the largest input + output pair of any step, which is
    what training.budget's liveness count says the DSP needs. Each step must read the tensor the step
    before it produced (a chain, as the exported models are)."""
    unit = bits // 8

    def elems(t: QTensor) -> int:
        return -(-_numel(t) * (t.bits // 8) // unit)  # ceil: an int8 tensor in an int16 arena

    arena, last, sides = 0, None, {}
    for _call, step, out in placed:
        if step.src is None:
            sides[out.name] = "low"
            arena = max(arena, elems(out))
        else:
            if step.src.name != last:
                raise UnsupportedModelError(f"step reads {step.src.name!r}, not the tensor just produced")
            in_place = step.kind in IN_PLACE and step.src.bits == out.bits
            if in_place:
                sides[out.name] = sides[step.src.name]
                arena = max(arena, elems(out))
            else:
                sides[out.name] = "high" if sides[step.src.name] == "low" else "low"
                arena = max(arena, elems(step.src) + elems(out))
        last = out.name
    tensors = {out.name: out for _c, _s, out in placed}
    for _c, step, _o in placed:
        if step.src is not None:
            tensors.setdefault(step.src.name, step.src)
    where = {}
    for name, side in sides.items():
        t = tensors[name]
        ptr = "presence_arena" if side == "low" else f"(presence_arena + {arena - elems(t)})"
        where[name] = ptr if t.bits == bits else f"(({_ctype(t.bits)} *)(void *){ptr})"
    return arena, where


_TYPES = """typedef struct { float scale; int32_t multiplier; int32_t shift; } presence_requant_t;
typedef struct {
    int32_t frames, bins;
    const float *mean;
    float sub_scale;
    int32_t sub_zp, sub_qmin, sub_qmax; /* the Sub's quantization (its width may differ from the output's) */
    const float *inv_std; /* NULL: no scaling step */
    float out_scale;
    int32_t out_zp;
} presence_input_t;
typedef struct {
    int32_t c_in, in_h, in_w, c_out, out_h, out_w, k_h, k_w, stride_h, stride_w, pad_top, pad_left, groups;
    const int8_t *weight;   /* [c_out][c_in / groups][k_h][k_w] */
    const int32_t *weight_zp;
    const int32_t *bias;    /* int32, scale = input scale * weight scale[c] */
    const presence_requant_t *requant;
    int32_t in_zp, out_zp;
} presence_conv_t;
typedef struct {
    int32_t n_in, n_out;
    const int8_t *weight;   /* [n_out][n_in] */
    const int32_t *weight_zp;
    const int32_t *bias;
    const presence_requant_t *requant;
    int32_t in_zp, out_zp;
} presence_gemm_t;
typedef struct {
    float in_scale;
    int32_t in_zp;
    float out_scale;
    int32_t out_zp;
    presence_requant_t requant; /* in_scale / out_scale */
} presence_relu_t;
typedef struct {
    int32_t channels, area;
    float in_scale;
    int32_t in_zp;
    float out_scale;
    int32_t out_zp;
    presence_requant_t requant; /* in_scale / (area * out_scale) */
} presence_pool_t;
"""


def c_sources(model_int8: str | Path | bytes, frontend: dict, detector: dict) -> dict[str, str]:
    """{presence_model.h, presence_model.c, presence_selftest.c} source texts for the int8 model."""
    prog: Program = extract_program(model_int8)
    if not prog.steps or prog.steps[0].kind != "input":
        raise UnsupportedModelError("the model must start with the input normalisation (Sub, QuantizeLinear)")
    bits, in_bits = prog.act_bits, prog.input_bits
    ctype, in_ctype = _ctype(bits), _ctype(in_bits)
    frames, bins = prog.steps[0].dst.shape[-2:]
    weight_bytes = sum(int(s.attrs["weight"].size) for s in prog.steps if s.kind in ("conv", "gemm"))
    emb_dim = _numel(prog.embedding) if prog.embedding is not None else 0

    kernel_of = {
        "gemm": "GEMM",
        "relu": "RELU",
        "pool": "MEAN_POOL",
        "requant": "REQUANT_COPY",
    }
    used = {kernel_of[s.kind] for s in prog.steps if s.kind in kernel_of}
    used |= {"CONV2D_IN" if s.src.bits != s.dst.bits else "CONV2D" for s in prog.steps if s.kind == "conv"}
    defs, calls, skip = [], [], False
    placed: list[tuple[str, Step, QTensor]] = []  # (call, step, tensor it produces) in order
    for i, step in enumerate(prog.steps):
        if skip:
            skip = False
            continue
        d, call, skip = _emit_step(i, step, prog.steps[i + 1] if i + 1 < len(prog.steps) else None)
        defs.append(d)
        placed.append((call, step, prog.steps[i + 1].dst if skip else step.dst))
    arena, where = _plan_arena(placed, bits)
    for call, step, produced in placed:
        src = where[step.src.name] if step.src is not None else None
        calls.append(call.replace("{IN}", src or "").replace("{OUT}", where[produced.name]))
        if prog.embedding is not None and produced.name == prog.embedding.name:
            calls.append(
                f"if (embedding != NULL) presence_dequantize({where[produced.name]}, embedding, "
                f"{emb_dim}, "
                f"{_f(prog.embedding.scale)}, {prog.embedding.zero_point});"
            )
    if prog.logits.name not in where:
        raise UnsupportedModelError("the logits are not produced by the C steps")
    calls.append(
        f"presence_dequantize({where[prog.logits.name]}, logits, {_numel(prog.logits)}, "
        f"PRESENCE_LOGITS_SCALE, PRESENCE_LOGITS_ZERO_POINT);"
    )

    fe_defs, fe_ext, fe_arr = _config_constants("PRESENCE_FRONTEND", frontend)
    det_defs, det_ext, det_arr = _config_constants("PRESENCE_DETECTOR", detector)
    header = "\n".join(
        [
            f"/* Generated by deploy.firmware_c_emit from the int8 ONNX model sha256 {prog.sha256}. */",
            "#ifndef PRESENCE_MODEL_H",
            "#define PRESENCE_MODEL_H",
            "",
            "#include <stddef.h>",
            "#include <stdint.h>",
            "",
            f'#define PRESENCE_MODEL_SHA256 "{prog.sha256}"',
            f"#define PRESENCE_INPUT_FRAMES {frames}",
            f"#define PRESENCE_INPUT_BINS {bins}",
            "#define PRESENCE_INPUT_SIZE (PRESENCE_INPUT_FRAMES * PRESENCE_INPUT_BINS)",
            f"#define PRESENCE_N_CLASSES {_numel(prog.logits)}",
            f"#define PRESENCE_EMBEDDING_DIM {emb_dim}",
            f"#define PRESENCE_ACTIVATION_BITS {bits}",
            f"#define PRESENCE_INPUT_BITS {in_bits}",
            f"#define PRESENCE_LOGITS_SCALE {_f(prog.logits.scale)}",
            f"#define PRESENCE_LOGITS_ZERO_POINT {prog.logits.zero_point}",
            f"#define PRESENCE_ARENA_BYTES {arena * bits // 8}  /* one arena: a step's input and output */",
            f"#define PRESENCE_WEIGHT_BYTES {weight_bytes}",
            "",
            "/* front-end constants (frontend.json) */",
            *fe_defs,
            *fe_ext,
            "",
            "/* detector constants (detector.json) */",
            *det_defs,
            *det_ext,
            "",
            "/* features [PRESENCE_INPUT_FRAMES * PRESENCE_INPUT_BINS] dB, row-major (frame, bin);",
            "   logits [PRESENCE_N_CLASSES]; embedding [PRESENCE_EMBEDDING_DIM] or NULL.",
            "   Uses a static arena (no malloc): not reentrant. Returns 0. */",
            "int presence_infer(const float *features, float *logits, float *embedding);",
            "",
            "#endif /* PRESENCE_MODEL_H */",
            "",
        ]
    )
    kernels = (TEMPLATES / "kernels.c").read_text()
    source = "\n".join(
        [
            f"/* Generated by deploy.firmware_c_emit: C99 {bits}-bit activation ({in_bits}-bit input),",
            f"   int8 weight inference of the model sha256 {prog.sha256}.",
            "   Build: gcc -std=c99 -O2 -c presence_model.c */",
            "#include <math.h>",
            "#include <stddef.h>",
            "#include <stdint.h>",
            "",
            '#include "presence_model.h"',
            "",
            f"typedef {ctype} presence_q_t;",
            f"#define PRESENCE_QMIN ({-(1 << (bits - 1))})",
            f"#define PRESENCE_QMAX {(1 << (bits - 1)) - 1}",
            f"typedef {in_ctype} presence_in_t;",
            f"#define PRESENCE_IN_QMIN ({-(1 << (in_bits - 1))})",
            f"#define PRESENCE_IN_QMAX {(1 << (in_bits - 1)) - 1}",
            *[f"#define PRESENCE_USE_{k}" for k in sorted(used)],
            "",
            _TYPES,
            kernels,
            "/* ---- constants ---- */",
            *fe_arr,
            *det_arr,
            "",
            "/* ---- model ---- */",
            *defs,
            f"static presence_q_t presence_arena[{arena}];",
            "",
            "int presence_infer(const float *features, float *logits, float *embedding) {",
            *[f"    {c}" for c in calls],
            "    return 0;",
            "}",
            "",
        ]
    )
    return {
        "presence_model.h": header,
        "presence_model.c": source,
        "presence_selftest.c": (TEMPLATES / "presence_selftest.c").read_text(),
    }


def pack_test_vectors(inputs: np.ndarray, expected_logits: np.ndarray) -> bytes:
    """The harness's file: b"PRTV", uint32 n, n_in, n_out, float32 inputs [n, n_in], expected [n, n_out]."""
    x = np.ascontiguousarray(inputs, dtype="<f4").reshape(len(inputs), -1)
    y = np.ascontiguousarray(expected_logits, dtype="<f4").reshape(len(expected_logits), -1)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need as many inputs as expected rows (> 0), got {len(x)} and {len(y)}")
    return _TV_MAGIC + struct.pack("<III", len(x), x.shape[1], y.shape[1]) + x.tobytes() + y.tobytes()


def firmware_payload(
    model_int8: str | Path | bytes,
    frontend: dict,
    detector: dict,
    inputs: np.ndarray,
    expected_logits: np.ndarray,
) -> dict[str, bytes]:
    """Bundle entries c/presence_model.{h,c}, c/presence_selftest.c and c/test_vectors.bin."""
    files = {name: text.encode() for name, text in c_sources(model_int8, frontend, detector).items()}
    files["test_vectors.bin"] = pack_test_vectors(inputs, expected_logits)
    assert set(files) == set(C_FILES)
    return {f"{C_PAYLOAD_DIR}/{name}": blob for name, blob in sorted(files.items())}


def compile_c(
    src_dir: Path, out: Path, opt: str = "-O2", defines: tuple[str, ...] = (), cc: str | None = None
) -> Path:
    """gcc presence_model.c + presence_selftest.c in src_dir into the executable `out` (strict flags)."""
    cc = cc or shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise FileNotFoundError("no C compiler (gcc/cc) on PATH")
    cmd = [cc, *COMPILE_FLAGS, opt, *[f"-D{d}" for d in defines]]
    cmd += [str(src_dir / "presence_model.c"), str(src_dir / "presence_selftest.c"), "-lm", "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"C compile failed ({' '.join(cmd)}):\n{proc.stderr[-4000:]}")
    return out


def run_selftest(exe: Path, vectors: Path, max_lsb: int = 0, bench_windows: int = 0) -> dict:
    """Run the compiled harness; returns its figures (n_vectors, max_abs_diff, max_lsb, ..., returncode)."""
    proc = subprocess.run(
        [str(exe), str(vectors), str(max_lsb), str(bench_windows)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"C self-test failed to run (rc {proc.returncode}): {proc.stderr.strip()}")
    figures: dict = {"returncode": proc.returncode}
    for key, value in re.findall(r"(\w+)=([-+0-9.eE]+)", proc.stdout):
        figures[key] = float(value) if any(c in value for c in ".eE") else int(value)
    return figures
