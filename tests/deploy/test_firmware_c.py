"""Firmware C: emitted from an int8 QDQ model, compiled with strict gcc flags, checked against onnxruntime."""

from __future__ import annotations

import copy
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from config_testkit import model_config

from deploy.firmware_c import UnsupportedModelError, _quantize_multiplier, extract_program
from deploy.firmware_c_emit import compile_c, firmware_payload, pack_test_vectors, run_selftest
from deploy.packaging import expected_logits
from training.config import ExportConfig, QuantizeConfig

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")


def _random_int8_model(
    tmp: Path, head: str, in_channels: int = 1, channels: int = 8
) -> tuple[Path, np.ndarray]:
    """A tiny PresenceNet (random weights, non-trivial BatchNorm), exported and quantized by training/."""
    import torch

    sys.path.insert(0, str(Path(__file__).parents[1] / "training"))
    from training_testkit import TINY_PARAMS

    from training.export import export_onnx
    from training.model import build_model, save_checkpoint
    from training.quantize import quantize_int8

    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = model_config(channels=channels, embedding_dim=8, head=head, in_channels=in_channels)
    model = build_model(cfg)
    model.set_normalisation(rng.normal(-50, 3, cfg.input_width), rng.uniform(4, 8, cfg.input_width))
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.3, 0.3)
    save_checkpoint(model.eval(), tmp / "model.ckpt")
    params = copy.deepcopy(TINY_PARAMS)
    params["quantize"] = {**TINY_PARAMS["quantize"], "agreement_target": 0.0}  # keep per-channel int8
    export_onnx(
        tmp / "model.ckpt",
        tmp / "model.onnx",
        ExportConfig.from_params(params),
        int(params["training"]["seed"]),
    )
    windows = rng.normal(-50, 8, (48, 32, cfg.input_width)).astype(np.float32)
    report = quantize_int8(
        tmp / "model.onnx", windows, tmp / "model_int8.onnx", QuantizeConfig.from_params(params)
    )
    assert report["method"] == "per_channel_int8"
    return tmp / "model_int8.onnx", windows


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory) -> tuple[Path, np.ndarray]:
    return _random_int8_model(tmp_path_factory.mktemp("fwc"), "global")


def params_channels() -> list[str]:
    from common.params import load_params

    return list(load_params()["frontend"]["channels"])


def _build(model: Path, windows: np.ndarray, out: Path, defines: tuple[str, ...] = ()) -> Path:
    from common.params import load_params

    params = load_params()  # the repo's real front-end and detector sections become C constants
    frontend, detector = params["frontend"], {**params["detector"], "name": 'say "hi"', "none": None}
    files = firmware_payload(model, frontend, detector, windows, expected_logits(model, windows))
    out.mkdir(parents=True, exist_ok=True)
    for name, blob in files.items():
        assert name.startswith("c/")
        (out / Path(name).name).write_bytes(blob)
    return compile_c(out, out / "selftest", defines=defines)


def test_program_covers_the_model_ops(int8_model):
    prog = extract_program(int8_model[0])
    kinds = [s.kind for s in prog.steps]
    assert prog.act_bits == 8
    assert kinds[:2] == ["input", "mul"]
    assert kinds.count("conv") == 7 and kinds.count("gemm") == 2 and kinds.count("pool") == 1
    assert prog.logits.shape == (3,) and prog.embedding.shape == (8,)
    stem = next(s for s in prog.steps if s.kind == "conv")
    assert (stem.attrs["stride_h"], stem.attrs["groups"], stem.attrs["out_h"], stem.attrs["out_w"]) == (
        2,
        1,
        16,
        24,
    )


@needs_gcc
def test_c_reproduces_onnxruntime_reference_exactly(int8_model, tmp_path):
    model, windows = int8_model
    exe = _build(model, windows, tmp_path / "c")
    figures = run_selftest(exe, tmp_path / "c" / "test_vectors.bin", max_lsb=0)
    assert figures["n_vectors"] == len(windows)
    assert figures["max_lsb"] == 0 and figures["returncode"] == 0, figures
    header = (tmp_path / "c" / "presence_model.h").read_text()
    assert "#define PRESENCE_FRONTEND_N_VELOCITY_BINS 48" in header
    assert "#define PRESENCE_DETECTOR_STRICT_THRESHOLD 0.800000012f" in header
    channels = params_channels()
    assert f"#define PRESENCE_FRONTEND_CHANNELS_LEN {len(channels)}" in header
    assert f'#define PRESENCE_FRONTEND_CHANNELS "{",".join(channels)}"' in header


@needs_gcc
def test_velocity_head_runs_exactly(tmp_path):
    """The velocity head pools time with a depthwise (T/8 x 1) conv and flattens [c, 1, V/8] into Gemm."""
    model, windows = _random_int8_model(tmp_path, "velocity")
    kinds = [s.kind for s in extract_program(model).steps]
    assert kinds.count("conv") == 8 and kinds.count("pool") == 0 and kinds.count("gemm") == 2
    exe = _build(model, windows, tmp_path / "c")
    figures = run_selftest(exe, tmp_path / "c" / "test_vectors.bin", max_lsb=0)
    assert figures["max_lsb"] == 0 and figures["returncode"] == 0, figures


@needs_gcc
def test_feature_channel_stem_runs_exactly(tmp_path):
    """Four feature channels per velocity bin: the stem's (3, 12) kernel at stride (2, 8) on the
    interleaved [T, V * 4] input (training.model) runs in the C reference as onnxruntime runs it."""
    model, windows = _random_int8_model(tmp_path, "velocity", in_channels=4)
    stem = next(s for s in extract_program(model).steps if s.kind == "conv")
    assert (stem.attrs["k_h"], stem.attrs["k_w"], stem.attrs["stride_w"]) == (3, 12, 8)
    assert (stem.attrs["out_h"], stem.attrs["out_w"]) == (16, 24)  # as with one channel
    exe = _build(model, windows, tmp_path / "c")
    figures = run_selftest(exe, tmp_path / "c" / "test_vectors.bin", max_lsb=0)
    assert figures["max_lsb"] == 0 and figures["returncode"] == 0, figures


@needs_gcc
def test_fixed_point_build_is_within_one_lsb(int8_model, tmp_path):
    model, windows = int8_model
    exe = _build(model, windows, tmp_path / "c", defines=("PRESENCE_FIXED_POINT",))
    figures = run_selftest(exe, tmp_path / "c" / "test_vectors.bin", max_lsb=1)
    assert figures["max_lsb"] <= 1, figures


@needs_gcc
def test_harness_reports_wrong_expected_logits(int8_model, tmp_path):
    model, windows = int8_model
    exe = _build(model, windows, tmp_path / "c")
    prog = extract_program(model)
    wrong = expected_logits(model, windows) + 3 * prog.logits.scale
    (tmp_path / "wrong.bin").write_bytes(pack_test_vectors(windows, wrong))
    figures = run_selftest(exe, tmp_path / "wrong.bin", max_lsb=0)
    assert figures["returncode"] == 1 and figures["max_lsb"] == 3


@needs_gcc
def test_int16_activation_fallback_is_within_two_lsb(int8_model, tmp_path):
    """The int16_activations fallback: onnxruntime runs it unfused (float Conv/Gemm, float accumulation);
    the C accumulates exactly in int32, so a value within float rounding of a .5 tie can land 1 LSB
    away and propagate; 2 LSB is the stated bound (measured: 0 here, 1 on the 32-channel seed model)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from training.quantize import _quantize

    model, windows = int8_model
    prep, q16 = tmp_path / "prep.onnx", tmp_path / "model_int16.onnx"
    quant_pre_process(str(model.parent / "model.onnx"), str(prep), skip_symbolic_shape=True)
    _quantize(prep, q16, windows, "int16_activations", [])
    assert extract_program(q16).act_bits == 16
    exe = _build(q16, windows, tmp_path / "c")
    figures = run_selftest(exe, tmp_path / "c" / "test_vectors.bin", max_lsb=2)
    assert figures["max_lsb"] <= 2 and figures["returncode"] == 0, figures


def _requantized(model: Path, windows: np.ndarray, method: str, out: Path) -> Path:
    """The float model beside `model` quantized again with another training.quantize method."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from training.quantize import _quantize

    prep = out.with_suffix(".prep.onnx")
    quant_pre_process(str(model.parent / "model.onnx"), str(prep), skip_symbolic_shape=True)
    _quantize(prep, out, windows, method, [])
    return out


def _arena_bytes(c_dir: Path) -> int:
    header = (c_dir / "presence_model.h").read_text()
    return int(header.split("#define PRESENCE_ARENA_BYTES ")[1].split()[0])


@needs_gcc
def test_int8_input_under_int16_body_fits_the_budgeted_arena(tmp_path):
    """Four channels at the params.yaml width (32): with int16 activations the stem's input and output need
    36.9 KB, over speaker4's 32 KB; with the input kept int8 they need 30.7 KB, and the C reference runs
    in exactly the arena training.budget counts, matching onnxruntime."""
    from training.budget import check_budget, load_profile

    base, windows = _random_int8_model(tmp_path, "velocity", in_channels=4, channels=32)
    # skewed like dB features over a noise floor, so the asymmetric input range has a zero point
    windows = windows + 12.0 * np.abs(np.random.default_rng(3).normal(size=windows.shape)).astype(np.float32)
    mixed = _requantized(base, windows, "int8_input_int16_activations", tmp_path / "mixed.onnx")
    wide = _requantized(base, windows, "int16_activations", tmp_path / "int16.onnx")
    prog = extract_program(mixed)
    assert (prog.act_bits, prog.input_bits) == (16, 8)
    assert [s.kind for s in prog.steps[:2]] == ["input", "mul"] and prog.steps[0].dst.bits == 16
    assert prog.steps[1].dst.zero_point != 0  # the stored input: int8, asymmetric
    roomy = {**load_profile("speaker4"), "activation_bytes": 1 << 20}
    assert check_budget(wide, roomy)["peak_activation_bytes"] == 2 * (32 * 192 + 32 * 16 * 24)
    budget = check_budget(mixed, "speaker4")  # raises when over budget
    assert budget["peak_activation_bytes"] == 32 * 192 + 2 * 32 * 16 * 24 == 30720
    exe = _build(mixed, windows, tmp_path / "c")
    assert "#define PRESENCE_INPUT_BITS 8" in (tmp_path / "c" / "presence_model.h").read_text()
    assert _arena_bytes(tmp_path / "c") == budget["peak_activation_bytes"]
    figures = run_selftest(exe, tmp_path / "c" / "test_vectors.bin", max_lsb=2)
    assert figures["max_lsb"] <= 2 and figures["returncode"] == 0, figures


@needs_gcc
def test_arena_is_the_largest_step_input_and_output(int8_model, tmp_path):
    """One arena, each step's output at the other end from its input, Relu in place: the C needs the
    peak training.budget counts (the 8-channel model: 32 x 48 input + 8 x 16 x 24 stem output, int8)."""
    from training.budget import check_budget

    model, windows = int8_model
    _build(model, windows, tmp_path / "c")
    budget = check_budget(model, "speaker4")
    assert _arena_bytes(tmp_path / "c") == budget["peak_activation_bytes"] == 32 * 48 + 8 * 16 * 24


@needs_gcc
def test_legacy_exporter_graph_runs_exactly(int8_model, tmp_path, monkeypatch):
    """The TorchScript fallback exporter pools with GlobalAveragePool instead of ReduceMean."""
    import onnx
    import torch

    from training.export import export_onnx
    from training.quantize import quantize_int8

    sys.path.insert(0, str(Path(__file__).parents[1] / "training"))
    from training_testkit import TINY_PARAMS

    real_export = torch.onnx.export

    def no_dynamo(*args, **kwargs):
        if kwargs.get("dynamo", True):
            raise RuntimeError("dynamo exporter unavailable")
        return real_export(*args, **kwargs)

    model, windows = int8_model
    params = copy.deepcopy(TINY_PARAMS)
    params["quantize"] = {**TINY_PARAMS["quantize"], "agreement_target": 0.0}
    monkeypatch.setattr(torch.onnx, "export", no_dynamo)
    export_onnx(
        model.parent / "model.ckpt",
        tmp_path / "legacy.onnx",
        ExportConfig.from_params(params),
        int(params["training"]["seed"]),
    )
    ops = {n.op_type for n in onnx.load(str(tmp_path / "legacy.onnx")).graph.node}
    assert "GlobalAveragePool" in ops
    quantize_int8(
        tmp_path / "legacy.onnx", windows, tmp_path / "legacy_int8.onnx", QuantizeConfig.from_params(params)
    )
    assert [s.kind for s in extract_program(tmp_path / "legacy_int8.onnx").steps].count("pool") == 1
    exe = _build(tmp_path / "legacy_int8.onnx", windows, tmp_path / "c")
    figures = run_selftest(exe, tmp_path / "c" / "test_vectors.bin", max_lsb=0)
    assert figures["max_lsb"] == 0 and figures["returncode"] == 0, figures


def test_float_model_is_refused(int8_model):
    import onnx

    model_dir = int8_model[0].parent
    with pytest.raises(UnsupportedModelError):
        extract_program(onnx.load(str(model_dir / "model.onnx")).SerializeToString())


def test_quantize_multiplier_round_trips():
    for real in [1e-6, 0.0123, 0.5, 0.999999, 1.0, 3.7]:
        m, shift = _quantize_multiplier(real)
        assert (1 << 30) <= m < (1 << 31)
        assert abs(m * 2.0 ** (shift - 31) - real) <= real * 2**-30
    assert _quantize_multiplier(0.0) == (0, 0)


def test_test_vectors_bin_layout():
    x, y = np.ones((2, 6), np.float32), np.zeros((2, 3), np.float32)
    blob = pack_test_vectors(x, y)
    assert blob[:4] == b"PRTV" and len(blob) == 16 + 4 * (12 + 6)
    with pytest.raises(ValueError):
        pack_test_vectors(x, y[:1])


def test_package_bundle_carries_the_c_sources(int8_model, tmp_path, keystore):
    from deploy.packaging import package_bundle
    from runtime.mbdp import bundle_tuning

    model, windows = int8_model
    manifest = package_bundle(
        model_int8=model, frontend={"hop": 64}, detector={"strict_threshold": 0.8},
        mbdp=bundle_tuning("speaker4"), calibration={},
        test_inputs=windows[:8], metrics={},
        lineage={"git_revision": "x", "data_hashes": {}, "params_hash": "0" * 64},
        package_params={"name": "p", "version": "0.1.0", "release_counter": 1, "profile": "speaker4"},
        out_path=tmp_path / "b.tar", keystore=keystore,
    )  # fmt: skip
    for name in ("presence_model.h", "presence_model.c", "presence_selftest.c", "test_vectors.bin"):
        assert f"c/{name}" in manifest["files"]
