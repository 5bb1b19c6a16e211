"""Summarise the flywheel experiment (mean and spread over seeds, target checks) and write its report.

Writes, atomically, under the output folder: results.json, results.md (the comparison table) and
plots/{fa_by_event_type,fa_by_type_per_turn,recall_vs_turn,fa_vs_labels,fa_vs_recall,fa_entries}.png.

Every figure is training.metrics' (docs/evaluation.md): false triggers per empty hour (FA/h here),
entry recall, false absences per occupied hour. Each model is run at the thresholds its training chose,
so two models differ in entry recall as well as in false triggers. Rows that carry a detection-error
trade-off (bench.experiment.evaluate_model) are also compared at equal recall: "FA/h at seed recall"
is the fewest false triggers per empty hour on the model's curve among the strict thresholds that keep
at least the seed model's mean entry recall and at most its false absences per occupied hour.

False triggers are also split by how the detector entered "present": on a strict positive (major
motion from an empty room) and lenient re-entries (in the occupied window, after presence lapsed).
Labels act mostly on the first; the second is set by the state machine as much as by the model.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from bench import label_efficiency
from common.io import atomic_write_bytes, atomic_write_json, atomic_write_text

METRIC_KEYS = (  # training.metrics figures of each row (evaluation_row)
    "false_triggers_per_empty_hour",
    "entry_recall",
    "false_absences_per_occupied_hour",
    "entry_latency_p95_s",
    # the false triggers split by how the detector entered "present", per empty hour
    "false_triggers_per_empty_hour_strict",
    "false_triggers_per_empty_hour_lenient",
    "empty_present_fraction",
)


HOUSEHOLD_KEYS = (  # the int8 model on household days (training.metrics)
    "false_triggers_per_device_day",
    "entry_recall",
    "false_absences_per_occupied_hour",
    "device_days",
)


def _stats(values: list) -> dict:
    vals = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if vals.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {
        "mean": float(vals.mean()),
        "std": float(vals.std(ddof=1)) if vals.size > 1 else 0.0,
        "min": float(vals.min()),
        "max": float(vals.max()),
        "n": int(vals.size),
    }


def fa_at_recall(curve: list[dict] | None, recall: float | None, absences: float | None) -> float | None:
    """Fewest false triggers per empty hour on a curve among points with entry recall >= recall and false
    absences per occupied hour <= absences (None: not compared)."""
    if not curve or recall is None:
        return None
    ok = [
        p["false_triggers_per_empty_hour"]
        for p in curve
        if p["false_triggers_per_empty_hour"] is not None
        and p["entry_recall"] is not None
        and p["entry_recall"] >= recall - 1e-12
        and (
            absences is None
            or p.get("false_absences_per_occupied_hour") is None
            or p["false_absences_per_occupied_hour"] <= absences + 1e-12
        )
    ]
    return min(ok) if ok else None


def _with_matched_fa(rows: list[dict], recall: float | None, absences: float | None) -> list[dict]:
    return [{**r, "fa_at_seed_recall": fa_at_recall(r.get("curve"), recall, absences)} for r in rows]


def _aggregate(all_rows: list[dict]) -> dict:
    """Mean and spread over seeds of the rows whose detector is not degenerate (never fires, always
    present: training.metrics.degenerate_reason); those are counted under "degenerate", never ranked."""
    rows = [r for r in all_rows if not r.get("degenerate")]
    degenerate: dict[str, int] = {}
    for r in all_rows:
        if r.get("degenerate"):
            degenerate[r["degenerate"]] = degenerate.get(r["degenerate"], 0) + 1
    out = {k: _stats([r.get(k) for r in rows]) for k in METRIC_KEYS}
    out["degenerate"] = degenerate
    out["n_rows"] = len(all_rows)
    out["fa_at_seed_recall"] = _stats([r.get("fa_at_seed_recall") for r in rows])
    out["household"] = {k: _stats([(r.get("household") or {}).get(k) for r in rows]) for k in HOUSEHOLD_KEYS}
    out["labels_spent"] = (
        _stats([r["labels_spent"] for r in all_rows]) if "labels_spent" in all_rows[0] else None
    )
    types = sorted({t for r in rows for t in r["by_event_type"]})
    out["by_event_type"] = {t: _stats([r["by_event_type"].get(t) for r in rows])["mean"] for t in types}
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return None if b == 0 else a / b  # b == 0: no false alarms left, judged by _beats below


def _beats(ratio: float | None, fa: float | None, other: float | None, factor: float) -> bool:
    if fa == 0 and other is not None and other > 0:
        return True  # no false alarm left at all: any finite reduction factor is met
    return ratio is not None and ratio >= float(factor)


def proof_checks(targets: dict | None, proof: dict | None, rare: dict | None) -> dict:
    """The label-efficiency targets (experiment.proof_targets) against bench.label_efficiency.proof: a
    ratio known only as a lower bound (random never reached the flywheel's rate) is met when the bound is."""
    if not targets or not proof:
        return {}
    e = proof["label_efficiency"].get("random") or {}
    ratio = e.get("ratio") if e.get("ratio") is not None else e.get("ratio_at_least")
    c = proof["vs_ceiling"]
    vs_sample = (rare or {}).get("enrichment_vs_sample")
    return {
        "label_efficiency_vs_random": ratio,
        "label_efficiency_vs_random_is_bound": e.get("ratio") is None and ratio is not None,
        "met_label_efficiency_vs_random": ratio is not None
        and ratio >= float(targets["label_efficiency_vs_random"]),
        "ceiling_reduction_share": c["reduction_share"],
        "ceiling_label_share": c["label_share"],
        "met_ceiling": c["reduction_share"] is not None
        and c["label_share"] is not None
        and c["reduction_share"] >= float(targets["ceiling_reduction_share"])
        and c["label_share"] <= float(targets["ceiling_label_share"]),
        "rare_share_vs_sample": vs_sample,
        "met_rare_share_vs_sample": vs_sample is not None
        and vs_sample >= float(targets["rare_share_vs_sample"]),
    }


def check_targets(
    ex: dict, seed: dict, summary: dict, turns: int, proof: dict | None = None, rare: dict | None = None
) -> dict:
    """The issue's targets after the last turn, for the flywheel strategy (mean over seeds), with the
    label-efficiency targets when `proof` (bench.label_efficiency.proof) is given."""
    t = ex["targets"]
    last = summary.get("flywheel", {}).get(str(turns))
    if last is None:
        return {"evaluated": False, "reason": "flywheel strategy not run"}
    for name, agg in (("the seed model", seed), ("the flywheel's last turn", last)):
        if agg.get("degenerate") and sum(agg["degenerate"].values()) == agg["n_rows"]:
            why = ", ".join(sorted(agg["degenerate"]))
            return {"evaluated": False, "reason": f"every seed of {name} is degenerate ({why})"}
    fa = last["false_triggers_per_empty_hour"]["mean"]
    random_last = summary.get("random", {}).get(str(turns))
    vs_seed = _ratio(seed["false_triggers_per_empty_hour"]["mean"], fa)
    vs_random = _ratio(random_last["false_triggers_per_empty_hour"]["mean"], fa) if random_last else None
    recall = last["entry_recall"]["mean"]
    absences, seed_absences = (
        last["false_absences_per_occupied_hour"]["mean"],
        seed["false_absences_per_occupied_hour"]["mean"],
    )
    checks = {
        "fa_reduction_vs_seed": vs_seed,
        "fa_reduction_vs_random": vs_random,
        "entry_recall": recall,
        "false_absences_per_occupied_hour": absences,
        "seed_false_absences_per_occupied_hour": seed_absences,
        "met_fa_vs_seed": _beats(
            vs_seed, fa, seed["false_triggers_per_empty_hour"]["mean"], t["fa_reduction_vs_seed"]
        ),
        "met_fa_vs_random": _beats(
            vs_random,
            fa,
            random_last["false_triggers_per_empty_hour"]["mean"] if random_last else None,
            t["fa_reduction_vs_random"],
        ),
        "met_entry_recall": recall is not None and recall >= float(t["entry_recall"]),
        "met_false_absences": absences is not None
        and seed_absences is not None
        and absences <= seed_absences * float(t["max_false_absence_ratio"]) + 1e-12,
    }
    self_last = summary.get("self_training", {}).get(str(turns))  # not a target: the free baseline
    checks["fa_reduction_vs_self_training"] = (
        _ratio(self_last["false_triggers_per_empty_hour"]["mean"], fa) if self_last else None
    )
    checks.update(proof_checks(ex.get("proof_targets"), proof, rare))
    checks["evaluated"] = True
    checks["all_met"] = all(v for k, v in checks.items() if k.startswith("met_"))
    # not a target of its own: the same reduction read at the seed model's recall (None without curves)
    matched = last.get("fa_at_seed_recall", {}).get("mean")
    checks["fa_reduction_vs_seed_at_seed_recall"] = _ratio(
        seed["false_triggers_per_empty_hour"]["mean"], matched
    )
    entries = last["false_triggers_per_empty_hour_strict"]["mean"]
    checks["entry_fa_reduction_vs_seed"] = _ratio(
        seed["false_triggers_per_empty_hour_strict"]["mean"], entries
    )
    checks["entry_fa_reduction_vs_random"] = (
        _ratio(random_last["false_triggers_per_empty_hour_strict"]["mean"], entries) if random_last else None
    )
    return checks


def summarise(
    ex: dict,
    turns: int,
    seeds: int,
    seed_rows: list[dict],
    rows: list[dict],
    cfar: dict,
    rare: dict | None,
    data: list[dict],
    ceiling_rows: list[dict] | None = None,
) -> dict:
    """results.json: aggregates per strategy and turn, the targets, and the label-efficiency proof
    (bench.label_efficiency.proof)."""
    recall = _stats([r["entry_recall"] for r in seed_rows])["mean"]
    absences = _stats([r["false_absences_per_occupied_hour"] for r in seed_rows])["mean"]
    seed_rows = _with_matched_fa(seed_rows, recall, absences)
    rows = _with_matched_fa(rows, recall, absences)
    ceiling_rows = _with_matched_fa(ceiling_rows or [], recall, absences)
    seed = _aggregate(seed_rows)
    summary: dict = {}
    for strategy in ex["strategies"]:
        summary[strategy] = {
            str(t): _aggregate([r for r in rows if r["strategy"] == strategy and r["turn"] == t])
            for t in range(1, turns + 1)
        }
    ceiling = _aggregate(ceiling_rows) if ceiling_rows else None
    evidence = label_efficiency.proof(seed, summary, rows, turns, ceiling)
    return {
        "config": {k: v for k, v in ex.items() if k != "quick"},
        "turns": turns,
        "seeds": seeds,
        "data": data,
        "seed_model": seed,
        "cfar": cfar,
        "strategies": summary,
        "every_window": ceiling,
        "every_window_rows": ceiling_rows,
        "seed_recall": {"entry_recall": recall, "false_absences_per_occupied_hour": absences},
        "rows": rows,
        "seed_rows": seed_rows,
        "targets": check_targets(ex, seed, summary, turns, evidence, rare),
        "rare_event": rare,
        "rare_event_enrichment": rare.get("enrichment") if rare else None,
        "proof": evidence,
    }


def _fmt(stat: dict | float | None, pct: bool = False) -> str:
    if isinstance(stat, dict):
        if stat["mean"] is None:
            return "–"
        scale = 100.0 if pct else 1.0
        spread = f" ± {stat['std'] * scale:.2f}" if stat["n"] > 1 else ""
        return f"{stat['mean'] * scale:.2f}{spread}"
    if stat is None:
        return "–"
    return f"{stat * (100.0 if pct else 1.0):.2f}"


def markdown_table(results: dict) -> str:
    lines = [
        f"# Flywheel experiment: {results['turns']} turns, {results['seeds']} seed(s)",
        "",
        "FA/h: false triggers per empty hour; false absences per occupied hour (docs/evaluation.md).",
        "",
        "| model | turn | paid labels | FA/h | entry recall % | false absences /h | entry latency p95 s "
        "| FA/h at seed recall | FA/h entries | FA/h re-entries | empty time present |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def row(name: str, turn, labels: str, a: dict, matched: bool = True) -> str:
        flagged = a.get("degenerate")  # degenerate seeds are flagged, not ranked (training.metrics)
        if isinstance(flagged, str):  # one detector (CFAR)
            name = f"{name} (**degenerate**: {flagged})"
        elif flagged:
            flags = ", ".join(f"{why} in {n} of {a['n_rows']} seeds" for why, n in sorted(flagged.items()))
            name = f"{name} (**degenerate**: {flags})"
        fa_matched = _fmt(a.get("fa_at_seed_recall")) if matched and a.get("fa_at_seed_recall") else "–"
        cells = [
            name,
            str(turn),
            labels,
            _fmt(a["false_triggers_per_empty_hour"]),
            _fmt(a["entry_recall"], True),
            _fmt(a["false_absences_per_occupied_hour"]),
            _fmt(a.get("entry_latency_p95_s")),
            fa_matched,
            _fmt(a.get("false_triggers_per_empty_hour_strict")),
            _fmt(a.get("false_triggers_per_empty_hour_lenient")),
            _fmt(a.get("empty_present_fraction")),
        ]
        return "| " + " | ".join(cells) + " |"

    lines.append(row("seed model", 0, "0", results["seed_model"]))
    lines.append(row("CFAR", "–", "–", results["cfar"], matched=False))
    for strategy, by_turn in results["strategies"].items():
        for turn, a in by_turn.items():
            lines.append(row(strategy, turn, _fmt(a["labels_spent"]), a))
    ceiling = results.get("every_window")
    if ceiling:
        lines.append(
            row("every field window labelled", results["turns"], _fmt(ceiling["labels_spent"]), ceiling)
        )
    t = results["targets"]
    if t.get("evaluated"):
        lines += [
            "",
            "## Targets (flywheel, last turn, mean over seeds)",
            "",
            f"- FA/h reduction vs seed: {_fmt(t['fa_reduction_vs_seed'])}× (met: {t['met_fa_vs_seed']})",
            f"- FA/h reduction vs random: {_fmt(t['fa_reduction_vs_random'])}× "
            f"(met: {t['met_fa_vs_random']})",
            f"- entry recall: {_fmt(t['entry_recall'], True)} % (met: {t['met_entry_recall']})",
            f"- false absences per occupied hour: {_fmt(t['false_absences_per_occupied_hour'])} against "
            f"the seed model's {_fmt(t['seed_false_absences_per_occupied_hour'])} "
            f"(met: {t['met_false_absences']})",
        ]
        if "met_label_efficiency_vs_random" in t:
            bound = "at least " if t["label_efficiency_vs_random_is_bound"] else ""
            lines += [
                f"- label efficiency vs random: {bound}{_fmt(t['label_efficiency_vs_random'])}× "
                f"(met: {t['met_label_efficiency_vs_random']})",
                f"- share of the every-window reduction: {_fmt(t['ceiling_reduction_share'], True)} % with "
                f"{_fmt(t['ceiling_label_share'], True)} % of its labels (met: {t['met_ceiling']})",
                f"- rare share of trigger uploads vs the random sample: {_fmt(t['rare_share_vs_sample'])}× "
                f"(met: {t['met_rare_share_vs_sample']})",
            ]
        if t.get("fa_reduction_vs_self_training") is not None:
            lines.append(
                "- FA/h reduction vs self-training (no paid labels): "
                f"{_fmt(t['fa_reduction_vs_self_training'])}×"
            )
        if t.get("entry_fa_reduction_vs_seed") is not None:
            lines.append(
                f"- entries only (strict onsets): FA/h {_fmt(t['entry_fa_reduction_vs_seed'])}× lower than "
                f"the seed model, {_fmt(t.get('entry_fa_reduction_vs_random'))}× lower than random"
            )
        if t.get("fa_reduction_vs_seed_at_seed_recall") is not None:
            lines.append(
                f"- at the seed model's recall: FA/h {_fmt(t['fa_reduction_vs_seed_at_seed_recall'])}× "
                "lower than the seed model at its own thresholds"
            )
    lines += proof_lines(results.get("proof"), results["turns"])
    if results.get("rare_event") and "factory" in results["rare_event"]:
        r = results["rare_event"]
        lines += [
            "",
            "## Rare-event trigger",
            "",
            f"- rare share of uploads, factory: {_fmt(r['factory']['rare_share'], True)} % "
            f"({r['factory']['rare_captures']}/{r['factory']['captures']})",
            f"- rare share of uploads, with trigger: {_fmt(r['rare_trigger']['rare_share'], True)} % "
            f"({r['rare_trigger']['rare_captures']}/{r['rare_trigger']['captures']})",
            f"- enrichment: {_fmt(r['enrichment'])}× (all uploads); the trigger's own uploads are "
            f"{_fmt(r.get('trigger_rare_share'), True)} % rare against "
            f"{_fmt(r.get('sample_rare_share'), True)} % for the random sample: "
            f"{_fmt(r.get('enrichment_vs_sample'))}×; rare captures uploaded: "
            f"{_fmt(r.get('rare_captures_ratio'))}× as many",
        ]
    return "\n".join(lines) + "\n"


def proof_lines(proof: dict | None, turns: int) -> list[str]:
    """results.md's label-efficiency section, from results["proof"] (bench.label_efficiency.proof)."""
    if not proof:
        return []
    rate = "FA/h at the seed model's recall" if proof["rate"] == "fa_at_seed_recall" else "FA/h"
    lines = ["", f"## Label efficiency ({rate}; curves: the seed model, then each turn)", ""]
    for other, e in proof["label_efficiency"].items():
        if e.get("reason"):
            lines.append(f"- {other}: no ratio ({e['reason']})")
        elif e["other_reached"]:
            lines.append(
                f"- flywheel's best rate {_fmt(e['target_rate'])} after {_fmt(e['reference_labels'])} paid "
                f"labels; {other} needs {_fmt(e['other_labels'])}: {_fmt(e['ratio'])}× the labels"
            )
        else:
            lines.append(
                f"- flywheel's best rate {_fmt(e['target_rate'])} after {_fmt(e['reference_labels'])} paid "
                f"labels; {other} never reached it: at least {_fmt(e['ratio_at_least'])}× the labels"
            )
    for other, g in proof["significance"].items():
        if g.get("reason"):
            lines.append(f"- gain over {other} at turn {turns}: not tested ({g['reason']})")
            continue
        verdict = "larger" if g["larger_than_spread"] else "not larger"
        lines.append(
            f"- gain over {other} at turn {turns}: {_fmt(g['mean_gain'])} ± {_fmt(g['std_gain'])} FA/h "
            f"over {g['n_seeds']} seeds (paired t-test p = {_fmt(g['p_value'])}): {verdict} than the "
            "seed-to-seed spread"
        )
    c = proof["vs_ceiling"]
    if c["reduction_share"] is not None:
        lines.append(
            f"- against every window labelled: {_fmt(c['reduction_share'], True)} % of its reduction with "
            f"{_fmt(c['label_share'], True)} % of its labels"
        )
    for name, e in proof["labelled_rare_share"].items():
        if e["labelled_rare_share"] is not None:
            share, base = _fmt(e["labelled_rare_share"], True), _fmt(e["pool_rare_share"], True)
            lines.append(
                f"- rare events among {name}'s picks over all turns: {share} % against {base} % of the "
                f"uploaded pools ({_fmt(e['enrichment'])}×)"
            )
    return lines


def _save(fig, path: Path) -> Path:
    """Write the figure as a PNG atomically, close it, return the path."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    plt.close(fig)
    return path


def write_plots(results: dict, plots_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compared = _compared_models(results)
    models = {"seed": compared.pop("seed")["by_event_type"], "cfar": results["cfar"]["by_event_type"]}
    models.update({name: agg["by_event_type"] for name, agg in compared.items()})
    types = sorted({t for v in models.values() for t in v})
    written = []

    fig, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / max(1, len(models))
    for i, (name, by_type) in enumerate(models.items()):
        vals = [by_type.get(t) or 0.0 for t in types]
        ax.bar(np.arange(len(types)) + i * width, vals, width, label=name)
    ax.set_xticks(np.arange(len(types)) + 0.4 - width / 2, types, rotation=45, ha="right")
    ax.set_ylabel("false triggers per nuisance-hour (1/h)")
    ax.set_yscale("symlog", linthresh=0.1)
    ax.legend(fontsize=8)
    ax.set_title("False triggers per hour of each nuisance in an empty room")
    written.append(_save(fig, plots_dir / "fa_by_event_type.png"))

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("entry_recall", "false_absences_per_occupied_hour"), strict=True):
        for strategy, by_turn in results["strategies"].items():
            xs = [0] + [int(t) for t in by_turn]
            ys = [results["seed_model"][key]["mean"]] + [a[key]["mean"] for a in by_turn.values()]
            ax.plot(xs, [y if y is not None else np.nan for y in ys], marker="o", label=strategy)
        if results["cfar"][key] is not None:
            ax.axhline(results["cfar"][key], color="grey", ls="--", label="CFAR")
        ax.set_xlabel("turn")
        ax.set_title(key)
        ax.legend(fontsize=8)
    written.append(_save(fig, plots_dir / "recall_vs_turn.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for strategy, by_turn in results["strategies"].items():
        xs = [0] + [a["labels_spent"]["mean"] for a in by_turn.values()]
        stats = [results["seed_model"]["false_triggers_per_empty_hour"]] + [
            a["false_triggers_per_empty_hour"] for a in by_turn.values()
        ]
        ys = [st["mean"] if st["mean"] is not None else np.nan for st in stats]
        spread = [st["std"] if st["std"] is not None else 0.0 for st in stats]  # over seeds
        ax.errorbar(xs, ys, yerr=spread, marker="o", capsize=3, label=strategy)
    if results["cfar"]["false_triggers_per_empty_hour"] is not None:
        ax.axhline(results["cfar"]["false_triggers_per_empty_hour"], color="grey", ls="--", label="CFAR")
    ceiling = results.get("every_window")
    if ceiling and ceiling["false_triggers_per_empty_hour"]["mean"] is not None:
        fa = ceiling["false_triggers_per_empty_hour"]["mean"]
        ax.axhline(fa, color="black", ls=":", label="every window labelled")
    ax.set_xlabel("paid labels spent")
    ax.set_ylabel("false triggers per empty hour (1/h)")
    ax.legend(fontsize=8)
    written.append(_save(fig, plots_dir / "fa_vs_labels.png"))

    written.append(_fa_by_type_per_turn(results, plots_dir))
    curves = _first_seed_curves(results)
    if curves:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, curve in curves.items():
            pts = [
                (1.0 - p["entry_recall"], p["false_triggers_per_empty_hour"])
                for p in curve
                if p["entry_recall"] is not None and p["false_triggers_per_empty_hour"] is not None
            ]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker=".", label=name)
        c = results["cfar"]
        if c["entry_recall"] is not None and c["false_triggers_per_empty_hour"] is not None:
            ax.plot([1.0 - c["entry_recall"]], [c["false_triggers_per_empty_hour"]], "k*", label="CFAR")
        ax.set_xlabel("missed-entry rate (eval batch)")
        ax.set_ylabel("false triggers per empty hour (1/h)")
        ax.set_title("Detection-error trade-off over strict thresholds (first seed)")
        ax.legend(fontsize=8)
        written.append(_save(fig, plots_dir / "fa_vs_recall.png"))
    split = _entry_split(results)
    if split:
        fig, ax = plt.subplots(figsize=(7, 4))
        names = list(split)
        entries = np.array([split[n][0] for n in names])
        re_entries = np.array([split[n][1] for n in names])
        ax.bar(names, entries, label="entries (strict: major motion from an empty room)")
        ax.bar(names, re_entries, bottom=entries, label="re-entries (lenient, occupied window)")
        ax.set_ylabel("false triggers per empty hour (mean over seeds)")
        ax.set_title("How the detector entered 'present' on its false triggers")
        ax.tick_params(axis="x", rotation=30)
        ax.legend(fontsize=8)
        written.append(_save(fig, plots_dir / "fa_entries.png"))
    return written


def _fa_by_type_per_turn(results: dict, plots_dir: Path) -> Path:
    """One panel per strategy: false triggers per nuisance-hour of each nuisance type over the turns."""
    import matplotlib.pyplot as plt

    strategies = results["strategies"]
    n = max(1, len(strategies))
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.6), sharey=True, squeeze=False)
    seed_types = results["seed_model"]["by_event_type"]
    types = sorted(
        {t for by_turn in strategies.values() for a in by_turn.values() for t in a["by_event_type"]}
        | set(seed_types)
    )
    for ax, (strategy, by_turn) in zip(axes[0], strategies.items(), strict=False):
        xs = [0] + [int(t) for t in by_turn]
        for t in types:
            ys = [seed_types.get(t)] + [a["by_event_type"].get(t) for a in by_turn.values()]
            ax.plot(xs, [y if y is not None else np.nan for y in ys], marker=".", label=t)
        ax.set_title(strategy, fontsize=9)
        ax.set_xlabel("turn")
        ax.set_yscale("symlog", linthresh=0.1)
    axes[0][0].set_ylabel("false triggers per nuisance-hour (1/h)")
    if types:
        axes[0][-1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("False triggers by nuisance type, per turn (mean over seeds)")
    return _save(fig, plots_dir / "fa_by_type_per_turn.png")


def _compared_models(results: dict) -> dict[str, dict]:
    """The aggregates the plots compare: seed model, each strategy's last turn, the every-window ceiling."""
    last = str(results["turns"])
    models = {"seed": results["seed_model"]}
    for strategy, by_turn in results["strategies"].items():
        models[f"{strategy} (turn {last})"] = by_turn[last]
    if results.get("every_window"):
        models["every window labelled"] = results["every_window"]
    return models


def _entry_split(results: dict) -> dict[str, tuple[float, float]]:
    """{model: (entry FA/h, re-entry FA/h)} for the models _compared_models names."""
    split = {}
    for name, agg in _compared_models(results).items():
        strict = (agg.get("false_triggers_per_empty_hour_strict") or {}).get("mean")
        lenient = (agg.get("false_triggers_per_empty_hour_lenient") or {}).get("mean")
        if strict is not None and lenient is not None:
            split[name] = (strict, lenient)
    return split


def _first_seed_curves(results: dict) -> dict[str, list[dict]]:
    """Operating curves of the first seed: seed model, each strategy's last turn, the ceiling."""
    last = results["turns"]
    curves: dict[str, list[dict]] = {}
    for r in results.get("seed_rows", [])[:1]:
        if r.get("curve"):
            curves["seed"] = r["curve"]
    for r in results.get("rows", []):
        if r.get("seed") == 0 and r.get("turn") == last and r.get("curve"):
            curves[f"{r['strategy']} (turn {last})"] = r["curve"]
    for r in results.get("every_window_rows", [])[:1]:
        if r.get("curve"):
            curves["every window labelled"] = r["curve"]
    return curves


def write_report(results: dict, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "results.md", markdown_table(results))
    write_plots(results, out_dir / "plots")
    atomic_write_json(out_dir / "results.json", results)
