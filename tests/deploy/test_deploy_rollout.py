"""Rollout building blocks: seeded cohorts, the truth-based reference gate's decisions and numbers
(the truth-free canary gate: test_field_gate.py), canary rollback."""

from __future__ import annotations

import pytest

from deploy.agent import device_boot, device_status, install_bundle, provision_device
from deploy.errors import BundleError
from deploy.rollout import install_cohort, plan_cohorts, rollback_device, truth_based_gate


def test_cohorts_are_seeded_disjoint_and_cover_the_fleet():
    ids = [f"dev-{i:03d}" for i in range(40)]
    plan = plan_cohorts(ids, 0.1, seed=3)
    assert len(plan["canary"]) == 4 and set(plan["canary"]) | set(plan["rest"]) == set(ids)
    assert not set(plan["canary"]) & set(plan["rest"])
    assert plan == plan_cohorts(list(reversed(ids)), 0.1, seed=3)
    assert plan["canary"] != plan_cohorts(ids, 0.1, seed=4)["canary"]
    assert plan_cohorts(["a", "b"], 0.01, seed=0)["canary"] in (["a"], ["b"])
    with pytest.raises(ValueError):
        plan_cohorts(ids, 0.0, seed=0)


BASELINE = {"hours": 10.0, "false_alarms": 2, "detections": 100}


def test_truth_based_gate_proceeds_within_limits():
    decision = truth_based_gate({"hours": 5.0, "false_alarms": 1, "detections": 48}, BASELINE)
    assert decision.proceed
    assert decision.numbers["canary_false_alarms_per_hour"] == pytest.approx(0.2)
    assert decision.numbers["false_alarms_per_hour_limit"] == pytest.approx(0.2 * 1.5 + 0.2)
    assert decision.numbers["detections_per_hour_floor"] == pytest.approx(9.0)


@pytest.mark.parametrize(
    ("canary", "words"),
    [
        ({"hours": 5.0, "false_alarms": 3, "detections": 50}, "false alarms 0.600/h above the limit 0.500/h"),
        ({"hours": 5.0, "false_alarms": 0, "detections": 40}, "detections 8.00/h below the floor 9.00/h"),
        ({"hours": 0.5, "false_alarms": 0, "detections": 5}, "only 0.50 h"),
        (  # stuck "present": one onset, but present a third of the time with nobody there
            {"hours": 5.0, "false_alarms": 1, "false_present_hours": 1.7, "detections": 50},
            "false presence 34.0 % of the time above the limit 2.0 %",
        ),
    ],
)
def test_truth_based_gate_halts_with_its_numbers(canary, words):
    decision = truth_based_gate(canary, BASELINE)
    assert not decision.proceed and any(words in r for r in decision.reasons), decision.reasons
    assert set(decision.to_dict()["numbers"]) >= {
        "canary_false_alarms_per_hour",
        "baseline_detections_per_hour",
    }


def test_truth_based_gate_rejects_bad_stats_and_halts_without_logs():
    with pytest.raises(ValueError):
        truth_based_gate({"hours": 1.0, "false_alarms": -1, "detections": 0}, BASELINE)
    empty = truth_based_gate({"hours": 0.0, "false_alarms": 0, "detections": 0}, BASELINE)
    assert not empty.proceed and "no canary logs" in empty.reasons[0]


def test_canary_install_and_rollback(tmp_path, keystore, make_bundle):
    devices = [tmp_path / f"dev{i}" for i in range(2)]
    for d in devices:
        provision_device(d, "speaker4", keystore.trusted_public_keys())
    assert all(r["installed"] for r in install_cohort(make_bundle("v1.tar"), devices))
    v2 = make_bundle("v2.tar", version="1.1.0", release_counter=2)
    results = install_cohort(v2, devices)
    assert [r["slot"] for r in results] == ["B", "B"]
    back = rollback_device(devices[0], "canary gate: false alarms")
    assert back == {"device": str(devices[0]), "from": "B", "to": "A", "version": "1.0.0"}
    status = device_status(devices[0])
    assert device_boot(devices[0]) == "A" and status["bundle_version"] == "1.0.0"
    assert status["release_counter"] == 2  # anti-rollback: the halted release cannot come back
    assert not install_bundle(v2, devices[0]).installed
    fixed = make_bundle("v3.tar", version="1.1.1", release_counter=3)
    assert install_bundle(fixed, devices[0]).installed and device_boot(devices[0]) == "B"
    with pytest.raises(BundleError, match="no good bundle"):
        provision_device(tmp_path / "dev-new", "speaker4", keystore.trusted_public_keys())
        install_bundle(make_bundle("v1.tar"), tmp_path / "dev-new")
        rollback_device(tmp_path / "dev-new", "nothing to go back to")
