"""flows.bench_mbdp: false alarms during music with and without the MBDP, on small simulated batches."""

import copy
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from common.params import load_params
from flows.bench_mbdp import _present_in, doppler_band_db, music_false_alarms, run_bench
from flows.bench_models import bench_section
from runtime.mbdp import bundle_tuning
from training.metrics import CaptureOutcome


def classifier(logit_bias: list[float]) -> bytes:
    """ONNX classifier whose logits are logit_bias whatever the features (none, minor, major)."""
    pytest.importorskip("onnx")
    sys.path.insert(0, str(Path(__file__).parents[1] / "runtime"))
    from runtime_tiny_onnx import build_linear_model

    from runtime.detector import DetectorConfig
    from runtime.frontend import FrontendConfig

    d, context = FrontendConfig().n_velocity_bins, DetectorConfig().context_frames
    return build_linear_model(context, d, np.zeros((d, 3), np.float32), np.asarray(logit_bias, np.float32))


def small_params(tmp_path, logit_bias) -> dict:
    from runtime.detector import DetectorConfig
    from runtime.frontend import FrontendConfig

    root = tmp_path / "bundle"
    (root / "payload").mkdir(parents=True)
    (root / "payload" / "frontend.json").write_text(json.dumps(FrontendConfig().to_dict()))
    (root / "payload" / "detector.json").write_text(json.dumps(DetectorConfig().to_dict()))
    (root / "payload" / "model_int8.onnx").write_bytes(classifier(logit_bias))
    (root / "payload" / "mbdp.json").write_text(json.dumps(bundle_tuning("speaker4")))
    p = copy.deepcopy(load_params())
    p["simulate"].update(capture_s=5.0, workers=1)
    p["simulate"]["calibration"]["enabled"] = False
    p["mbdp"]["bench"]["music"].update(
        bundles=[str(root)], devices=1, hours=0.04, episode_s=[20.0, 30.0], gap_s=[11.0, 14.0]
    )
    return p


def test_quick_overrides_merge_into_the_section():
    p = copy.deepcopy(load_params())
    p["mbdp"]["bench"]["music"]["quick"] = {"devices": 1, "train": {"epochs": 1}}
    section = p["mbdp"]["bench"]["music"]
    full, quick = bench_section(section, False), bench_section(section, True)
    assert "quick" not in full and "quick" not in quick
    assert quick["devices"] == 1 and quick["train"]["epochs"] == 1
    assert quick["train"]["hours"] == full["train"]["hours"]  # nested keys not overridden are kept


def test_present_fraction_counts_frames_inside_music_only():
    times = np.arange(10, dtype=float)
    out = CaptureOutcome("c", 10.0, times, times >= 5)
    events = [
        {"capture_id": "c", "t0_s": 3.0, "t1_s": 6.0, "event_type": "music", "is_presence": False},
        {"capture_id": "c", "t0_s": 7.0, "t1_s": 9.0, "event_type": "pet", "is_presence": False},
    ]
    assert _present_in([out], events, "music") == (2, 4)  # frames 3..6, present at 5 and 6
    assert _present_in([out], events, "empty") == (0, 3)  # frames 0..2, nothing present


def test_doppler_band_level_of_a_tone():
    fs, n = 2000.0, 2000
    t = np.arange(n) / fs
    iq = (0.01 * np.exp(2j * np.pi * 100.0 * t) + 1.0)[None]  # -40 dBFS tone on a static path
    assert doppler_band_db(iq, fs) == pytest.approx(-40.0, abs=0.1)
    assert doppler_band_db(np.ones((1, n)), fs) < -200  # the static path alone is out of the band


@pytest.mark.parametrize(
    ("bias", "present"),
    [([6.0, 0.0, 0.0], 0.0), ([-6.0, 0.0, 6.0], 1.0)],
    ids=["never-fires", "always-fires"],
)
def test_music_false_alarms_from_a_bundle(tmp_path, bias, present):
    out = music_false_alarms(small_params(tmp_path, bias))
    assert out["music_detector"]["source"] == "bundle"
    assert out["music_hours_measured"] == out["music_hours_with_mbdp"] > 0  # the same plan twice
    for name in ("with_mbdp", "without_mbdp"):
        fa = out[f"music_false_alarms_{name}"]
        assert out[f"music_false_alarms_per_hour_{name}"] == pytest.approx(fa / out["music_hours_measured"])
        assert out[f"music_present_fraction_{name}"] == pytest.approx(present, abs=0.05)
        fa_empty = out["music_gaps_empty_false_alarms_per_hour"][name]
        assert out["music_gaps_empty_present_fraction"][name] == pytest.approx(present, abs=0.05)
        assert (fa + fa_empty > 0) == (present > 0)  # a detector stuck on has one onset per stream
    loud = [v for vol, v in out["music_by_volume"].items() if float(vol) >= 7]
    assert loud  # loud music: the sensing MBDP's compression shows in the band level the detector sees
    assert all(v["doppler_band_dbfs_with_mbdp"] < v["doppler_band_dbfs_without_mbdp"] for v in loud)


def test_run_bench_drops_what_it_measured(tmp_path, monkeypatch):
    import runtime.bench_mbdp

    fake = {"bass_gain_db": 5.0, "not_measured": ["false alarms per hour during music (x)", "other"]}
    monkeypatch.setattr(runtime.bench_mbdp, "run_bench", lambda params, quick=False: dict(fake))
    out = run_bench(small_params(tmp_path, [6.0, 0.0, 0.0]), quick=True)
    assert out["bass_gain_db"] == 5.0 and out["not_measured"] == ["other"]
    assert {"music_false_alarms_per_hour_with_mbdp", "music_false_alarms_per_hour_without_mbdp"} <= set(out)
