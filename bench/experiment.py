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
checks, a markdown table and plots (experiment_report.py).
After the flywheel strategy's last turn of the first seed, the rare-event trigger is trained on the
labels it bought and its enrichment is measured (bench/enrichment.py).

Simulation, ingest, seed labels, training, export and evaluation are the pipeline's own stage functions
(flows.stages.run_stage_function), each on its declared params, with one common.paths.Paths per run:
the world's batches under work/, and each (seed, strategy) run's labels, models (one per turn) and
evaluations under work/seed-<s>/<strategy>/. Only mining with a chosen strategy and budget, the
annotator's labels per turn and the operating curve are the experiment's own.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from bench.closed_loop import Deployed
from bench.experiment_report import HOUSEHOLD_KEYS, METRIC_KEYS
from common.io import atomic_write_json, atomic_write_parquet, read_json
from common.params import deep_merge
from common.paths import Paths
from flows.stages import run_stage_function, training_batches
from mining.scoring import score_windows

# mined strategies (mining.select.POLICIES) and self-training (the seed model's confident predictions
# on the pool, mining.pseudo_labels: no paid label)
STRATEGIES = ("flywheel", "random", "uncertainty", "balanced_random", "self_training")
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


def run_paths(world: Paths, run_dir: Path, turn: str, field_batches: tuple[str, ...] = ()) -> Paths:
    """One run's Paths on the world: its labels, models and evaluations under run_dir; its retrained
    models learn from the seed batch and `field_batches`."""
    return Paths(world.root, turn, run_root=Path(run_dir), field_batches=tuple(field_batches))


def simulate_and_ingest(world: Paths, params: dict, batch: str, spec: dict) -> dict:
    """Simulate one batch into the world and ingest it, through the stages (skipped when already curated)."""
    if (world.curated(batch) / "windows.parquet").exists():
        return {"batch": batch, "reused": True}
    p = {**params, "simulate": {**params["simulate"], "batches": {batch: spec}}}
    sim = run_stage_function("simulate", p, world, batch)["summary"]
    ingested = run_stage_function("ingest", p, world, batch)["summary"]
    return {"batch": batch, "captures": sim["n_captures"], "windows": ingested.get("n_windows")}


def simulate_only(world: Paths, params: dict, batch: str, spec: dict) -> dict:
    """Simulate a batch that is only evaluated, never ingested (household days), through the stage."""
    if (world.raw(batch) / "captures.jsonl").exists():
        return {"batch": batch, "reused": True}
    p = {**params, "simulate": {**params["simulate"], "batches": {batch: spec}}}
    sim = run_stage_function("simulate", p, world, batch)["summary"]
    return {"batch": batch, "captures": sim["n_captures"]}


def field_spec(ex: dict, turn: int) -> dict:
    spec = dict(ex["batches"]["field"])
    spec["seed"] = int(spec["seed"]) + turn  # a new day on the same devices
    return spec


def train_and_export(params: dict, paths: Paths, model: str) -> tuple[Path, dict]:
    """The train and export stages for `model` under `paths` → (float ONNX path, detector config)."""
    run_stage_function("train", params, paths, model)
    run_stage_function("export", params, paths, model)
    return paths.model(model) / "onnx" / "model_float.onnx", read_json(
        paths.model(model) / "checkpoint" / "detector.json"
    )


def evaluation_row(metrics: dict) -> dict:
    """The experiment's figures from an evaluation (training.metrics): headline figures, false triggers
    per nuisance-hour by type, and the detection-error trade-off with each point's entry recall."""
    empty_h = metrics.get("empty_hours") or 0.0
    derived = {
        f"false_triggers_per_empty_hour_{kind}": (
            metrics[f"false_triggers_{kind}"] / empty_h
            if metrics.get(f"false_triggers_{kind}") is not None and empty_h > 0
            else None
        )
        for kind in ("strict", "lenient")
    }
    row = {k: {**metrics, **derived}.get(k) for k in METRIC_KEYS}
    row["degenerate"] = metrics.get("degenerate")  # training.metrics.degenerate_reason: not ranked
    row["false_triggers"] = metrics.get("false_triggers")
    row["empty_hours"] = metrics.get("empty_hours")
    row["by_event_type"] = {
        name: v["per_hour"] for name, v in metrics.get("false_triggers_by_type", {}).items()
    }
    row["curve"] = [
        {**p, "entry_recall": None if p["missed_entry_rate"] is None else 1.0 - p["missed_entry_rate"]}
        for p in metrics.get("det_curve") or []
    ]
    return row


def evaluate_model(params: dict, paths: Paths, model: str) -> dict:
    """The experiment's row for one model: the evaluate stage's float figures on the stress eval batch,
    with its detection-error trade-off over experiment.curve_thresholds (row["curve"], to compare models
    at equal entry recall), and the int8 model's figures on household days (row["household"])."""
    curve = params["experiment"]["curve_thresholds"]
    p = {**params, "evaluation": {**params["evaluation"], "det_thresholds": curve}}
    run_stage_function("evaluate", p, paths, model)
    row = evaluation_row(read_json(paths.evaluation(model) / "float.json"))
    household = read_json(paths.evaluation(model) / "household.json")
    row["household"] = {k: household.get(k) for k in HOUSEHOLD_KEYS}
    return row


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


def seed_labels(params: dict, world: Paths, run_dir: Path) -> Paths:
    """A run's Paths before its first turn, with the lab labels of every seed window (label_seed stage)."""
    paths = run_paths(world, run_dir, "seed")
    run_stage_function("label_seed", params, paths)
    return paths


@dataclass(frozen=True)
class SeedRun:
    """One experiment seed's seed model: every strategy of that seed starts from it."""

    index: int
    model: tuple[Path, dict]  # (float ONNX, detector)
    bundle: Deployed | None  # its bundle, deployed on every strategy's fleet at turn 1 (closed loop)


def seed_model(params: dict, world: Paths, run_dir: Path, index: int, closed: bool) -> tuple[SeedRun, dict]:
    """The seed model of one experiment seed, trained, exported and evaluated by the stages, with its
    bundle in the closed loop → (SeedRun, its row)."""
    from bench.closed_loop import make_bundle

    paths = seed_labels(params, world, run_dir / "seed-model")
    model = train_and_export(params, paths, "seed")
    row = evaluate_model(params, paths, "seed")
    bundle = make_bundle(params, paths, "seed", model[1]) if closed else None
    return SeedRun(index, model, bundle), row


def turn_paths(world: Paths, strategy_dir: Path, turn: int, batches: list[str] | None = None) -> Paths:
    """Turn `turn` of one strategy: its model learns from the seed batch and the field batches of turns
    1 .. turn (`batches`, its closed loop's; None: the shared field-1 .. field-<turn>)."""
    names = batches if batches is not None else [f"field-{t}" for t in range(1, turn + 1)]
    return run_paths(world, strategy_dir, f"turn-{turn}", tuple(names[:turn]))


def label_sets_of(paths: Paths, model: str) -> list[tuple[Path, Path]]:
    """(curated_dir, labels_path) of every batch `model` learns from under `paths`."""
    return [(paths.curated(b), paths.labels(b) / "labels.parquet") for b in training_batches(paths, model)]


def run_strategy(
    params: dict,
    ex: dict,
    world: Paths,
    strategy: str,
    turns: int,
    seed: SeedRun,
    run_dir: Path,
    progress: Progress,
) -> tuple[list[dict], list[tuple[Path, Path]], tuple[Path, dict], list[str]]:
    """T turns of one strategy under run_dir/<strategy> → (rows per turn, label sets of its last model,
    last model (float ONNX, detector), the field batches it mined). Closed loop (experiment.closed_loop):
    each turn's field batch is uploaded by units running the bundle the strategy deployed last
    (bench.closed_loop); open: the shared field-<turn> batches of factory units."""
    from bench.closed_loop import field_batch, make_bundle, release
    from mining.config import MiningConfig
    from mining.failure_points import learning_params
    from mining.labels import weak_label_table
    from mining.select import mine_batch
    from runtime.detector import DetectorConfig

    cfg, detector_cfg = MiningConfig.from_params(params), DetectorConfig.from_params(params)
    context = detector_cfg.context_frames
    strategy_dir = run_dir / strategy
    closed = bool(ex.get("closed_loop"))
    seed_labels(params, world, strategy_dir)
    label_sets = label_sets_of(turn_paths(world, strategy_dir, 0), "seed")
    model, detector = seed.model
    deployed = seed.bundle
    rows, batches, paid_total, weak_total = [], [], 0, 0
    for turn in range(1, turns + 1):
        if closed:
            batches.append(field_batch(seed.index, strategy, turn))
            simulate_and_ingest(
                world, params, batches[-1], {**field_spec(ex, turn), "bundle": str(deployed.folder)}
            )
        else:
            batches.append(f"field-{turn}")
        batch, paths, name = batches[-1], turn_paths(world, strategy_dir, turn, batches), f"turn-{turn}"
        # closed loop: the fleet's deployed model mines (its float twin); open: the latest model
        mining_model = deployed.int8.with_name("model_float.onnx") if closed else model
        if strategy == "self_training":
            picks, paid = pseudo_labels(
                mining_model, world.curated(batch), batch, context, ex["self_training"]
            )
        else:
            known = labeled_embeddings(
                mining_model, label_sets, context, int(ex["labeled_embedding_limit"]), cfg.seed
            )
            picks = mine_batch(
                mining_model,
                world.curated(batch),
                known,
                cfg,
                detector_cfg,
                policy=strategy,
                budget=int(ex["budget"]),
            )
            paid = annotator_labels(params, world, picks, turn, batch)
        weak = pl.DataFrame(schema=paid.schema)
        if ex["weak_labels"]:
            weak = weak_label_table(
                world.curated(batch), batch, cfg.weak_label_confidence_min, learning_params(params)
            ).filter(~pl.col("window_id").is_in(paid["window_id"].implode()))
        atomic_write_parquet(paths.labels(batch) / "labels.parquet", pl.concat([paid, weak]))
        label_sets = label_sets_of(paths, name)
        paid_total += 0 if strategy == "self_training" else paid.height  # pseudo-labels cost nothing
        weak_total += weak.height
        model, detector = train_and_export(params, paths, name)
        row = {
            "strategy": strategy,
            "turn": turn,
            "labels_spent": paid_total,
            "weak_labels": weak_total,
            "pseudo_labels": paid.height if strategy == "self_training" else 0,
            "paid_by_class": dict(paid.group_by("label").len().sort("label").iter_rows()),
            "picks_by_strategy": dict(picks.group_by("strategy").len().sort("strategy").iter_rows()),
            "thresholds": {k: detector.get(k) for k in ("strict_threshold", "lenient_threshold")},
            **evaluate_model(params, paths, name),
        }
        row.update(rare_counts(world, batch, picks["window_id"]))
        if closed:
            from bench.enrichment import rare_upload_share

            row["field_batch"], row["mined_with"] = batch, deployed.name
            row["uploads"] = rare_upload_share(world.raw(batch), world.truth(batch))
            lab = int(ex["rare_event"]["lab_windows"])
            candidate = make_bundle(params, paths, name, detector, label_sets, seed.model[0], lab)
            deployed, decision = release(params, world, candidate, deployed)
            row["release"] = {k: decision[k] for k in ("shipped", "candidate", "incumbent", "reason")}
            row["trigger"] = "rare_event_threshold" in candidate.detector
        rows.append(row)
        progress(f"{strategy} turn {turn}: false triggers/empty h {row['false_triggers_per_empty_hour']}")
    return rows, label_sets, (model, detector), batches


def rare_counts(world: Paths, batch: str, picked_ids: pl.Series) -> dict[str, int]:
    """Windows of a field batch (pool) and those picked, each with how many a rare event covers, by
    the annotator's truth (mining.oracle.rare_event_windows)."""
    from mining.oracle import rare_event_windows

    windows = pl.read_parquet(
        world.curated(batch) / "windows.parquet", columns=["window_id", "capture_id", "t_end_s"]
    )
    rare = rare_event_windows(windows, world.truth(batch))
    picked = windows["window_id"].is_in(picked_ids.implode()).to_numpy()
    return {"picked": int(picked.sum()), "rare_picked": int((rare & picked).sum()),
            "pool": windows.height, "pool_rare": int(rare.sum())}  # fmt: skip


def pseudo_labels(
    model: Path, curated: Path, batch: str, context: int, st: dict
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Self-training's labels for one field batch: the current model's confident predictions
    (mining.pseudo_labels) → (picks as mine_batch gives them, label table)."""
    from mining.pseudo_labels import pseudo_label_table
    from mining.scoring import score_pool

    scores, _ = score_pool(model, curated, context)
    table = pseudo_label_table(scores, batch, float(st["min_confidence"]), int(st["per_class"]))
    return table.select("window_id", "strategy"), table


def train_rare_trigger(
    params: dict,
    label_sets: list[tuple[Path, Path]],
    seed_onnx: Path,
    ship: tuple[Path, dict],
    out_dir: Path,
    lab_sample: int,
) -> tuple[Path, dict]:
    """Fit the rare-event trigger on the paid field labels; write a bundle folder → (folder, summary)."""
    from bench.enrichment import write_bundle_folder
    from mining.config import MiningConfig
    from mining.rare_event import detector_with_trigger, fit_trigger_on_labels

    cfg = MiningConfig.from_params(params)
    context = int(params["ingest"]["context_frames"])
    model, summary = fit_trigger_on_labels(cfg, context, label_sets, seed_onnx, ship[0], lab_sample)
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
    from bench.experiment_report import summarise, write_report

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
    closed = bool(ex.get("closed_loop"))
    data_info = [simulate_and_ingest(world, base, b, ex["batches"][b]) for b in ("seed", "eval")]
    data_info.append(simulate_only(world, base, "household", ex["batches"]["household"]))
    if closed:  # the release gate's own held-out batch, apart from the eval batch the report uses
        data_info.append(simulate_only(world, base, "release", ex["batches"]["release"]))
    progress("seed and eval batches")
    for turn in range(1, turns + 1):
        if not closed:  # open loop: one field batch per turn from factory units, shared by all
            data_info.append(simulate_and_ingest(world, base, f"field-{turn}", field_spec(ex, turn)))
        progress(f"field batch {turn}")
    run_stage_function("evaluate_baseline", base, world)
    cfar = evaluation_row(read_json(world.evaluation("cfar") / "cfar.json"))
    household = read_json(world.evaluation("cfar") / "household.json")
    cfar["household"] = {k: household.get(k) for k in HOUSEHOLD_KEYS}
    progress("CFAR baseline")

    seed_rows: list[dict] = []
    rows: list[dict] = []
    ceiling_rows: list[dict] = []
    rare: dict | None = None
    for s in range(seeds):
        p = run_params(params, ex, s)
        run_dir = world.root / f"seed-{s}"
        seed, row = seed_model(p, world, run_dir, s, closed)
        seed_rows.append({"seed": s, **row})
        progress(f"seed model {s}")
        mined: dict[str, list[str]] = {}
        for strategy in ex["strategies"]:
            strategy_rows, label_sets, last, mined[strategy] = run_strategy(
                p, ex, world, strategy, turns, seed, run_dir, progress
            )
            rows += [{"seed": s, **r} for r in strategy_rows]
            if s == 0 and strategy == "flywheel" and ex["rare_event"]["enabled"]:
                rare = measure_rare_trigger(p, ex, world, label_sets, seed.model[0], last, run_dir)
                progress(f"rare-event enrichment {rare.get('enrichment')}")
        if ex.get("ceiling"):  # every window of the fields the flywheel's fleet (else the first) uploaded
            fields = mined.get("flywheel") or next(iter(mined.values()))
            ceiling_rows.append({"seed": s, **run_ceiling(p, world, turns, run_dir, fields)})
            progress(
                "every window labelled: false triggers/empty h "
                f"{ceiling_rows[-1]['false_triggers_per_empty_hour']}"
            )
    results = summarise(ex, turns, seeds, seed_rows, rows, cfar, rare, data_info, ceiling_rows)
    write_report(results, out_dir)
    return results


def annotator_labels(
    params: dict, world: Paths, windows: pl.DataFrame, turn: int, batch: str
) -> pl.DataFrame:
    """Paid labels for windows of turn `turn`'s field batch from the simulated annotator (labeling.*)."""
    from mining.labels import label_windows

    lp = params["labeling"]
    return label_windows(
        windows,
        world.truth(batch),
        source="oracle",
        error_rate=float(lp["error_rate"]),
        seed=int(lp["seed"]) + turn,
        batch_id=batch,
    )


def run_ceiling(params: dict, world: Paths, turns: int, run_dir: Path, batches: list[str]) -> dict:
    """Train on the seed labels plus every window of every turn's field batch (annotator labels)."""
    seed_labels(params, world, run_dir / "every-window")
    paths = turn_paths(world, run_dir / "every-window", turns, batches)
    spent = 0
    for turn, batch in enumerate(batches[:turns], start=1):
        windows = pl.read_parquet(
            world.curated(batch) / "windows.parquet", columns=["window_id", "capture_id", "t_end_s"]
        )
        table = annotator_labels(params, world, windows, turn, batch)
        atomic_write_parquet(paths.labels(batch) / "labels.parquet", table)
        spent += table.height
    _, detector = train_and_export(params, paths, "every-window")
    return {
        "strategy": "every_window",
        "turn": turns,
        "labels_spent": spent,
        "thresholds": {k: detector.get(k) for k in ("strict_threshold", "lenient_threshold")},
        **evaluate_model(params, paths, "every-window"),
    }


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
    from bench.enrichment import measure_enrichment

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
