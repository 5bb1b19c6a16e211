"""One small flywheel turn on the training side: runtime features -> train -> thresholds -> export ->
int8 -> evaluate the int8 detector on a held-out raw batch with the counting rules."""

from __future__ import annotations

import copy

import numpy as np
from training_testkit import DETECTOR, TINY_PARAMS, curate_with_truth_labels, write_walker_batch

FRONTEND = {
    "baseband_fs_hz": 2000.0,
    "frame_len": 128,
    "hop": 64,
    "n_fft": 256,
    "v_max_mps": 2.5,
    "n_velocity_bins": 48,
    "clutter_tau_s": 0.5,
    "canceller": True,
    "speed_of_sound_mps": 343.0,
}


def test_train_export_quantize_evaluate(tmp_path):
    from runtime.detector import DetectorConfig
    from training.config import ExportConfig, QuantizeConfig, TrainRun
    from training.datamodule import TrainingBatch, gather_windows, load_window_index
    from training.evaluate import compare_models, evaluate_detector
    from training.export import export_onnx
    from training.quantize import quantize_int8
    from training.thresholds import thresholds_from_run
    from training.train import train_classifier

    params = copy.deepcopy(TINY_PARAMS)
    params["frontend"] = dict(FRONTEND)
    params["training"].update(epochs=8, val_fraction=0.25, target_false_alarms_per_hour=0.5)
    params["detector"] = {**DETECTOR, "hold_s": 1.0}
    write_walker_batch(tmp_path / "raw", tmp_path / "truth", n_walk=5, n_empty=3, seed=1)
    write_walker_batch(tmp_path / "eval", tmp_path / "eval_truth", n_walk=3, n_empty=2, seed=2)
    curated, labels = tmp_path / "curated" / "b", tmp_path / "labels" / "labels.parquet"
    curate_with_truth_labels(tmp_path / "raw", tmp_path / "truth", curated, labels, FRONTEND, 32, 4)
    batch = TrainingBatch(curated, labels)

    metrics = train_classifier([batch], TrainRun.from_params(params), tmp_path / "model")
    assert metrics["val_accuracy"] > 0.8
    detector, _ = thresholds_from_run(tmp_path / "model", TrainRun.from_params(params))
    detector_cfg = DetectorConfig.from_params({**params, "detector": detector})

    export_onnx(
        tmp_path / "model" / "model.ckpt",
        tmp_path / "model.onnx",
        ExportConfig.from_params(params),
        int(params["training"]["seed"]),
    )
    index = load_window_index([batch], 32)
    calib = gather_windows(index, np.arange(len(index)), 32)
    report = quantize_int8(
        tmp_path / "model.onnx", calib, tmp_path / "model_int8.onnx", QuantizeConfig.from_params(params)
    )
    assert report["passed"]

    m = evaluate_detector(
        tmp_path / "model_int8.onnx", FRONTEND, detector_cfg, tmp_path / "eval", tmp_path / "eval_truth"
    )
    assert m["entries"] == 3 and m["n_captures_skipped"] == 0
    assert m["entry_recall"] >= 2 / 3
    assert m["false_triggers"] <= 1
    side = compare_models(
        tmp_path / "model.onnx",
        tmp_path / "model_int8.onnx",
        FRONTEND,
        detector_cfg,
        tmp_path / "eval",
        tmp_path / "eval_truth",
    )
    assert side["decision_agreement"] >= 0.98
