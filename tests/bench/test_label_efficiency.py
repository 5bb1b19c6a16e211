"""Label efficiency, paired significance and pool enrichment (bench.label_efficiency) on curves and
seeds whose answers are known by hand."""

import pytest

from bench.label_efficiency import (
    ceiling_share,
    label_efficiency,
    labels_to_reach,
    paired_gain,
    pool_enrichment,
    proof,
    strategy_curve,
)


def test_labels_to_reach_interpolates_between_the_turns_around_the_target():
    curve = [(0.0, 10.0), (100.0, 6.0), (200.0, 2.0)]
    assert labels_to_reach(curve, 10.0) == 0.0  # the seed model already is there
    assert labels_to_reach(curve, 6.0) == 100.0
    assert labels_to_reach(curve, 4.0) == pytest.approx(150.0)
    assert labels_to_reach(curve, 1.0) is None  # never reached
    # a turn that got worse does not count: the line runs from the best point so far
    assert labels_to_reach([(0.0, 10.0), (100.0, 12.0), (200.0, 4.0)], 7.0) == pytest.approx(100.0)


def test_label_efficiency_is_the_ratio_of_labels_to_the_flywheels_rate():
    curves = {
        "flywheel": strategy_curve(10.0, [(100, 5.0), (200, 2.0)]),
        "random": strategy_curve(10.0, [(100, 8.0), (200, 6.0), (300, 2.0)]),
        "uncertainty": strategy_curve(10.0, [(100, 9.0), (200, 8.0)]),
        "self_training": strategy_curve(10.0, [(0, 2.0)]),
    }
    e = label_efficiency(curves, "flywheel", "random")
    assert e["target_rate"] == 2.0 and e["reference_labels"] == 200.0 and e["other_labels"] == 300.0
    assert e["ratio"] == pytest.approx(1.5) and e["other_reached"]
    e = label_efficiency(curves, "flywheel", "uncertainty")  # never got there: a lower bound only
    assert e["ratio"] is None and not e["other_reached"] and e["ratio_at_least"] == pytest.approx(1.0)
    e = label_efficiency(curves, "flywheel", "self_training")  # free labels reach it: ratio 0
    assert e["other_labels"] == 0.0 and e["ratio"] == 0.0
    flat = {"flywheel": strategy_curve(10.0, [(100, 11.0)]), "random": strategy_curve(10.0, [(100, 9.0)])}
    assert label_efficiency(flat)["ratio"] is None and "never got below" in label_efficiency(flat)["reason"]


def test_paired_gain_is_larger_than_the_spread_only_when_every_seed_agrees():
    clear = paired_gain(
        {0: 10.0, 1: 11.0, 2: 9.0, 3: 10.5, 4: 10.0}, {0: 2.0, 1: 2.5, 2: 1.5, 3: 2.0, 4: 2.2}
    )
    assert clear["n_seeds"] == 5 and clear["larger_than_spread"] and clear["p_value"] < 1e-4
    noisy = paired_gain({0: 10.0, 1: 2.0, 2: 6.0}, {0: 3.0, 1: 8.0, 2: 5.0})
    assert not noisy["larger_than_spread"] and noisy["p_value"] > 0.05
    same = paired_gain({0: 3.0, 1: 4.0}, {0: 3.0, 1: 4.0})
    assert same["mean_gain"] == 0.0 and not same["larger_than_spread"]
    worse = paired_gain({0: 1.0, 1: 1.0, 2: 1.0}, {0: 2.0, 1: 2.1, 2: 2.2})
    assert worse["mean_gain"] < 0 and not worse["larger_than_spread"]
    one = paired_gain({0: 10.0}, {0: 1.0})
    assert not one["larger_than_spread"] and one["reason"] == "needs at least two seeds"
    assert paired_gain({0: 1.0, 1: None}, {0: 0.5, 1: 0.2})["n_seeds"] == 1  # a degenerate seed is dropped


def test_pool_enrichment_and_ceiling_share():
    e = pool_enrichment(picked=100, rare_picked=40, pool=10000, rare_in_pool=500)
    assert e["labelled_rare_share"] == 0.4 and e["pool_rare_share"] == 0.05 and e["enrichment"] == 8.0
    assert pool_enrichment(0, 0, 100, 0)["enrichment"] is None
    assert ceiling_share(10.0, 4.0, 2.0) == pytest.approx(0.75)
    assert ceiling_share(10.0, 4.0, 12.0) is None  # the ceiling did not improve: no share to take


def _agg(rate, labels=None):
    stat = {"mean": rate}
    out = {"false_triggers_per_empty_hour": stat, "fa_at_seed_recall": {"mean": None}}
    if labels is not None:
        out["labels_spent"] = {"mean": labels}
    return out


def test_proof_reads_the_aggregates_and_the_rows():
    seed = _agg(10.0)
    strategies = {
        "flywheel": {"1": _agg(4.0, 50), "2": _agg(2.0, 100)},
        "random": {"1": _agg(8.0, 50), "2": _agg(6.0, 100)},
    }
    rows = [
        {
            "seed": s,
            "strategy": name,
            "turn": 2,
            "false_triggers_per_empty_hour": rate,
            "picked": 50,
            "rare_picked": rare,
            "pool": 1000,
            "pool_rare": 100,
        }
        for s in (0, 1)
        for name, rate, rare in (("flywheel", 2.0 + 0.1 * s, 25), ("random", 6.0 + 0.2 * s, 5))
    ]
    p = proof(seed, strategies, rows, 2, _agg(1.0, 2000))
    assert p["rate"] == "false_triggers_per_empty_hour"  # no curve point at the seed recall anywhere
    assert p["label_efficiency"]["random"]["ratio_at_least"] == pytest.approx(1.0)  # random never got to 2
    assert p["significance"]["random"]["larger_than_spread"]
    assert p["vs_ceiling"] == {"reduction_share": pytest.approx(8 / 9), "label_share": pytest.approx(0.05)}
    assert p["labelled_rare_share"]["flywheel"]["enrichment"] == pytest.approx(5.0)
    assert p["labelled_rare_share"]["random"]["enrichment"] == pytest.approx(1.0)
