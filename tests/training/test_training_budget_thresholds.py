"""Budget figures on a hand-built model with known numbers; thresholds on hand-made probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from config_testkit import model_config
from training_testkit import DETECTOR, TINY_PARAMS

from training.budget import BudgetError, analyse_model, check_budget, load_profile
from training.config import QuantizeConfig, TrainRun
from training.thresholds import choose_thresholds, count_onsets, operating_point


def _known_model() -> bytes:
    """features [N,8,8] -> Unsqueeze -> Conv 1->4 3x3 pad 1 -> Relu -> GAP -> Flatten -> Gemm 4->3."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(rng.normal(size=(4, 1, 3, 3)).astype(np.float32), "conv_w"),
        numpy_helper.from_array(np.zeros(4, np.float32), "conv_b"),
        numpy_helper.from_array(rng.normal(size=(3, 4)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(np.zeros(3, np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Unsqueeze", ["features", "axis1"], ["x4"]),
        helper.make_node("Conv", ["x4", "conv_w", "conv_b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["embedding"]),
        helper.make_node("Gemm", ["embedding", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "known",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 8, 8])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 4]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model.SerializeToString()


PROFILE = {
    "name": "test",
    "detector_macs_per_s": 1e6,
    "weight_bytes": 1024,
    "activation_bytes": 4096,
    "frame_rate_hz": 31.25,
    "inference_stride_frames": 1,
    "supported_ops": ["Unsqueeze", "Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm"],
}


def test_budget_numbers_on_known_model():
    r = check_budget(_known_model(), PROFILE)
    assert r["params"] == 36 + 4 + 12 + 3
    assert r["int8_weight_bytes"] == 36 + 12
    assert r["weight_storage_bytes"] == 48 + 4 * (4 + 3)  # int32 biases
    assert r["macs_per_inference"] == 4 * 8 * 8 * 9 + 3 * 4
    # peak: conv input (64) + conv output (256); ReLU runs in place on the conv output
    assert r["peak_activation_bytes"] == 320
    assert r["macs_per_s_needed"] == pytest.approx(2316 * 31.25)
    assert r["within_budget"]


def test_budget_errors_name_each_violation():
    tight = {
        **PROFILE,
        "detector_macs_per_s": 1000,
        "activation_bytes": 100,
        "weight_bytes": 10,
        "supported_ops": ["Conv", "Relu", "Gemm"],
    }
    with pytest.raises(BudgetError) as err:
        check_budget(_known_model(), tight)
    msg = str(err.value)
    for word in ("compute", "weights", "activations", "GlobalAveragePool"):
        assert word in msg


def test_profiles_file_and_unknown_profile():
    prof = load_profile("speaker4")
    assert prof["frame_rate_hz"] == pytest.approx(31.25) and "Conv" in prof["supported_ops"]
    with pytest.raises(BudgetError, match="unknown DSP profile"):
        load_profile("toaster")


def test_budget_on_quantized_model_matches_float(tmp_path):
    from training.quantize import quantize_int8

    float_path = tmp_path / "f.onnx"
    float_path.write_bytes(_known_model())
    windows = np.random.default_rng(1).normal(size=(32, 8, 8)).astype(np.float32)
    quantize = {**TINY_PARAMS["quantize"], "calibration_windows": 512, "agreement_target": 0.5}
    report = quantize_int8(
        float_path, windows, tmp_path / "q.onnx", QuantizeConfig.from_params({"quantize": quantize})
    )
    assert report["passed"]
    f, q = analyse_model(float_path.read_bytes()), analyse_model(str(tmp_path / "q.onnx"))
    assert q["quantized"] and not f["quantized"]
    assert (q["macs_per_inference"], q["params"], q["int8_weight_bytes"]) == (
        f["macs_per_inference"],
        f["params"],
        f["int8_weight_bytes"],
    )
    assert q["peak_activation_elements"] == f["peak_activation_elements"]
    assert q["weight_storage_bytes"] > f["weight_storage_bytes"]  # scales are stored too
    assert (q["activation_element_bytes"], f["activation_element_bytes"]) == (1, None)


def test_int16_activations_double_the_arena(tmp_path):
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from training.quantize import _quantize

    float_path, prep = tmp_path / "f.onnx", tmp_path / "prep.onnx"
    float_path.write_bytes(_known_model())
    quant_pre_process(str(float_path), str(prep), skip_symbolic_shape=True)
    windows = np.random.default_rng(1).normal(size=(32, 8, 8)).astype(np.float32)
    _quantize(prep, tmp_path / "q8.onnx", windows, "per_channel_int8", [])
    _quantize(prep, tmp_path / "q16.onnx", windows, "int16_activations", [])
    profile = {"detector_macs_per_s": 1e9, "weight_bytes": 1 << 20, "activation_bytes": 1 << 20}
    profile["frame_rate_hz"] = 31.25
    q8, q16 = check_budget(tmp_path / "q8.onnx", profile), check_budget(tmp_path / "q16.onnx", profile)
    assert q16["activation_element_bytes"] == 2
    assert q16["peak_activation_bytes"] == 2 * q8["peak_activation_bytes"] > 0


def test_int8_input_counts_its_own_width(tmp_path):
    """int8_input_int16_activations keeps the conv's input (here the graph input and its Unsqueeze) int8:
    the peak is the conv's int8 input (64 x 1) beside its int16 output (256 x 2), not 320 elements x 2."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from training.quantize import _quantize, stem_input_tensors

    float_path, prep = tmp_path / "f.onnx", tmp_path / "prep.onnx"
    float_path.write_bytes(_known_model())
    quant_pre_process(str(float_path), str(prep), skip_symbolic_shape=True)
    assert stem_input_tensors(prep) == ["features", "x4"]
    windows = np.random.default_rng(1).normal(size=(32, 8, 8)).astype(np.float32)
    _quantize(prep, tmp_path / "mixed.onnx", windows, "int8_input_int16_activations", [])
    profile = {"detector_macs_per_s": 1e9, "weight_bytes": 1 << 20, "activation_bytes": 1 << 20}
    mixed = check_budget(tmp_path / "mixed.onnx", {**profile, "frame_rate_hz": 31.25})
    assert mixed["activation_element_bytes"] == 2  # the widest
    assert mixed["peak_activation_elements"] == 320
    assert mixed["peak_activation_bytes"] == 64 + 2 * 256
    wide = {**profile, "frame_rate_hz": 31.25, "activation_bytes_per_element": 2}
    floor = check_budget(tmp_path / "mixed.onnx", wide)
    assert floor["peak_activation_bytes"] == 2 * 320  # never under the profile's element size


@pytest.mark.parametrize("head", ["global", "velocity"])
def test_presence_net_meets_the_issue_aims(tmp_path, head):
    """The params.yaml-sized model: <= 1 M MAC per inference and <= 32 KB int8 weights."""
    import torch

    from training.model import build_model, fold_batchnorm

    torch.manual_seed(0)
    model = fold_batchnorm(build_model(model_config(channels=32, embedding_dim=32, head=head)))
    path = tmp_path / "m.onnx"
    torch.onnx.export(
        model,
        (torch.zeros(1, 32, 48),),
        str(path),
        input_names=["features"],
        output_names=["logits", "embedding"],
        dynamo=False,
    )
    r = check_budget(str(path), "speaker4")
    assert r["macs_per_inference"] <= 1_000_000
    assert r["int8_weight_bytes"] <= 32 * 1024


def test_count_onsets_merges_runs_within_a_capture():
    over = np.array([1, 1, 0, 1, 1, 1], bool)
    ids = np.array(["a", "a", "a", "a", "b", "b"])
    assert count_onsets(over, ids) == 3  # a:[0,1], a:[3], b:[4,5]
    assert count_onsets(over, None) == 5


def test_thresholds_meet_target_on_hand_made_probs():
    # 3600 s of empty room in 1-s windows: p_major high in 2 windows (0.9, 0.6), else 0.1
    n = 3600
    probs = np.tile([0.8, 0.1, 0.1], (n + 10, 1))
    labels = np.zeros(n + 10, int)
    probs[5] = [0.05, 0.05, 0.9]
    probs[50] = [0.3, 0.1, 0.6]
    probs[n:] = [0.0, 0.1, 0.9]  # 10 major windows
    labels[n:] = 2
    cfg = choose_thresholds(
        probs,
        labels,
        frame_hop_s=1.0,
        target_fa_per_hour=1.0,
        base_detector={"hold_s": 5.0, "strict_threshold": 0.3},
    )
    assert cfg["hold_s"] == 5.0
    assert 0.6 < cfg["strict_threshold"] <= 0.9  # one false alarm per hour allowed: only 0.9 stays
    cfg0 = choose_thresholds(probs, labels, 1.0, 0.0)
    assert cfg0["strict_threshold"] > 0.9
    point = operating_point(probs, labels, cfg, frame_hop_s=1.0)
    assert point["hours_none"] == pytest.approx(1.0)
    assert point["fa_per_hour_strict"] <= 1.0
    assert point["recall_major_strict"] == 1.0
    assert cfg["lenient_threshold"] <= cfg["strict_threshold"]


def test_thresholds_need_none_windows():
    with pytest.raises(ValueError, match="none"):
        choose_thresholds(np.tile([0, 0, 1.0], (4, 1)), np.full(4, 2), 0.032, 0.5)


def test_near_presence_windows_are_not_false_alarms():
    from training.thresholds import near_presence

    # one capture: none windows every 0.5 s, a presence window at t = 5 s, a high none score at 5.5 s
    t = np.arange(0, 20, 0.5)
    labels = np.zeros(len(t), int)
    labels[10] = 2
    probs = np.tile([0.9, 0.05, 0.05], (len(t), 1))
    probs[10] = [0.0, 0.0, 1.0]
    probs[11] = [0.1, 0.0, 0.9]  # presence still inside this window's context
    ids = np.array(["c"] * len(t))
    ignore = near_presence(labels, ids, t, margin_s=1.0)
    assert ignore.tolist() == [abs(x - 5.0) <= 1.0 and x != 5.0 for x in t]
    loose = choose_thresholds(probs, labels, 0.5, 0.0, capture_ids=ids, ignore=ignore)
    strict = choose_thresholds(probs, labels, 0.5, 0.0, capture_ids=ids)
    assert loose["strict_threshold"] == 0.5  # the floor: nothing left to reject
    assert strict["strict_threshold"] > 0.9


def test_lenient_threshold_keeps_the_minor_recall_asked_for():
    rng = np.random.default_rng(0)
    p_present = np.concatenate([rng.uniform(0.0, 0.6, 400), rng.uniform(0.3, 1.0, 200)])  # none, minor
    probs = np.column_stack([1 - p_present, p_present, np.zeros(600)])
    labels = np.concatenate([np.zeros(400, int), np.ones(200, int)])
    cfg = choose_thresholds(
        probs, labels, 1.0, 0.0, lenient_minor_recall=0.9, min_strict=0.99, min_lenient=0.1
    )
    kept = (probs[labels == 1, 1] >= cfg["lenient_threshold"]).mean()
    assert 0.89 <= kept <= 0.91 and cfg["lenient_threshold"] <= cfg["strict_threshold"]
    strict_only = choose_thresholds(probs, labels, 1.0, 0.0, min_strict=0.99, min_lenient=0.1)
    assert strict_only["lenient_threshold"] > cfg["lenient_threshold"]  # the FA target alone is stricter
    with pytest.raises(ValueError, match="lenient_minor_recall"):
        choose_thresholds(probs, labels, 1.0, 0.0, lenient_minor_recall=1.5)


def test_false_alarm_rate_comes_from_time_uniform_windows(tmp_path):
    import polars as pl

    from training.thresholds import thresholds_from_run

    n = 200  # one capture per window: lab windows of empty rooms score low, mined hard negatives high
    p_major = np.concatenate([np.full(n, 0.2), np.full(n, 0.9), np.full(n, 0.95)])
    labels = np.concatenate([np.zeros(2 * n, int), np.full(n, 2)])
    pl.DataFrame(
        {
            "window_id": [f"w{i}" for i in range(3 * n)],
            "capture_id": [f"c{i}" for i in range(3 * n)],
            "end_frame": np.full(3 * n, 40),
            "label": labels,
            "confidence": np.ones(3 * n),
            "source": ["lab"] * n + ["oracle"] * n + ["lab"] * n,
            "p_none": 1 - p_major,
            "p_minor": np.zeros(3 * n),
            "p_major": p_major,
        }
    ).write_parquet(tmp_path / "val_predictions.parquet")
    params = {
        "frontend": TINY_PARAMS["frontend"],
        "ingest": {"window_stride": 8, "context_frames": 32},
        "training": {
            **TINY_PARAMS["training"],
            "target_false_alarms_per_hour": 0.5,
            "min_strict_threshold": 0.5,
            "min_lenient_threshold": 0.3,
            "lenient_false_alarms_per_hour": None,
            "lenient_minor_recall": None,
            "threshold_sources": [],  # every validation window counts
        },
        "detector": DETECTOR,
    }
    everything, _ = thresholds_from_run(tmp_path, TrainRun.from_params(params))
    params["training"]["threshold_sources"] = ["lab"]
    uniform, point = thresholds_from_run(tmp_path, TrainRun.from_params(params))
    assert everything["strict_threshold"] > 0.9  # the mined windows look like hours of alarms
    assert uniform["strict_threshold"] < 0.9 and point["recall_major_strict"] == 1.0


def test_quantize_falls_through_to_the_int8_input_when_int16_is_over_budget(tmp_path):
    """The int8 recipes miss the 0.995 gate on these windows (0.984-0.988) and int16 passes it (0.996); with
    a profile whose arena holds the mixed model (576 bytes) but not the int16 one (640), the int16 attempt
    does not end the search and the int8 input is kept."""
    from training.quantize import quantize_int8

    float_path = tmp_path / "f.onnx"
    float_path.write_bytes(_known_model())
    windows = np.random.default_rng(1).normal(size=(256, 8, 8)).astype(np.float32)
    quantize = {**TINY_PARAMS["quantize"], "calibration_windows": 512, "agreement_target": 0.995}
    cfg = QuantizeConfig.from_params({"quantize": quantize})
    profile = {**PROFILE, "supported_ops": [*PROFILE["supported_ops"], "QuantizeLinear", "DequantizeLinear"]}
    roomy = quantize_int8(float_path, windows, tmp_path / "q16.onnx", cfg, profile=profile)
    assert roomy["passed"] and roomy["method"] == "int16_activations" and roomy["within_budget"]
    tight = {**profile, "activation_bytes": 600}
    report = quantize_int8(float_path, windows, tmp_path / "mixed.onnx", cfg, profile=tight)
    assert report["passed"] and report["method"] == "int8_input_int16_activations"
    assert "budget_error" in next(a for a in report["attempts"] if a["method"] == "int16_activations")
    assert check_budget(tmp_path / "mixed.onnx", tight)["peak_activation_bytes"] == 576
    no_qdq = quantize_int8(float_path, windows, tmp_path / "none.onnx", cfg, profile=PROFILE)
    assert not no_qdq["passed"] and no_qdq["within_budget"] is False  # Q/DQ ops unsupported: none fits
