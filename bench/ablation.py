"""`flywheel bench ablation`: what each feature channel buys, measured the pipeline's way.

One simulated world (bench.ablation.batches): the lab seed set, the stress eval batch and household
days, simulated once through the simulate stage. Per variant (bench.ablation.variants: front-end
overrides, e.g. which runtime.feature_channels are on) and per training seed, the pipeline's own stage
functions: ingest the seed and eval batches with that front-end, label the seed set (label_seed: the
same lab labels of the same windows for every variant), train, export (float, int8, DSP budget) and
evaluate (stress float and int8, household int8; the same held-out units). One row per (variant, seed),
the mean and spread over seeds per variant; results.json and results.md under the output folder.

A variant (VARIANT_KEYS) may also change:
  * labels: "seed" (the lab seed set alone, the default) or "every_window": the seed set plus every
    window of the world's field batch (nuisance-rich uploads of units no eval set holds) labelled by
    the simulated annotator, the ceiling of what labels can buy with that front-end and model;
  * detector: state-machine overrides (runtime.detector.DetectorConfig fields); with model_of, the
    models another variant (earlier in params order) trained for the same seeds are evaluated again
    under those rules: the same probabilities, another state machine.
A (variant, seed) already evaluated under the output folder is reused, so a longer run can be resumed
and a variant added without retraining the others; a model over the DSP budget (training.budget) is
reported as such instead of evaluated.

The raw and truth folders of the world are shared by every variant (symlinks); each variant has its own
curated batches, labels, models and evaluations. Sizes: params.yaml bench.ablation (`quick` for --quick).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import statistics
from pathlib import Path

import polars as pl

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
    ("empty_present_fraction", "empty time reported present (stress)"),
    ("household_false_absences_per_occupied_hour", "false absences / occupied h (household)"),
    ("household_occupied_absent_fraction", "occupied time reported absent (household)"),
    ("macs_per_inference", "MACs"),
    ("int8_weight_bytes", "int8 weight bytes"),
    ("int8_gate_passed", "int8 gate"),
    ("field_labels", "field labels"),
)
VARIANT_KEYS = ("frontend", "training", "detector", "labels", "model_of")
LABEL_SETS = ("seed", "every_window")
STRESS_KEYS = (
    "false_triggers_per_empty_hour",
    "entry_recall",
    "entry_latency_median_s",
    "entry_latency_p95_s",
    "false_absences_per_occupied_hour",
    "empty_present_fraction",  # what a longer hold costs: presence outlasting a departure
)


def check_variants(variants: dict) -> None:
    """Refuse a variant with an unknown key or label set, or a model_of that is not an earlier variant
    with the same front-end, training and labels."""
    from runtime.detector import DetectorConfig

    fields = {f.name for f in dataclasses.fields(DetectorConfig)}
    seen: list[str] = []
    for name, v in variants.items():
        unknown = set(v) - set(VARIANT_KEYS)
        if unknown:
            raise ValueError(
                f"bench.ablation.variants.{name}: unknown keys {sorted(unknown)} ({VARIANT_KEYS})"
            )
        if v.get("labels", "seed") not in LABEL_SETS:
            raise ValueError(
                f"bench.ablation.variants.{name}.labels: {v['labels']!r} is not one of {LABEL_SETS}"
            )
        bad = set(v.get("detector", {})) - fields
        if bad:
            raise ValueError(
                f"bench.ablation.variants.{name}.detector: not state-machine fields {sorted(bad)}"
            )
        other = v.get("model_of")
        if other is not None:
            if other not in seen:
                raise ValueError(
                    f"bench.ablation.variants.{name}.model_of: {other!r} is not an earlier variant"
                )
            same = ("frontend", "training", "labels")
            if any(variants[other].get(k) != v.get(k) for k in same):
                raise ValueError(f"bench.ablation.variants.{name}: model_of {other!r} needs the same {same}")
        seen.append(name)


def labels_every_window(variant: dict) -> bool:
    """Does the variant learn from every window of the field batch too (else the seed set alone)?"""
    return variant.get("labels", "seed") == "every_window"


def model_name(variant: dict) -> str:
    """The model a variant trains: "seed" on the seed set alone, "every-window" with the field batch."""
    return "every-window" if labels_every_window(variant) else "seed"


def variant_params(params: dict, ab: dict, variant: dict, seed: int) -> dict:
    """The params one (variant, seed) runs with: the variant's front-end, training and state-machine
    overrides, the training seed."""
    p = copy.deepcopy(params)
    p["frontend"] = deep_merge(p["frontend"], variant.get("frontend", {}))
    p["training"] = deep_merge(p["training"], variant.get("training", {}))
    p["detector"] = deep_merge(p["detector"], variant.get("detector", {}))
    p["training"]["seed"] = int(seed)
    p["training"]["epochs"] = int(ab["epochs"])
    p["training"]["progress_bar"] = False
    p["simulate"]["workers"] = int(ab.get("workers", p["simulate"]["workers"]))
    p["simulate"]["batches"] = {**p["simulate"]["batches"], **ab["batches"]}
    p["turn"] = {**p["turn"], "seed_data": "simulated"}
    return p


def simulate_world(params: dict, world: Paths, batches: tuple[str, ...]) -> None:
    """The world's batches (seed, eval, household, and field when a variant labels it) under world, each
    skipped when already simulated."""
    from flows.stages import run_stage_function

    for batch in batches:
        if not (world.raw(batch) / "captures.jsonl").exists():
            run_stage_function("simulate", params, world, batch)


def variant_root(world: Paths, name: str, variant: dict) -> Paths:
    """A variant's data root: the world's raw and truth folders linked in, its own curated batches (those
    of its model_of variant when it only changes the state machine)."""
    root = world.root / "variants" / name
    links = {kind: world.root / kind for kind in ("raw", "truth")}
    if variant.get("model_of"):
        links["curated"] = world.root / "variants" / variant["model_of"] / "curated"
    for kind, target in links.items():
        link = root / kind
        if not link.exists():
            root.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(target, root), link)
    return Paths(root=root, turn="ablation")


def seed_paths(root: Paths, seed: int) -> Paths:
    """One training seed's labels, models and evaluations under a variant's root (field batch: "field")."""
    return Paths(root.root, "ablation", run_root=root.root / f"seed-{seed}", field_batches=("field",))


def label_every_window(params: dict, root: Paths, paths: Paths) -> None:
    """The simulated annotator's label for every window of the field batch (labeling.*)."""
    from common.io import atomic_write_parquet
    from mining.labels import label_windows

    windows = pl.read_parquet(
        root.curated("field") / "windows.parquet", columns=["window_id", "capture_id", "t_end_s"]
    )
    lp = params["labeling"]
    table = label_windows(
        windows, root.truth("field"), source="oracle", error_rate=float(lp["error_rate"]),
        seed=int(lp["seed"]), batch_id="field",
    )  # fmt: skip
    atomic_write_parquet(paths.labels("field") / "labels.parquet", table)


def reuse_model(world: Paths, variant: dict, paths: Paths, seed: int, model: str) -> bool:
    """Copy the model model_of's variant trained for this seed, its detector.json under this variant's
    state-machine overrides (the thresholds training chose stay). False: that variant exported no model
    (it was over the DSP budget)."""
    source = seed_paths(Paths(world.root / "variants" / variant["model_of"], "ablation"), seed)
    if not (source.model(model) / "onnx" / "model_int8.onnx").exists():
        return False
    shutil.copytree(source.model(model), paths.model(model), dirs_exist_ok=True)
    detector = paths.model(model) / "checkpoint" / "detector.json"
    atomic_write_json(detector, {**read_json(detector), **variant.get("detector", {})})
    return True


def run_variant_seed(params: dict, world: Paths, root: Paths, variant: dict, seed: int) -> dict:
    """Ingest (once per variant), label, train (or take model_of's model), export and evaluate one
    seed; its row."""
    from flows.stages import run_stage_function
    from training.budget import BudgetError

    every_window = labels_every_window(variant)
    for batch in ("seed", "eval") + (("field",) if every_window else ()):
        if not (root.curated(batch) / "windows.parquet").exists():
            run_stage_function("ingest", params, root, batch)

    paths, model = seed_paths(root, seed), model_name(variant)
    if (paths.evaluation(model) / "household.json").exists():  # measured by an earlier run: reused
        return ablation_row(paths, model)
    run_stage_function("label_seed", params, paths)
    if every_window:
        label_every_window(params, root, paths)
    if variant.get("model_of"):
        if not reuse_model(world, variant, paths, seed, model):
            return {"over_budget": f"{variant['model_of']}'s model: over the DSP budget", "degenerate": None}
    else:
        run_stage_function("train", params, paths, model)
        try:
            run_stage_function("export", params, paths, model)
        except BudgetError as exc:  # a model the DSP cannot hold is a result of its own, not a crash
            return {"over_budget": str(exc), "degenerate": None}
    run_stage_function("evaluate", params, paths, model)
    return ablation_row(paths, model)


def ablation_row(paths: Paths, model: str = "seed") -> dict:
    """The figures of one evaluated model under paths (the evaluate and export stages' files)."""
    evaluation, onnx = paths.evaluation(model), paths.model(model) / "onnx"
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
    field_labels = paths.labels("field") / "labels.parquet"
    row["field_labels"] = (
        pl.scan_parquet(field_labels).select(pl.len()).collect().item() if field_labels.exists() else 0
    )
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
        "| variant | channels | labels | state machine | seeds | " + " | ".join(h for _, h in COLUMNS) + " |",
        "|---|---|---|---|---|" + "---|" * len(COLUMNS),
    ]
    for name, s in summary.items():
        v = variants[name]
        channels = ", ".join(v.get("frontend", {}).get("channels", ["(params)"]))
        labels = "seed set + every field window" if labels_every_window(v) else "seed set"
        rule = ", ".join(f"{k} {val}" for k, val in v.get("detector", {}).items()) or "params"
        cells = [cell(s.get(k), s.get(f"{k}_spread")) for k, _ in COLUMNS]
        seeds = f"{s['seeds']}" + (
            f" (**not ranked**: {', '.join(s['degenerate'])})" if s["degenerate"] else ""
        )
        lines.append(f"| {name} | {channels} | {labels} | {rule} | {seeds} | " + " | ".join(cells) + " |")
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
    check_variants(variants)
    seeds = [int(s) for s in ab["seeds"]]
    labelled = any(labels_every_window(v) for v in variants.values())
    batches = ("seed", "eval", "household") + (("field",) if labelled else ())
    simulate_world(variant_params(params, ab, {}, seeds[0]), world, batches)
    rows: dict[str, list[dict]] = {}
    with Progress() as bar:
        task = bar.add_task("ablation", total=len(variants) * len(seeds))
        for name, variant in variants.items():
            root = variant_root(world, name, variant)
            for seed in seeds:
                bar.update(task, description=f"{name}, seed {seed}")
                row = run_variant_seed(variant_params(params, ab, variant, seed), world, root, variant, seed)
                rows.setdefault(name, []).append({"variant": name, "seed": seed, **row})
                summary = write_results(out_dir, variants, rows, ab["batches"])  # after every row
                bar.advance(task)
    figures: dict = {"results": str(out_dir / "results.json")}
    for name, s in summary.items():
        for key, _ in COLUMNS:  # every column of results.md, printed by `flywheel bench ablation`
            figures[f"{name}.{key}"] = s.get(key)
    return figures
