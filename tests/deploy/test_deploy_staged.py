"""Staged rollout over a simulated fleet (no Prefect): a good bundle proceeds, a false-alarming one halts.

Bundles here carry a constant model that always says "no motion"; the bad one pairs it with absurdly
low detector thresholds, so it reports presence everywhere. The canaries' next logs are simulated by
fleet.simulate (through flows.simulated_fleet) for the same units and period with the new and with the
previous bundle.
"""

from __future__ import annotations

import json

import pytest
from deploy_testkit import detector_payload, manifest_fields

from deploy.agent import device_boot, device_status
from deploy.fleet import list_fleet, provision_fleet
from deploy.rollout import install_cohort
from deploy.staged import HALTED, ROLLED_OUT, decisions_markdown, gate, run_staged_rollout
from flows.simulated_fleet import SimulatedCanaryLogs, field_identities, provision_field_fleet

pytest.importorskip("onnxruntime")
N_DEVICES = 5  # field units 0..4: four speaker4, one display2 (fleet_seed 1729)
BAD_DETECTOR = {"strict_threshold": 0.0, "lenient_threshold": 0.0}


@pytest.fixture
def sim():
    from fleet.config import sim_section

    return sim_section(None)


def logs(sim: dict, rollout: dict) -> SimulatedCanaryLogs:
    return SimulatedCanaryLogs.from_params(sim, rollout)


@pytest.fixture
def rollout():
    return {
        "canary_fraction": 0.4,
        "seed": 13,
        "observe_seed": 17,
        "canary_hours": 0.05,
        "canary_sample_prob": 1.0,
        "min_canary_hours": 0.05,
        "max_false_alarm_ratio": 1.5,
        "false_alarm_slack_per_hour": 0.2,
        "min_detection_ratio": 0.9,
    }


@pytest.fixture
def signed(tmp_path, keystore):
    from deploy.bundle import build_bundle

    def _make(name: str, counter: int, detector: dict | None = None):
        out = tmp_path / "bundles" / name
        fields = manifest_fields(version=f"1.{counter}.0", release_counter=counter)
        build_bundle(detector_payload(detector), fields, keystore, out)
        return out

    return _make


@pytest.fixture
def fleet(tmp_path, keystore, sim):
    devices = provision_field_fleet(tmp_path / "fleet", N_DEVICES, keystore.trusted_public_keys(), sim)
    assert [d["device_id"] for d in devices] == [f"dev-{i:04d}" for i in range(N_DEVICES)]
    return tmp_path / "fleet"


def _speakers(fleet_dir):
    return [d for d in list_fleet(fleet_dir) if d["profile"] == "speaker4"]


def test_provisioning_is_idempotent_and_carries_fleet_identities(fleet, keystore, sim):
    before = list_fleet(fleet)
    assert {d["profile"] for d in before} == {"speaker4", "display2"}
    again = provision_fleet(fleet, field_identities(N_DEVICES + 1, sim), keystore.trusted_public_keys())
    assert again[:N_DEVICES] == before and again[-1]["fleet_index"] == N_DEVICES
    assert all(device_status(d["dir"])["release_counter"] == 0 for d in again)


def test_provisioning_refuses_incomplete_identities(tmp_path, keystore):
    with pytest.raises(ValueError, match=r"lacks \['fleet_index', 'profile'\]"):
        provision_fleet(tmp_path / "fleet", [{"device_id": "dev-x"}], keystore.trusted_public_keys())
    with pytest.raises(ValueError, match="at least one device"):
        provision_fleet(tmp_path / "fleet", [], keystore.trusted_public_keys())
    assert not (tmp_path / "fleet" / "dev-x").exists()


def test_good_bundle_proceeds_to_the_whole_fleet(fleet, signed, rollout, sim):
    speakers = _speakers(fleet)
    assert all(r["installed"] for r in install_cohort(signed("v1.tar", 1), [d["dir"] for d in speakers]))
    doc = run_staged_rollout(signed("v2.tar", 2), fleet, rollout, logs(sim, rollout))
    assert doc["outcome"] == ROLLED_OUT
    assert [e["step"] for e in doc["decisions"]] == [
        "plan",
        "install_canaries",
        "observe",
        "gate",
        "install_rest",
    ]
    numbers = doc["summary"]["gate"]["numbers"]
    # same units, same period, same detector behaviour: the paired logs give the same counts
    assert numbers["canary_hours"] == pytest.approx(2 * rollout["canary_hours"])
    assert numbers["canary_hours"] == numbers["baseline_hours"]
    for rate in ("routine_friction_per_device_day", "presence_failures_per_device_day", "lights_on_share"):
        assert numbers[f"canary_{rate}"] == numbers[f"baseline_{rate}"]
    reference = numbers["reference"]  # the truth-based gate, recorded, agreeing
    assert numbers["reference_proceed"] and numbers["agrees_with_reference"]
    assert reference["canary_false_alarms"] == reference["baseline_false_alarms"]
    assert reference["canary_detections"] == reference["baseline_detections"]
    for d in speakers:
        st = device_status(d["dir"])
        assert (st["boot_slot"], st["bundle_version"], st["release_counter"]) == ("B", "1.2.0", 2)
    display = next(d for d in list_fleet(fleet) if d["profile"] == "display2")
    assert device_boot(display["dir"]) is None  # other profile: skipped, untouched
    assert any("profile display2" in r for r in doc["decisions"][0]["reasons"])
    written = json.loads((fleet / "rollouts" / "release-000002" / "decisions.json").read_text())
    assert written["outcome"] == ROLLED_OUT and written["decisions"] == doc["decisions"]


def test_false_alarming_bundle_halts_and_canaries_boot_their_previous_slot(fleet, signed, rollout, sim):
    speakers = _speakers(fleet)
    install_cohort(signed("v1.tar", 1), [d["dir"] for d in speakers])
    messages: list[str] = []
    doc = run_staged_rollout(
        signed("v2-bad.tar", 2, BAD_DETECTOR), fleet, rollout, logs(sim, rollout), notify=messages.append
    )
    assert doc["outcome"] == HALTED
    gate_entry = next(e for e in doc["decisions"] if e["step"] == "gate")
    # stuck "present": the routines never switch the lights off, which the logs show without truth
    assert gate_entry["decision"] == "halt" and gate_entry["reasons"][0].startswith("lights-on share")
    numbers = gate_entry["numbers"]
    assert numbers["canary_lights_on_share"] > numbers["lights_on_share_limit"]
    reference = numbers["reference"]  # the truth agrees: false alarms everywhere
    assert not numbers["reference_proceed"] and numbers["agrees_with_reference"]
    assert reference["canary_false_alarms_per_hour"] > reference["false_alarms_per_hour_limit"]
    canaries = set(doc["summary"]["canaries"])
    assert set(doc["summary"]["rolled_back"]) == canaries and len(canaries) == 2
    for d in speakers:
        st = device_status(d["dir"])
        if d["device_id"] in canaries:  # back on v1 in slot A; the halted release can never come back
            assert (st["boot_slot"], st["bundle_version"], st["release_counter"]) == ("A", "1.1.0", 2)
            assert st["slots"]["B"]["state"] == "bad"
        else:  # the rest never saw the bundle
            assert (st["boot_slot"], st["bundle_version"], st["release_counter"]) == ("A", "1.1.0", 1)
    assert any(m.startswith("[gate] halt: lights-on share") for m in messages)
    assert "| gate | halt |" in decisions_markdown(doc)


def test_first_bundle_halted_against_factory_detector_returns_canaries_to_factory(
    fleet, signed, rollout, sim
):
    # against the factory detector, whose lights also stay on for minutes after any motion, the logs
    # need a longer look than 3 minutes per canary to show the stuck detector's lights never go off
    rollout = {**rollout, "canary_hours": 0.25, "min_canary_hours": 0.25}
    doc = run_staged_rollout(signed("v1-bad.tar", 1, BAD_DETECTOR), fleet, rollout, logs(sim, rollout))
    assert doc["outcome"] == HALTED
    gate_entry = next(e for e in doc["decisions"] if e["step"] == "gate")
    assert gate_entry["reasons"][0].startswith("lights-on share")
    assert gate_entry["numbers"]["agrees_with_reference"]
    assert any("factory" in r for r in next(e for e in doc["decisions"] if e["step"] == "observe")["reasons"])
    for d in _speakers(fleet):
        st = device_status(d["dir"])
        assert st["boot_slot"] is None and st["active_slot"] is None  # factory detector, no bundle
        assert st["release_counter"] == (1 if d["device_id"] in doc["summary"]["canaries"] else 0)


def test_gate_halts_when_a_canary_refused_even_with_clean_numbers():
    installs = [
        {"device_id": "dev-0001", "installed": True, "reason": "installed"},
        {"device_id": "dev-0003", "installed": False, "reason": "self-test failed: logits differ"},
    ]
    clean = {
        "device_hours": 2.0,
        "routine_friction": 0,
        "presence_failures": 0,
        "occupied_hours": 1.0,
        "motion_routines_occupied": 3,
        "lights_on_hours": 1.0,
    }
    decision = gate(installs, {"canary": clean, "baseline": clean}, {})
    assert not decision.proceed and decision.reasons == ["dev-0003 refused: self-test failed: logits differ"]
    assert decision.numbers["canaries_refused"] == 1
    assert gate(installs[:1], {"canary": clean, "baseline": clean}, {}).proceed
    nobody = gate(installs[1:], {"canary": clean, "baseline": clean}, {})
    assert not nobody.proceed and nobody.reasons[0] == "no canary installed the bundle"


def test_gate_agreement_counts_rollouts_where_both_gates_agree(tmp_path, signed, rollout, sim, keystore):
    from common.params import load_params
    from fleet.config import REPO_PARAMS
    from flows.field_logs import learning_params
    from flows.gate_agreement import gate_agreement

    cases = [("stuck", str(signed("v1.tar", 1)), str(signed("v2-bad.tar", 2, BAD_DETECTOR)))]
    learning = learning_params(load_params(REPO_PARAMS))
    keys = keystore.trusted_public_keys()
    res = gate_agreement(cases, [17], tmp_path / "agree", N_DEVICES, rollout, sim, learning, keys)
    assert [(r["case"], r["proceed"], r["reference_proceed"]) for r in res["rows"]] == [
        ("stuck", False, False)
    ]
    assert (res["rollouts"], res["agreed"], res["agreement"]) == (1, 1, 1.0)
