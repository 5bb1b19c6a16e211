"""flows.bench_calibration: the detector on calibrated vs factory-default units, or an honest gap."""

import copy

import pytest
from test_music_bench import small_params

from common.params import load_params
from flows.bench_calibration import detector_recall


def test_without_a_bundle_nothing_is_made_up(tmp_path):
    p = copy.deepcopy(load_params())
    p["calibration"]["bench"]["detector"]["bundles"] = [str(tmp_path / "none.tar")]
    assert detector_recall(p) == {
        "not_measured": {"recall_detector_calibrated": "no bundle: run a turn first"}
    }


@pytest.mark.parametrize(("bias", "recall"), [([6.0, 0.0, 0.0], 0.0), ([-6.0, 0.0, 6.0], 1.0)])
def test_recall_on_calibrated_and_factory_units(tmp_path, bias, recall):
    p = small_params(tmp_path, bias)  # a bundle folder with a constant classifier, small simulator
    p["calibration"]["bench"]["detector"].update(
        bundles=p["mbdp"]["bench"]["music"]["bundles"], devices=1, hours=0.2, seed=5
    )
    out = detector_recall(p)
    assert out["detector"]["source"] == "bundle"
    for name in ("calibrated", "uncalibrated"):
        assert out[f"recall_{name}"] == pytest.approx(recall)
        assert 0.0 <= out[f"false_present_fraction_{name}"] <= 1.0
