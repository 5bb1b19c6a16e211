"""bench.calibration: the unit figures, and the detector on calibrated vs factory-default units
(or an honest gap without a bundle)."""

import copy

import pytest
from bench_testkit import small_params

from bench.calibration import detector_recall, unit_figures
from common.params import load_params


def test_without_a_bundle_nothing_is_made_up(tmp_path):
    p = copy.deepcopy(load_params())
    p["bench"]["calibration"]["detector"]["bundles"] = [str(tmp_path / "none.tar")]
    assert detector_recall(p) == {
        "not_measured": {"recall_detector_calibrated": "no bundle: run a turn first"}
    }


@pytest.mark.slow  # two simulated eval batches per case (about 15 s)
@pytest.mark.parametrize(("bias", "recall"), [([6.0, 0.0, 0.0], 0.0), ([-6.0, 0.0, 6.0], 1.0)])
def test_recall_on_calibrated_and_factory_units(tmp_path, bias, recall):
    p = small_params(tmp_path, bias)  # a bundle folder with a constant classifier, small simulator
    p["bench"]["calibration"]["detector"].update(
        bundles=p["bench"]["mbdp"]["music"]["bundles"], devices=1, hours=0.2, seed=5
    )
    out = detector_recall(p)
    assert out["detector"]["source"] == "bundle"
    for name in ("calibrated", "uncalibrated"):
        assert out[f"entry_recall_{name}"] == pytest.approx(recall)
        assert out[f"empty_present_fraction_{name}"] == pytest.approx(recall, abs=0.02)


def test_unit_figures_on_simulated_units_report_the_issue_keys():
    params = load_params()
    params["bench"]["calibration"]["units_quick"] = 12
    figures = unit_figures(params, quick=True)
    assert figures["units"] == 12
    assert set(figures) >= {
        "within_1db_fraction",
        "emission_saved_db",
        "recall_calibrated",
        "recall_uncalibrated",
    }
    assert figures["within_1db_fraction"] >= 0.8  # the carrier choice is near the best on nearly every unit
    assert figures["recall_calibrated"] >= figures["recall_uncalibrated"] - 0.05
