"""`flywheel bench ablation`: what each feature channel buys, measured the pipeline's way.

One simulated world (bench.ablation.batches): the lab seed set, the stress eval batch and household
days, simulated once through the simulate stage. Per variant (bench.ablation.variants: front-end
overrides, e.g. which runtime.feature_channels are on) and per training seed, the pipeline's own stage
functions: ingest the seed and eval batches with that front-end, label the seed set (label_seed: the
same lab labels of the same windows for every variant), train, export (float, int8, DSP budget) and
evaluate (stress float and int8, household int8; the same held-out units). One row per (variant, seed),
the mean and spread over seeds per variant; results.json and results.md under the output folder.
A (variant, seed) already evaluated under the output folder is reused, so a longer run can be resumed
and a variant added without retraining the others; a model over the DSP budget (training.budget) is
reported as such instead of evaluated.

The raw and truth folders of the world are shared by every variant (symlinks); each variant has its own
curated batches, labels, models and evaluations. Sizes: params.yaml bench.ablation (`quick` for --quick).
"""

from __future__ import annotations

import copy
import os
import statistics
from pathlib import Path

from bench.models import bench_section
from common.io import atomic_write_json, atomic_write_text, read_json
from common.params import deep_merge
from common.paths import Paths

COLUMNS = (  # (row key, heading) of results.md
    ("false_triggers_per_empty_hour", "false triggers / empty h (stress)"),
    ("false_triggers_per_device_day", "false triggers / device-day (household)"),
    ("entry_recall", "entry recall (stress)"),
    ("entry_latency_p95_s", "entry latency p95 s (stress)"),
    ("false_absences_per_occupied_hour", "false absences / occupied h (stress)"),
    ("household_false_absences_per_occupied_hour", "false absences / occupied h (household)"),
    ("household_occupied_absent_fraction", "occupied time reported absent (household)"),
    ("macs_per_inference", "MACs"),
    ("int8_weight_bytes", "int8 weight bytes"),
    ("int8_gate_passed", "int8 gate"),
)
STRESS_KEYS = (
    "false_triggers_per_empty_hour",
    "entry_recall",
    "entry_latency_median_s",
    "entry_latency_p95_s",
    "false_absences_per_occupied_hour",
)


def variant_params(params: dict, ab: dict, variant: dict, seed: int) -> dict:
    """The params one (variant, seed) runs with: the variant's front-end overrides, the training seed."""
    p = copy.deepcopy(params)
    p["frontend"] = deep_merge(p["frontend"], variant.get("frontend", {}))
    p["training"] = deep_merge(p["training"], variant.get("training", {}))
    p["training"]["seed"] = int(seed)
    p["training"]["epochs"] = int(ab["epochs"])
    p["training"]["progress_bar"] = False
    p["simulate"]["workers"] = int(ab.get("workers", p["simulate"]["workers"]))
    p["simulate"]["batches"] = {**p["simulate"]["batches"], **ab["batches"]}
    p["turn"] = {**p["turn"], "seed_data": "simulated"}
    return p


def simulate_world(params: dict, world: Paths) -> None:
    """The seed, eval and household batches under world (each skipped when already simulated)."""
    from flows.stages import run_stage_function

    for batch in ("seed", "eval", "household"):
        if not (world.raw(batch) / "captures.jsonl").exists():
            run_stage_function("simulate", params, world, batch)


def variant_root(world: Paths, name: str) -> Paths:
    """A variant's data root: the world's raw and truth folders linked in, its own curated batches."""
    root = world.root / "variants" / name
    for kind in ("raw", "truth"):
        link = root / kind
        if not link.exists():
            root.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(world.root / kind, root), link)
    return Paths(root=root, turn="ablation")


def run_variant_seed(params: dict, root: Paths, seed: int) -> dict:
    """Ingest (once per variant), label, train, export and evaluate one seed; its row."""
    from flows.stages import run_stage_function
    from training.budget import BudgetError

    for batch in ("seed", "eval"):
        if not (root.curated(batch) / "windows.parquet").exists():
            run_stage_function("ingest", params, root, batch)

    paths = Paths(root.root, "ablation", run_root=root.root / f"seed-{seed}")
    if (paths.evaluation("seed") / "household.json").exists():  # measured by an earlier run: reused
        return ablation_row(paths)
    run_stage_function("label_seed", params, paths)
    run_stage_function("train", params, paths, "seed")
    try:
        run_stage_function("export", params, paths, "seed")
    except BudgetError as exc:  # a model the DSP cannot hold is a result of its own, not a crash
        return {"over_budget": str(exc), "degenerate": None}
    run_stage_function("evaluate", params, paths, "seed")
    return ablation_row(paths)


def ablation_row(paths: Paths) -> dict:
    """The figures of one evaluated model under paths (the evaluate and export stages' files)."""
    evaluation, onnx = paths.evaluation("seed"), paths.model("seed") / "onnx"
    stress = read_json(evaluation / "int8.json")
    household = read_json(evaluation / "household.json")
    budget = read_json(onnx / "budget.json")
    row = {k: stress.get(k) for k in STRESS_KEYS}
    row["degenerate"] = stress.get("degenerate")  # training.metrics.degenerate_reason: not averaged in
    row["false_triggers_per_device_day"] = household.get("false_triggers_per_device_day")
    row["household_false_absences_per_occupied_hour"] = household.get("false_absences_per_occupied_hour")
    row["household_occupied_absent_fraction"] = household.get("occupied_absent_fraction")
    row["household_entry_recall"] = household.get("entry_recall")
    row["macs_per_inference"] = budget.get("macs_per_inference")
    row["int8_weight_bytes"] = budget.get("int8_weight_bytes")
    row["int8_gate_passed"] = read_json(evaluation / "int8_gate.json")["passed"]
    row["false_triggers_by_type"] = {
        t: v.get("per_hour") for t, v in stress.get("false_triggers_by_type", {}).items()
    }
    return row


def summarise_variant(all_rows: list[dict]) -> dict:
    """Mean (and sample spread when there are several seeds) of every numeric figure over the seeds
    whose model is not degenerate (never fires, always present); those are counted, not averaged."""
    rows = [r for r in all_rows if not r.get("degenerate") and not r.get("over_budget")]
    flagged = [r["degenerate"] for r in all_rows if r.get("degenerate")]
    flagged += [
        f"over the DSP budget ({r['over_budget'].split(': ', 1)[-1]})"
        for r in all_rows
        if r.get("over_budget")
    ]
    out: dict = {"seeds": len(all_rows), "degenerate": flagged}
    for key, _ in COLUMNS:
        values = [
            r[key] for r in rows if isinstance(r.get(key), int | float) and not isinstance(r[key], bool)
        ]
        if key == "int8_gate_passed":
            out[key] = all(r.get(key) for r in rows) if rows else None
        elif values:
            out[key] = statistics.fmean(values)
            out[f"{key}_spread"] = statistics.stdev(values) if len(values) > 1 else 0.0
        else:
            out[key] = None
    return out


def markdown_table(summary: dict[str, dict], variants: dict) -> str:
    def cell(v, spread) -> str:
        if v is None:
            return "–"
        if isinstance(v, bool):
            return "pass" if v else "FAIL"
        text = f"{v:.3g}" if isinstance(v, float) else str(v)
        return f"{text} ± {spread:.2g}" if spread else text

    lines = [
        "| variant | channels | seeds | " + " | ".join(h for _, h in COLUMNS) + " |",
        "|---|---|---|" + "---|" * len(COLUMNS),
    ]
    for name, s in summary.items():
        channels = ", ".join(variants[name].get("frontend", {}).get("channels", ["(params)"]))
        cells = [cell(s.get(k), s.get(f"{k}_spread")) for k, _ in COLUMNS]
        seeds = f"{s['seeds']}" + (
            f" (**not ranked**: {', '.join(s['degenerate'])})" if s["degenerate"] else ""
        )
        lines.append(f"| {name} | {channels} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(out_dir: Path, variants: dict, rows: dict[str, list[dict]], batches: dict) -> dict:
    """results.json and results.md of the rows so far; returns the summary per variant."""
    summary = {name: summarise_variant(rows[name]) for name in variants if name in rows}  # params order
    results = {"variants": variants, "rows": rows, "summary": summary, "batches": batches}
    atomic_write_json(out_dir / "results.json", results)
    atomic_write_text(out_dir / "results.md", markdown_table(summary, variants))
    return summary


def run_bench(params: dict, quick: bool = False) -> dict:
    from rich.progress import Progress

    ab = bench_section(params["bench"]["ablation"], quick)
    out_dir = Path(ab["out_dir"]) / ("quick" if quick else "full")
    world = Paths(root=out_dir / "work", turn="ablation")
    raw = params["bench"]["ablation"]  # quick replaces the variants rather than merging into them
    variants: dict = (raw.get("quick") or {}).get("variants") if quick else raw["variants"]
    seeds = [int(s) for s in ab["seeds"]]
    simulate_world(variant_params(params, ab, {}, seeds[0]), world)
    rows: dict[str, list[dict]] = {}
    with Progress() as bar:
        task = bar.add_task("ablation", total=len(variants) * len(seeds))
        for name, variant in variants.items():
            root = variant_root(world, name)
            for seed in seeds:
                bar.update(task, description=f"{name}, seed {seed}")
                row = run_variant_seed(variant_params(params, ab, variant, seed), root, seed)
                rows.setdefault(name, []).append({"variant": name, "seed": seed, **row})
                summary = write_results(out_dir, variants, rows, ab["batches"])  # after every row
                bar.advance(task)
    figures: dict = {"results": str(out_dir / "results.json")}
    for name, s in summary.items():
        for key, _ in COLUMNS:  # every column of results.md, printed by `flywheel bench ablation`
            figures[f"{name}.{key}"] = s.get(key)
    return figures
