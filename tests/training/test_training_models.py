"""Training determinism and artifacts, ONNX export equivalence, int8 agreement, thresholds."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import polars as pl
import pytest
from training_testkit import DETECTOR, TINY_PARAMS

from training.config import ExportConfig, QuantizeConfig, TrainRun
from training.datamodule import gather_windows, load_window_index


def _windows(batches, n=None):
    index = load_window_index(batches, 32)
    pos = np.arange(len(index) if n is None else min(n, len(index)))
    return gather_windows(index, pos, 32), index.label[pos]


def test_training_writes_artifacts(trained_dir):
    import torch

    out, metrics = trained_dir
    for name in ("model.ckpt", "metrics.json", "val_predictions.parquet", "detector.json"):
        assert (out / name).exists()
    assert list((out / "logs").rglob("metrics.csv"))
    assert json.loads((out / "metrics.json").read_text())["n_val_windows"] == metrics["n_val_windows"]
    blob = torch.load(out / "model.ckpt", weights_only=True)
    assert blob["config"]["channels"] == 8
    preds = pl.read_parquet(out / "val_predictions.parquet")
    assert preds.height == metrics["n_val_windows"]
    probs = preds.select("p_none", "p_minor", "p_major").to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    from runtime.detector import DetectorConfig

    detector = DetectorConfig.from_dict(json.loads((out / "detector.json").read_text()))
    assert detector.context_frames == 32 and detector.frame_hop_s == pytest.approx(0.032)
    if "thresholds" in metrics:
        assert detector.strict_threshold == metrics["thresholds"]["strict_threshold"]
    # normalisation buffers were set from training data, not left at identity
    assert not torch.allclose(blob["state_dict"]["feature_mean"], torch.zeros(48))


def test_model_learns_synthetic_bands(trained_dir, synth_batches, tiny_params):
    from training.model import load_checkpoint
    from training.train import predict_windows

    out, _ = trained_dir
    windows, labels = _windows(synth_batches)
    probs, emb = predict_windows(load_checkpoint(out / "model.ckpt"), windows)
    assert emb.shape == (len(windows), tiny_params["training"]["embedding_dim"])
    assert (probs.argmax(1) == labels).mean() > 0.6  # chance is ~0.33


def test_same_seed_gives_identical_weights(tmp_path, synth_batches, tiny_params):
    import torch

    from training.train import train_classifier

    p = copy.deepcopy(tiny_params)
    p["training"]["epochs"] = 1
    train_classifier(synth_batches[:1], TrainRun.from_params(p), tmp_path / "a")
    train_classifier(synth_batches[:1], TrainRun.from_params(p), tmp_path / "b")
    a = torch.load(tmp_path / "a" / "model.ckpt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "model.ckpt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_batchnorm_folding_preserves_outputs(trained_dir):
    import torch

    from training.model import fold_batchnorm, load_checkpoint

    model = load_checkpoint(trained_dir[0] / "model.ckpt")
    fused = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(4, 32, 48) * 5 - 50
    with torch.no_grad():
        torch.testing.assert_close(fused(x)[0], model(x)[0], atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def exported(trained_dir, tmp_path_factory):
    from training.export import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export_onnx(
        trained_dir[0] / "model.ckpt",
        path,
        ExportConfig.from_params(TINY_PARAMS),
        TINY_PARAMS["training"]["seed"],
    )
    return path


def test_export_matches_torch_and_contract(exported, trained_dir):
    import onnx
    import torch

    from training.model import load_checkpoint
    from training.quantize import run_onnx

    model = onnx.load(str(exported))
    assert [i.name for i in model.graph.input] == ["features"]
    assert [o.name for o in model.graph.output] == ["logits", "embedding"]
    assert not model.graph.input[0].type.tensor_type.shape.dim[0].HasField("dim_value")  # dynamic batch
    assert "BatchNormalization" not in {n.op_type for n in model.graph.node}
    assert all(not t.HasField("data_location") or t.data_location == 0 for t in model.graph.initializer)
    x = np.random.default_rng(3).normal(-55, 6, (7, 32, 48)).astype(np.float32)
    logits, emb = run_onnx(exported, x)
    with torch.no_grad():
        t_logits, t_emb = load_checkpoint(trained_dir[0] / "model.ckpt")(torch.from_numpy(x))
    np.testing.assert_allclose(logits, t_logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(emb, t_emb.numpy(), atol=1e-4)


def test_runtime_classifier_accepts_export(exported):
    from runtime.classifier import OnnxClassifier

    probs, emb = OnnxClassifier(exported).predict(np.full((3, 32, 48), -60.0, np.float32))
    assert probs.shape == (3, 3) and emb.shape == (3, 8)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_int8_agreement_and_qdq_format(exported, synth_batches, tmp_path):
    import onnx

    from training.quantize import quantize_int8

    windows, _ = _windows(synth_batches)
    report = quantize_int8(exported, windows, tmp_path / "int8.onnx", QuantizeConfig.from_params(TINY_PARAMS))
    assert report["passed"], report
    assert report["agreement"] >= TINY_PARAMS["quantize"]["agreement_target"]
    assert report["method"] == "per_channel_int8", report["attempts"]
    q = onnx.load(str(tmp_path / "int8.onnx"))
    ops = {n.op_type for n in q.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [
        t for t in q.graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4
    ]
    assert int8_weights  # conv weights are stored as int8
    # per-channel: a conv weight's DequantizeLinear carries one scale per output channel
    inits = {t.name: t for t in q.graph.initializer}
    dq = [
        n
        for n in q.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in inits and len(inits[n.input[0]].dims) == 4
    ]
    assert any(inits[n.input[1]].dims and inits[n.input[1]].dims[0] == inits[n.input[0]].dims[0] for n in dq)


def test_quantize_falls_back_and_reports_when_gate_fails(exported, synth_batches, tmp_path):
    from training.quantize import quantize_int8

    windows, _ = _windows(synth_batches, 40)
    params = copy.deepcopy(TINY_PARAMS)
    params["quantize"]["agreement_target"] = 1.01  # unreachable: every fallback is tried
    report = quantize_int8(exported, windows, tmp_path / "int8.onnx", QuantizeConfig.from_params(params))
    assert not report["passed"]
    tried = [a["method"] for a in report["attempts"]]
    assert tried == [
        "per_channel_int8",
        "per_channel_int8_percentile",
        "per_tensor_int8",
        "int16_activations",
        "int8_input_int16_activations",
        "exclude_worst_nodes",
    ]
    assert report["method"] in tried and (tmp_path / "int8.onnx").exists()


def test_quantize_rejects_empty_calibration(exported, tmp_path):
    from training.quantize import quantize_int8

    with pytest.raises(ValueError, match="calibration"):
        quantize_int8(
            exported,
            np.zeros((0, 32, 48), np.float32),
            tmp_path / "q.onnx",
            QuantizeConfig.from_params(TINY_PARAMS),
        )


def test_thresholds_from_training_run(trained_dir):
    from runtime.detector import DetectorConfig
    from training.thresholds import thresholds_from_run

    params = copy.deepcopy(TINY_PARAMS)
    params["detector"] = DETECTOR  # hold_s 5, occupied_window_s 60
    detector, point = thresholds_from_run(trained_dir[0], TrainRun.from_params(params))
    cfg = DetectorConfig.from_dict(detector)  # a valid runtime config
    assert cfg.hold_s == 5.0
    assert 0.3 <= cfg.lenient_threshold <= cfg.strict_threshold <= 0.99
    assert cfg.strict_threshold >= 0.5
    assert point["hours_none"] > 0


def test_training_without_validation_keeps_last_epoch(tmp_path, synth_batches, tiny_params):
    from training.train import train_classifier

    p = copy.deepcopy(tiny_params)
    p["training"].update(epochs=1, val_fraction=0.0)
    metrics = train_classifier(synth_batches[:1], TrainRun.from_params(p), tmp_path)
    assert metrics["n_val_windows"] == 0 and metrics["best_epoch"] == 0
    assert (tmp_path / "model.ckpt").exists() and not (tmp_path / "val_predictions.parquet").exists()
    # no validation data: detector.json still exists, with the thresholds of params.detector
    detector = json.loads((tmp_path / "detector.json").read_text())
    assert detector["strict_threshold"] == p["detector"]["strict_threshold"]


def test_export_falls_back_to_legacy_exporter(trained_dir, tmp_path, monkeypatch):
    import onnx
    import torch

    from training.export import export_onnx

    real_export = torch.onnx.export

    def no_dynamo(*args, **kwargs):
        if kwargs.get("dynamo", True):
            raise RuntimeError("getpwuid(): uid not found")
        return real_export(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", no_dynamo)
    export_onnx(
        trained_dir[0] / "model.ckpt",
        tmp_path / "legacy.onnx",
        ExportConfig.from_params(TINY_PARAMS),
        TINY_PARAMS["training"]["seed"],
    )
    model = onnx.load(str(tmp_path / "legacy.onnx"))
    assert [o.name for o in model.graph.output] == ["logits", "embedding"]


def test_bench_measures_given_models(exported, synth_batches, tmp_path, tiny_params):
    from bench.model import run_bench
    from common.params import load_params
    from training.quantize import quantize_int8

    windows, _ = _windows(synth_batches, 64)
    quantize_int8(exported, windows, tmp_path / "int8.onnx", QuantizeConfig.from_params(tiny_params))
    p = copy.deepcopy(tiny_params)
    p["bench"] = {"model": load_params()["bench"]["model"]}
    p["bench"]["model"]["quick"]["windows"] = 32
    p["package"] = {"profile": "speaker4"}
    out = run_bench(p, quick=True, float_onnx=exported, int8_onnx=tmp_path / "int8.onnx")
    assert out["n_windows"] == 32  # bench.model's quick sizes are the ones measured
    for key in ("int8_windows_per_s", "float_windows_per_s", "float_windows_per_s_batch256"):
        assert out[key] > 0
    assert out["macs_per_inference"] > 0 and out["peak_activation_bytes"] > 0
    assert 0 < out["int8_weight_bytes"] <= out["weight_storage_bytes"]
    if shutil.which("gcc") is None:
        assert out["c_windows_per_s"] is None and out["c_windows_per_s_missing"]
    else:  # the bundle's C reference inference, compiled and timed
        assert out["c_windows_per_s"] > 0
    assert 0.0 <= out["int8_float_agreement"] <= 1.0
