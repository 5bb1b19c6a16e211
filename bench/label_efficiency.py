"""The flywheel's proof in figures: labels needed to reach a false-trigger rate, the ratio random /
flywheel, whether a gain is larger than the seed-to-seed spread, and rare-event enrichment of the
labelled pool. Pure functions of the experiment's rows (bench/experiment.py); the report
(bench/experiment_report.py) and its tests call them and nothing else defines these figures.

A strategy's curve is its (paid labels, false triggers per empty hour) after each turn, with the seed
model at (0, its rate): every strategy starts from the same seed model and the seed set's labels are
not paid. The rate read is the one at the seed model's entry recall (fa_at_seed_recall) so strategies
are compared at equal recall, when every model has a curve point there; otherwise every figure reads
each model's rate at its own thresholds (proof's "rate" says which), never a mix of the two.
"""

from __future__ import annotations

import math

import numpy as np

Curve = list[tuple[float, float]]  # (paid labels, false triggers per empty hour), labels ascending


def labels_to_reach(curve: Curve, target: float) -> float | None:
    """Paid labels a curve needs to reach `target` false triggers per empty hour: linear between the
    last point above the target and the first at or below it (the curve's best rate so far, so a turn
    that got worse does not undo one that reached it). None: never reached on this curve."""
    prev = None  # the best point so far, above the target
    for labels, rate in sorted(curve):
        if rate <= target:
            if prev is None:  # the curve starts at or below the target
                return float(labels)
            (x0, y0), (x1, y1) = prev, (labels, rate)
            return float(x0 + (x1 - x0) * (y0 - target) / (y0 - y1))
        if prev is None or rate < prev[1]:
            prev = (labels, rate)
    return None


def strategy_curve(seed_rate: float | None, turns: list[tuple[float, float | None]]) -> Curve:
    """(labels, rate) of the seed model then each turn (None rates dropped)."""
    points = [(0.0, seed_rate)] + [(float(lab), rate) for lab, rate in turns]
    return [(lab, float(rate)) for lab, rate in points if rate is not None]


def label_efficiency(curves: dict[str, Curve], reference: str = "flywheel", other: str = "random") -> dict:
    """Labels `other` needs for the best rate `reference` reached over its turns, over `reference`'s own.

    ratio: other's labels / reference's labels; when `other` never reached that rate, `other_reached`
    is False and `ratio_at_least` is its last labels over the reference's (the ratio is at least that).
    No ratio when the reference did not improve on the seed model (nothing was bought)."""
    ref, oth = curves.get(reference) or [], curves.get(other) or []
    out = {"reference": reference, "other": other, "target_rate": None, "reference_labels": None,
           "other_labels": None, "other_reached": None, "ratio": None, "ratio_at_least": None}  # fmt: skip
    if len(ref) < 2 or not oth:
        out["reason"] = "no curve"
        return out
    target = min(rate for _, rate in ref[1:])
    out["target_rate"] = target
    if target >= ref[0][1]:
        out["reason"] = f"{reference} never got below the seed model's rate"
        return out
    ref_labels = labels_to_reach(ref, target)
    other_labels = labels_to_reach(oth, target)
    out.update(reference_labels=ref_labels, other_labels=other_labels, other_reached=other_labels is not None)
    if not ref_labels:
        out["reason"] = f"{reference} reached the rate with no label"
        return out
    if other_labels is not None:
        out["ratio"] = out["ratio_at_least"] = other_labels / ref_labels
    else:
        out["ratio_at_least"] = max(lab for lab, _ in oth) / ref_labels
    return out


def paired_gain(
    baseline: dict[int, float | None], ours: dict[int, float | None], alpha: float = 0.05
) -> dict:
    """Is `ours` lower than `baseline` by more than the seed-to-seed spread? Paired by experiment seed
    (both strategies of one seed share its seed model and pools): d = baseline - ours per seed, a
    two-sided paired t-test on d. larger_than_spread: at least two seeds, mean d > 0 and p < alpha."""
    seeds = sorted(s for s in set(baseline) & set(ours) if baseline[s] is not None and ours[s] is not None)
    d = np.array([baseline[s] - ours[s] for s in seeds], np.float64)
    out = {"n_seeds": len(seeds), "mean_gain": float(d.mean()) if d.size else None, "std_gain": None,
           "t": None, "p_value": None, "larger_than_spread": False}  # fmt: skip
    if d.size < 2:
        out["reason"] = "needs at least two seeds"
        return out
    from scipy import stats

    sd = float(d.std(ddof=1))
    out["std_gain"] = sd
    if sd == 0.0:
        out["p_value"] = 0.0 if d.mean() != 0 else 1.0
    else:
        out["t"] = float(d.mean() / (sd / math.sqrt(d.size)))
        out["p_value"] = float(2.0 * stats.t.sf(abs(out["t"]), d.size - 1))
    out["larger_than_spread"] = bool(d.mean() > 0 and out["p_value"] < alpha)
    return out


def pool_enrichment(picked: int, rare_picked: int, pool: int, rare_in_pool: int) -> dict:
    """Share of rare events among the labelled windows against the pool's base rate, and their ratio."""
    share = rare_picked / picked if picked else None
    base = rare_in_pool / pool if pool else None
    return {
        "labelled": picked,
        "labelled_rare": rare_picked,
        "labelled_rare_share": share,
        "pool": pool,
        "pool_rare": rare_in_pool,
        "pool_rare_share": base,
        "enrichment": share / base if share is not None and base else None,
    }


def ceiling_share(seed_rate: float | None, rate: float | None, ceiling_rate: float | None) -> float | None:
    """Share of the ceiling's reduction (seed - ceiling) a strategy's rate achieved (seed - rate)."""
    if seed_rate is None or rate is None or ceiling_rate is None or seed_rate <= ceiling_rate:
        return None
    return (seed_rate - rate) / (seed_rate - ceiling_rate)


RATE_KEYS = ("fa_at_seed_recall", "false_triggers_per_empty_hour")


def _mean(agg: dict | None, key: str) -> float | None:
    return ((agg or {}).get(key) or {}).get("mean")


def proof(
    seed: dict, strategies: dict[str, dict], rows: list[dict], turns: int, ceiling: dict | None
) -> dict:
    """The experiment's label-efficiency figures from its aggregates (experiment_report._aggregate):
    each strategy's curve, labels to the flywheel's rate and the ratios against every other strategy,
    the paired significance of the flywheel's gain over random and self-training at the last turn, the
    share of the ceiling's reduction it reached with what share of its labels, and the rare-event share
    of each strategy's picks over all turns and seeds against the pools it mined (rows' picked,
    rare_picked, pool, pool_rare)."""
    aggs = [seed] + [a for by_turn in strategies.values() for a in by_turn.values()]
    key = next((k for k in RATE_KEYS if all(_mean(a, k) is not None for a in aggs)), RATE_KEYS[1])
    curves = {
        name: strategy_curve(
            _mean(seed, key), [(_mean(a, "labels_spent") or 0.0, _mean(a, key)) for a in by_turn.values()]
        )
        for name, by_turn in strategies.items()
    }
    efficiency = {
        other: label_efficiency(curves, "flywheel", other) for other in strategies if other != "flywheel"
    }
    last = {
        name: {
            r["seed"]: r.get(key)
            for r in rows
            if r["strategy"] == name and r["turn"] == turns and not r.get("degenerate")
        }
        for name in strategies
    }
    significance = {
        other: paired_gain(last[other], last["flywheel"])
        for other in ("random", "self_training")
        if other in last and "flywheel" in last
    }
    fly_last = strategies.get("flywheel", {}).get(str(turns))
    ceiling_rate = _mean(ceiling, key)
    vs_ceiling = {
        "reduction_share": ceiling_share(_mean(seed, key), _mean(fly_last, key), ceiling_rate),
        "label_share": (
            _mean(fly_last, "labels_spent") / _mean(ceiling, "labels_spent")
            if fly_last and ceiling and _mean(ceiling, "labels_spent")
            else None
        ),
    }
    enrichment = {}
    for name in strategies:
        mined = [r for r in rows if r["strategy"] == name and "picked" in r]
        if mined:
            enrichment[name] = pool_enrichment(
                *(sum(r[k] for r in mined) for k in ("picked", "rare_picked", "pool", "pool_rare"))
            )
    return {
        "rate": key,
        "curves": curves,
        "label_efficiency": efficiency,
        "significance": significance,
        "vs_ceiling": vs_ceiling,
        "labelled_rare_share": enrichment,
    }
