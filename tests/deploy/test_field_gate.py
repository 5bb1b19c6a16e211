"""The truth-free canary gate: from hand-written logs alone it refuses a bundle that doubles routine
friction, and lets through one whose logs look like the baseline's."""

import pytest
from dialogue_testkit import Script, learning

from deploy.rollout import FIELD_COUNTS, canary_gate, field_rates
from flows.field_logs import field_counts

DEVICES = {"dev-0001": 24.0, "dev-0002": 24.0}


def day_of_logs(raw, lights_back_on_per_device: int, stuck_on: bool = False):
    s = Script()
    for dev in DEVICES:
        t = 0.0
        for k in range(12):  # a person walks in, talks, sits still; the lights go off on them sometimes
            t = k * 7200.0
            s.motion(dev, t)
            s.turn(dev, t + 60, "what's the weather like", response="Cloudy.")
            if not stuck_on:
                s.no_motion(dev, t + 1800)
            if k < lights_back_on_per_device:
                s.turn(dev, t + 1810, "turn the lights back on")
                if not stuck_on:
                    s.no_motion(dev, t + 3600)
    return field_counts(s.write(raw, DEVICES), learning())


def test_gate_refuses_doubled_routine_friction_from_logs_alone(tmp_path):
    baseline = day_of_logs(tmp_path / "base", 3)
    canary = day_of_logs(tmp_path / "new", 6)
    assert baseline["device_hours"] == canary["device_hours"] == pytest.approx(48.0)
    assert (baseline["routine_friction"], canary["routine_friction"]) == (6, 12)
    assert (baseline["presence_failures"], canary["presence_failures"]) == (6, 12)
    assert field_rates(canary)["routine_friction_per_device_day"] == pytest.approx(6.0)
    decision = canary_gate(canary, baseline)
    assert not decision.proceed
    assert any(r.startswith("routine friction 6.000 above the limit 5.000") for r in decision.reasons)
    assert decision.numbers["baseline_routine_friction_per_device_day"] == pytest.approx(3.0)
    same = canary_gate(day_of_logs(tmp_path / "again", 3), baseline)
    assert same.proceed and same.reasons == ["canaries within limits"]


def test_gate_refuses_a_detector_that_never_lets_the_lights_go_off(tmp_path):
    baseline = day_of_logs(tmp_path / "base", 0)
    stuck = day_of_logs(tmp_path / "stuck", 0, stuck_on=True)
    assert baseline["routine_friction"] == stuck["routine_friction"] == 0
    decision = canary_gate(stuck, baseline)
    assert not decision.proceed and decision.reasons[0].startswith("lights-on share")
    assert field_rates(stuck)["lights_on_share"] > 0.9 > 0.3 > field_rates(baseline)["lights_on_share"]


def test_gate_needs_logs_and_complete_counts():
    zero = dict.fromkeys(FIELD_COUNTS, 0)
    some = {**zero, "device_hours": 5.0}
    assert canary_gate(zero, some).reasons == ["no canary logs (0 h observed)"]
    assert not canary_gate(some, some, {"min_canary_hours": 10.0}).proceed
    with pytest.raises(ValueError, match="routine_friction"):
        canary_gate({"device_hours": 1.0}, some)
