"""The measured flywheel: several turns per selection strategy with equal label budgets, one fleet.

One simulated world per run: a lab seed batch, a held-out eval batch and one new field batch per turn
(same field devices, new day seed per turn; shared by every strategy, so they mine the same pools).
Per experiment seed (training, mining and annotator seeds; the simulated data stay the same):
seed model → for each strategy, T turns of mine → label (oracle, budget per turn) → retrain on all
labels so far → evaluate the float model with the thresholds training picked on the same eval batch.
The classical CFAR detector is evaluated once on that eval batch. With experiment.ceiling, each seed
also trains on every window of every turn's field batch, labelled by the annotator: what labels alone
can buy with this model and features, the bound no selection strategy can beat (it costs one large
training per seed). Results: rows per (seed, strategy, turn), their mean and spread over seeds, target
checks, a markdown table and plots (report.py).
After the flywheel strategy's last turn of the first seed, the rare-event trigger is trained on the
labels it bought and its enrichment is measured (mining/enrichment.py).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from common.io import atomic_write_json, atomic_write_parquet
from common.params import deep_merge
from common.paths import Paths
from mining.scoring import score_windows

STRATEGIES = ("flywheel", "random", "uncertainty")
METRIC_KEYS = (
    "false_alarms_per_hour",
    "recall_major",
    "recall_minor",
    # the false alarms split by how the detector entered "present" (training.metrics)
    "false_alarms_per_hour_strict",
    "false_alarms_per_hour_lenient",
    "false_present_fraction",
)
Progress = Callable[[str], None]  # called with a description after each unit of work


def experiment_config(params: dict, quick: bool = False) -> dict:
    """params.experiment, with its `quick` overrides merged in when quick."""
    ex = copy.deepcopy(params["experiment"])
    quick_overrides = ex.pop("quick", {})
    return deep_merge(ex, quick_overrides) if quick else ex


def count_steps(ex: dict, turns: int, seeds: int) -> int:
    """Units of work reported to `progress` (for a progress bar's total)."""
    batches = 1 + turns  # seed and eval batches (reported together) + one field batch per turn
    per_seed = 1 + len(ex["strategies"]) * turns + (1 if ex.get("ceiling") else 0)
    rare = ex["rare_event"]["enabled"] and "flywheel" in ex["strategies"]  # measured on the flywheel's labels
    return batches + 1 + seeds * per_seed + (1 if rare else 0)  # + 1: the CFAR baseline


def run_params(params: dict, ex: dict, seed_index: int) -> dict:
    """The params one experiment seed trains and mines with."""
    p = copy.deepcopy(params)
    p["training"]["epochs"] = int(ex["epochs"])
    p["training"]["seed"] = int(ex["seed"]) + 1000 * seed_index
    p["training"]["progress_bar"] = False
    p["mining"]["seed"] = int(ex["seed"]) + 1000 * seed_index + 1
    p["labeling"]["seed"] = int(ex["seed"]) + 1000 * seed_index + 2
    p["simulate"]["workers"] = int(ex.get("workers", p["simulate"].get("workers", 1)))
    return p


def world_paths(work_dir: Path) -> Paths:
    """Folders of the experiment's simulated batches (raw, truth, curated) under work_dir."""
    return Paths(root=Path(work_dir), turn="experiment")


def simulate_and_ingest(world: Paths, params: dict, batch: str, spec: dict) -> dict:
    """Simulate one batch into the world and ingest it (skipped when already curated)."""
    from fleet.simulate import simulate_batch
    from ingest.pipeline import ingest_batch

    if (world.curated(batch) / "windows.parquet").exists():
        return {"batch": batch, "reused": True}
    sim = simulate_batch(
        spec["preset"],
        int(spec["devices"]),
        float(spec["hours"]),
        int(spec["seed"]),
        world.raw(batch),
        world.truth(batch),
        batch_id=batch,
        sim_params=params["simulate"],
    )
    ingested = ingest_batch(world.raw(batch), world.curated_root, params)
    return {"batch": batch, "captures": sim["n_captures"], "windows": ingested.get("n_windows")}


def field_spec(ex: dict, turn: int) -> dict:
    spec = dict(ex["batches"]["field"])
    spec["seed"] = int(spec["seed"]) + turn  # a new day on the same devices
    return spec


def train_and_export(params: dict, batches: list[tuple[Path, Path]], out_dir: Path) -> tuple[Path, dict]:
    """Train on (curated_dir, labels_path) pairs, export the float ONNX; return (onnx path, detector)."""
    from common.io import read_json
    from training.datamodule import TrainingBatch
    from training.export import export_onnx
    from training.train import train_classifier

    train_classifier([TrainingBatch(c, lab) for c, lab in batches], params, out_dir / "checkpoint")
    onnx_path = out_dir / "model_float.onnx"
    export_onnx(out_dir / "checkpoint" / "model.ckpt", onnx_path, params)
    return onnx_path, read_json(out_dir / "checkpoint" / "detector.json")


def evaluation_row(metrics: dict) -> dict:
    """The experiment's figures from an evaluation: headline metrics and false alarms/h by event type."""
    by_type = {
        name: (v["false_alarms"] / v["hours"] if v["hours"] > 0 else None)
        for name, v in metrics.get("by_event_type", {}).items()
        if v.get("false_alarms") is not None
    }
    row = {k: metrics.get(k) for k in METRIC_KEYS}
    row["false_alarms"] = metrics.get("false_alarms")
    row["hours_without_presence"] = metrics.get("hours_without_presence")
    row["by_event_type"] = by_type
    return row


def evaluate_model(params: dict, world: Paths, onnx_path: Path, detector: dict) -> dict:
    """The experiment's row for one model on the eval batch; with experiment.curve_thresholds also its
    false-alarm/recall curve over strict thresholds (row["curve"]), to compare models at equal recall."""
    from runtime.frontend import FrontendConfig
    from training.evaluate import evaluate_operating_curve

    frontend = FrontendConfig.from_dict(params["frontend"])
    thresholds = [float(t) for t in params.get("experiment", {}).get("curve_thresholds") or []]
    out = evaluate_operating_curve(
        onnx_path, frontend, detector, world.raw("eval"), world.truth("eval"), thresholds
    )
    return {**evaluation_row(out["metrics"]), "curve": out["curve"]}


def embed_windows(onnx_path: Path, curated_dir: Path, window_ids: pl.Series, context: int) -> np.ndarray:
    """[n, D] embeddings (and nothing else) of the given windows of one curated batch."""
    return score_windows(onnx_path, curated_dir, window_ids, context)[1]


def labeled_embeddings(
    onnx_path: Path, label_sets: list[tuple[Path, Path]], context: int, limit: int, seed: int
) -> np.ndarray:
    """Embeddings of (a seeded sample of at most `limit` of) everything labelled so far."""
    rng = np.random.default_rng(seed)
    per_batch = max(1, limit // len(label_sets))
    parts = []
    for curated, labels in label_sets:
        ids = pl.read_parquet(labels, columns=["window_id"])["window_id"]
        if len(ids) > per_batch:
            ids = ids.gather(np.sort(rng.choice(len(ids), per_batch, replace=False)))
        parts.append(embed_windows(onnx_path, curated, ids, context))
    return np.concatenate(parts)


def run_strategy(
    params: dict,
    ex: dict,
    world: Paths,
    strategy: str,
    turns: int,
    seed_model: tuple[Path, dict],
    seed_labels: Path,
    out_dir: Path,
    progress: Progress,
) -> tuple[list[dict], list[tuple[Path, Path]], tuple[Path, dict]]:
    """T turns of one strategy → (rows per turn, label sets used, last model (onnx, detector))."""
    from mining.labels import weak_label_table
    from mining.select import mine_batch

    context = int(params["ingest"]["context_frames"])
    label_sets = [(world.curated("seed"), seed_labels)]
    model, detector = seed_model
    rows, paid_total, weak_total = [], 0, 0
    for turn in range(1, turns + 1):
        batch = f"field-{turn}"
        known = labeled_embeddings(
            model, label_sets, context, int(ex["labeled_embedding_limit"]), int(params["mining"]["seed"])
        )
        picks = mine_batch(
            model, world.curated(batch), known, params, policy=strategy, budget=int(ex["budget"])
        )
        paid = annotator_labels(params, world, picks, turn)
        weak = pl.DataFrame(schema=paid.schema)
        if ex["weak_labels"]:
            weak = weak_label_table(
                world.curated(batch), batch, float(params["mining"]["weak_label_confidence_min"])
            ).filter(~pl.col("window_id").is_in(paid["window_id"].implode()))
        labels_path = out_dir / strategy / f"labels-{batch}.parquet"
        atomic_write_parquet(labels_path, pl.concat([paid, weak]))
        label_sets.append((world.curated(batch), labels_path))
        paid_total, weak_total = paid_total + paid.height, weak_total + weak.height
        model, detector = train_and_export(params, label_sets, out_dir / strategy / f"turn-{turn}")
        row = {
            "strategy": strategy,
            "turn": turn,
            "labels_spent": paid_total,
            "weak_labels": weak_total,
            "paid_by_class": dict(paid.group_by("label").len().sort("label").iter_rows()),
            "picks_by_strategy": dict(picks.group_by("strategy").len().sort("strategy").iter_rows()),
            "thresholds": {k: detector.get(k) for k in ("strict_threshold", "lenient_threshold")},
            **evaluate_model(params, world, model, detector),
        }
        rows.append(row)
        progress(f"{strategy} turn {turn}: FA/h {row['false_alarms_per_hour']}")
    return rows, label_sets, (model, detector)


def train_rare_trigger(
    params: dict,
    label_sets: list[tuple[Path, Path]],
    seed_onnx: Path,
    ship: tuple[Path, dict],
    out_dir: Path,
    lab_sample: int,
) -> tuple[Path, dict]:
    """Fit the rare-event trigger on the paid field labels; write a bundle folder → (folder, summary)."""
    from mining.enrichment import write_bundle_folder
    from mining.rare_event import detector_with_trigger, fit_trigger_on_labels

    model, summary = fit_trigger_on_labels(params, label_sets, seed_onnx, ship[0], lab_sample)
    detector = detector_with_trigger(ship[1], summary["threshold"])
    folder = write_bundle_folder(out_dir / "bundle", ship[0], params["frontend"], detector, model)
    return folder, summary


def run_experiment(
    params: dict,
    out_dir: str | Path,
    turns: int | None = None,
    seeds: int | None = None,
    quick: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Run the whole comparison; write results.json, results.md and plots under out_dir; return results."""
    from mining.experiment_report import summarise, write_report
    from runtime.frontend import FrontendConfig
    from training.evaluate import evaluate_cfar

    ex = experiment_config(params, quick)
    turns = int(ex["turns"] if turns is None else turns)
    seeds = int(ex["seeds"] if seeds is None else seeds)
    if turns < 1 or seeds < 1:
        raise ValueError(f"turns and seeds must be >= 1 (got {turns}, {seeds})")
    unknown = set(ex["strategies"]) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"experiment.strategies: unknown {sorted(unknown)} (known: {list(STRATEGIES)})")
    progress = progress or (lambda _: None)
    out_dir = Path(out_dir)
    world = world_paths(out_dir / "work")
    base = run_params(params, ex, 0)
    data_info = [simulate_and_ingest(world, base, b, ex["batches"][b]) for b in ("seed", "eval")]
    progress("seed and eval batches")
    for turn in range(1, turns + 1):
        data_info.append(simulate_and_ingest(world, base, f"field-{turn}", field_spec(ex, turn)))
        progress(f"field batch {turn}")
    cfar = evaluation_row(
        evaluate_cfar(
            world.raw("eval"),
            world.truth("eval"),
            FrontendConfig.from_dict(base["frontend"]),
            base["runtime"]["cfar"],
        )
    )
    progress("CFAR baseline")
    seed_labels = label_seed_batch(base, world)

    seed_rows: list[dict] = []
    rows: list[dict] = []
    ceiling_rows: list[dict] = []
    rare: dict | None = None
    for s in range(seeds):
        p = run_params(params, ex, s)
        run_dir = world.root / f"seed-{s}"
        seed_model = train_and_export(p, [(world.curated("seed"), seed_labels)], run_dir / "seed-model")
        seed_rows.append({"seed": s, **evaluate_model(p, world, *seed_model)})
        progress(f"seed model {s}")
        for strategy in ex["strategies"]:
            strategy_rows, label_sets, last = run_strategy(
                p, ex, world, strategy, turns, seed_model, seed_labels, run_dir, progress
            )
            rows += [{"seed": s, **r} for r in strategy_rows]
            if s == 0 and strategy == "flywheel" and ex["rare_event"]["enabled"]:
                rare = measure_rare_trigger(p, ex, world, label_sets, seed_model[0], last, run_dir)
                progress(f"rare-event enrichment {rare.get('enrichment')}")
        if ex.get("ceiling"):
            ceiling_rows.append({"seed": s, **run_ceiling(p, world, turns, seed_labels, run_dir)})
            progress(f"every window labelled: FA/h {ceiling_rows[-1]['false_alarms_per_hour']}")
    results = summarise(ex, turns, seeds, seed_rows, rows, cfar, rare, data_info, ceiling_rows)
    write_report(results, out_dir)
    return results


def annotator_labels(params: dict, world: Paths, windows: pl.DataFrame, turn: int) -> pl.DataFrame:
    """Paid labels for windows of turn `turn`'s field batch from the simulated annotator (labeling.*)."""
    from mining.labels import label_windows

    lp = params["labeling"]
    batch = f"field-{turn}"
    return label_windows(
        windows,
        world.truth(batch),
        source="oracle",
        error_rate=float(lp["error_rate"]),
        seed=int(lp["seed"]) + turn,
        batch_id=batch,
    )


def run_ceiling(params: dict, world: Paths, turns: int, seed_labels: Path, run_dir: Path) -> dict:
    """Train on the seed labels plus every window of every turn's field batch (annotator labels)."""
    label_sets = [(world.curated("seed"), seed_labels)]
    spent = 0
    for turn in range(1, turns + 1):
        batch = f"field-{turn}"
        windows = pl.read_parquet(
            world.curated(batch) / "windows.parquet", columns=["window_id", "capture_id", "t_end_s"]
        )
        table = annotator_labels(params, world, windows, turn)
        path = run_dir / "every-window" / f"labels-{batch}.parquet"
        atomic_write_parquet(path, table)
        label_sets.append((world.curated(batch), path))
        spent += table.height
    model, detector = train_and_export(params, label_sets, run_dir / "every-window")
    return {
        "strategy": "every_window",
        "turn": turns,
        "labels_spent": spent,
        "thresholds": {k: detector.get(k) for k in ("strict_threshold", "lenient_threshold")},
        **evaluate_model(params, world, model, detector),
    }


def label_seed_batch(params: dict, world: Paths) -> Path:
    """Lab labels for every seed window (the collection protocol's labels, no annotator error)."""
    from mining.labels import label_windows

    path = world.root / "labels" / "seed.parquet"
    if not path.exists():
        windows = pl.read_parquet(world.curated("seed") / "windows.parquet")
        table = label_windows(
            windows, world.truth("seed"), source="lab", error_rate=0.0, seed=0, batch_id="seed"
        )
        atomic_write_parquet(path, table)
    return path


def measure_rare_trigger(
    params: dict,
    ex: dict,
    world: Paths,
    label_sets: list[tuple[Path, Path]],
    seed_onnx: Path,
    ship: tuple[Path, dict],
    run_dir: Path,
) -> dict:
    """Train the trigger on the flywheel's labels, then simulate a new field day with and without it."""
    from mining.enrichment import measure_enrichment

    try:
        folder, summary = train_rare_trigger(
            params, label_sets, seed_onnx, ship, run_dir / "rare-event", int(ex["rare_event"]["lab_windows"])
        )
    except ValueError as exc:  # e.g. mining found no hard negative at all: nothing to train on
        return {"error": str(exc), "enrichment": None}
    spec = field_spec(ex, len(label_sets))  # a day none of the turns mined
    measured = measure_enrichment(
        params,
        world.root / "enrichment",
        folder,
        int(spec["devices"]),
        float(ex["rare_event"]["hours"]),
        int(spec["seed"]),
    )
    atomic_write_json(run_dir / "rare-event" / "enrichment.json", {**measured, "model": summary})
    return {**measured, "model": summary}
