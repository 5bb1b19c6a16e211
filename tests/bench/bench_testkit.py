"""Test helpers for the bench suites: a constant ONNX classifier and small params with a bundle folder."""

import copy
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from config_testkit import detector_config, frontend_config

from common.params import load_params
from runtime.mbdp import bundle_tuning


def classifier(logit_bias: list[float]) -> bytes:
    """ONNX classifier whose logits are logit_bias whatever the features (none, minor, major)."""
    pytest.importorskip("onnx")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
    from runtime_tiny_onnx import build_linear_model

    d, context = frontend_config().n_velocity_bins, detector_config().context_frames
    return build_linear_model(context, d, np.zeros((d, 3), np.float32), np.asarray(logit_bias, np.float32))


def small_params(tmp_path, logit_bias) -> dict:

    root = tmp_path / "bundle"
    (root / "payload").mkdir(parents=True)
    (root / "payload" / "frontend.json").write_text(json.dumps(frontend_config().to_dict()))
    (root / "payload" / "detector.json").write_text(json.dumps(detector_config().to_dict()))
    (root / "payload" / "model_int8.onnx").write_bytes(classifier(logit_bias))
    (root / "payload" / "mbdp.json").write_text(json.dumps(bundle_tuning("speaker4")))
    p = copy.deepcopy(load_params())
    p["simulate"].update(capture_s=5.0, workers=1)
    p["simulate"]["calibration"]["enabled"] = False
    p["bench"]["mbdp"]["music"].update(
        bundles=[str(root)], devices=1, hours=0.04, episode_s=[20.0, 30.0], gap_s=[11.0, 14.0]
    )
    return p
