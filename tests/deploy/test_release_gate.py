"""Release gate (deploy.release_gate): which model ships, and why, from the turn's eval figures."""

from __future__ import annotations

import dataclasses

import pytest
from config_testkit import repo_params

from deploy.release_gate import ModelEvidence, ReleaseGateError, ReleaseRules, decide_release

SECTION = repo_params()["package"]["release"]  # max_recall_drop 0.02, ratios 1.0
RULES = ReleaseRules.from_dict(SECTION)


def evidence(name, fa=30.0, major=0.97, absences=0.5, int8_passed=True) -> ModelEvidence:
    return ModelEvidence(
        name,
        {
            "false_triggers_per_empty_hour": fa,
            "entry_recall": major,
            "false_absences_per_occupied_hour": absences,
        },
        int8_passed,
    )


def check(decision: dict, name: str) -> dict:
    return next(c for c in decision["checks"] if c["check"] == name)


def test_candidate_that_is_no_worse_ships():
    d = decide_release(
        evidence("retrained", fa=20.0, major=0.96), evidence("seed", fa=30.0, major=0.97), RULES
    )
    assert d["shipped"] == "retrained"
    assert all(c["passed"] for c in d["checks"])
    assert check(d, "entry_recall")["limit"] == pytest.approx(0.95)


def test_recall_drop_beyond_the_tolerance_keeps_the_incumbent():
    d = decide_release(
        evidence("retrained", fa=10.0, major=0.939), evidence("seed", fa=34.0, major=0.971), RULES
    )
    assert d["shipped"] == "seed"
    assert check(d, "entry_recall")["passed"] is False
    assert check(d, "false_triggers_per_empty_hour")["passed"] is True
    assert "entry recall 0.939" in d["reason"] and "floor 0.951" in d["reason"]


def test_recall_exactly_at_the_floor_passes():
    d = decide_release(evidence("retrained", major=0.95), evidence("seed", major=0.97), RULES)
    assert d["shipped"] == "retrained"


def test_more_false_alarms_keep_the_incumbent_and_the_ratio_relaxes_it():
    cand, inc = evidence("retrained", fa=33.0), evidence("seed", fa=30.0)
    assert decide_release(cand, inc, RULES)["shipped"] == "seed"
    assert decide_release(cand, inc, dataclasses.replace(RULES, max_fa_ratio=1.2))["shipped"] == "retrained"


def test_failed_int8_gate_never_ships():
    d = decide_release(evidence("retrained", fa=1.0, int8_passed=False), evidence("seed"), RULES)
    assert d["shipped"] == "seed" and "int8 gate failed" in d["reason"]
    with pytest.raises(ReleaseGateError, match="neither model may ship"):
        decide_release(evidence("retrained", int8_passed=False), evidence("seed", int8_passed=False), RULES)


def test_a_figure_the_batch_cannot_measure_does_not_decide():
    # an eval batch with nobody ever in the room has no occupied hours: false absences are not measured
    d = decide_release(evidence("retrained", absences=None), evidence("seed", absences=None), RULES)
    assert d["shipped"] == "retrained"
    assert check(d, "false_absences_per_occupied_hour")["passed"] is None
    assert "not measured on the eval batch: false_absences_per_occupied_hour" in d["reason"]


def test_more_false_absences_keep_the_incumbent():
    d = decide_release(evidence("retrained", absences=0.9), evidence("seed", absences=0.5), RULES)
    assert d["shipped"] == "seed" and "false absences per occupied hour 0.90" in d["reason"]


def test_disabled_gate_ships_the_candidate_unless_its_int8_failed():
    off = dataclasses.replace(RULES, enabled=False)
    assert decide_release(evidence("retrained", major=0.5), evidence("seed"), off)["shipped"] == "retrained"
    with pytest.raises(ReleaseGateError, match="int8 gate failed"):
        decide_release(evidence("retrained", int8_passed=False), evidence("seed"), off)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"max_recal_drop": 0.1}, "package.release: unknown key .max_recal_drop."),
        ({"max_recall_drop": 1.5}, "max_recall_drop"),
        ({"max_fa_ratio": 0.0}, "max_fa_ratio"),
    ],
)
def test_bad_rules_are_refused(raw, message):
    with pytest.raises(ValueError, match=message):
        ReleaseRules.from_dict({**SECTION, **raw})


def test_rules_come_whole_from_params():
    assert (RULES.enabled, RULES.max_recall_drop, RULES.max_fa_ratio) == (True, 0.02, 1.0)
    assert ReleaseRules.from_dict({**SECTION, "enabled": False}).enabled is False
    with pytest.raises(ValueError, match=r"package\.release: missing key 'max_false_absence_ratio'"):
        ReleaseRules.from_dict({k: v for k, v in SECTION.items() if k != "max_false_absence_ratio"})
