"""Stages that decide what gets labelled and label it: label_seed, mine, label_field, rare_event."""

from __future__ import annotations

import time
from pathlib import Path

from common.io import atomic_write_json
from common.paths import Paths
from flows.stages.base import (
    Shards,
    StageTemplate,
    by_batch,
    lab_seed_outputs,
    record,
    seed_data,
    training_batches,
)


def label_seed(params: dict, paths: Paths) -> dict:
    """Lab collection comes with its protocol's labels: every seed window, labeled without error."""
    from common.io import atomic_write_parquet
    from flows.stages.lab_seed import windows_to_label
    from mining.labels import label_windows

    started = time.perf_counter()
    windows = windows_to_label(paths.curated("seed"), params)  # + stream-start windows when deciding there
    table = label_windows(
        windows,
        paths.truth("seed"),
        source="lab",
        error_rate=0.0,
        seed=params["labeling"]["seed"],
        batch_id="seed",
    )
    atomic_write_parquet(paths.labels("seed") / "labels.parquet", table)
    counts = dict(table.group_by("label").len().sort("label").iter_rows())
    return record(paths.labels("seed"), "label_seed", started, {"labels": table.height, "by_class": counts})


def mine(params: dict, paths: Paths) -> dict:
    """Score the field pool with the seed model and pick windows to label within the budget. (Its shards
    in one process: mine_shards, mine_shard, mine_merge.)"""
    started = time.perf_counter()
    parts = [mine_shard(params, paths, s) for s in mine_shards(params, paths)]
    return mine_merge(params, paths, parts, started)


POOLS = ("seed", "field")  # the labelled pool (its embeddings) and the pool to mine


def mine_shards(params: dict, paths: Paths) -> list[dict]:
    """Both pools in shards of a fixed number of windows (mining.scoring.pool_shards)."""
    from mining.scoring import pool_shards

    return [{"batch": b, "shard": s} for b in POOLS for s in pool_shards(paths.curated(b))]


def mine_shard(params: dict, paths: Paths, shard: dict) -> dict:
    """One shard of a pool scored by the seed model: probabilities and embeddings."""
    from mining.scoring import score_pool_shard
    from runtime.detector import DetectorConfig

    model = paths.model("seed") / "onnx" / "model_float.onnx"
    context = DetectorConfig.from_params(params).context_frames
    part = score_pool_shard(model, paths.curated(shard["batch"]), context, shard["shard"])
    return {"batch": shard["batch"], "part": part}


def mine_merge(params: dict, paths: Paths, parts: list[dict], started: float) -> dict:
    from common.io import atomic_write_parquet
    from mining.config import MiningConfig
    from mining.scoring import merge_pool_parts
    from mining.select import pick_windows
    from runtime.detector import DetectorConfig

    detector = DetectorConfig.from_params(params)
    groups = by_batch(parts)
    _, labeled_embeddings = merge_pool_parts(paths.curated("seed"), groups.get("seed", []))
    scores, embeddings = merge_pool_parts(paths.curated("field"), groups.get("field", []))
    picks = pick_windows(
        scores,
        embeddings,
        paths.curated("field"),
        labeled_embeddings,
        MiningConfig.from_params(params),
        detector,
    )
    out = paths.labels("field-picks")
    atomic_write_parquet(out / "picks.parquet", picks)
    by_strategy = dict(picks.group_by("strategy").len().sort("strategy").iter_rows())
    summary = {
        "picks": picks.height,
        "by_strategy": by_strategy,
        "pool_windows": _pool_size(paths.curated("field")),
    }
    return record(out, "mine", started, summary)


def _pool_size(curated_dir: Path) -> int:
    import polars as pl

    return pl.scan_parquet(curated_dir / "windows.parquet").select(pl.len()).collect().item()


def label_field(params: dict, paths: Paths) -> dict:
    """Paid labels for the picks (simulated annotator) plus weak labels from the dialogue logs."""
    import polars as pl

    from common.io import atomic_write_parquet
    from mining.failure_points import learning_params
    from mining.labels import label_windows, weak_label_table

    started = time.perf_counter()
    picks = pl.read_parquet(paths.labels("field-picks") / "picks.parquet")
    lp = params["labeling"]
    paid = label_windows(
        picks,
        paths.truth("field"),
        source="oracle",
        error_rate=float(lp["error_rate"]),
        seed=int(lp["seed"]),
        batch_id="field",
    )
    weak = weak_label_table(
        paths.curated("field"),
        "field",
        float(params["mining"]["weak_label_confidence_min"]),
        learning_params(params),
    )
    weak = weak.filter(~pl.col("window_id").is_in(paid["window_id"].implode()))
    table = pl.concat([paid, weak])
    atomic_write_parquet(paths.labels("field") / "labels.parquet", table)
    summary = {
        "paid_labels": paid.height,
        "weak_labels": weak.height,
        "paid_by_class": dict(paid.group_by("label").len().sort("label").iter_rows()),
        "weak_by_source": dict(weak.group_by("source").len().sort("source").iter_rows()),
    }
    return record(paths.labels("field"), "label_field", started, summary)


def rare_event(params: dict, paths: Paths) -> dict:
    """The rare-event capture trigger, fit on the paid labels; shipped in the bundle when it trained."""
    from common.io import atomic_write_bytes
    from mining.config import MiningConfig
    from mining.rare_event import fit_trigger_on_labels

    started = time.perf_counter()
    out = paths.model("rare_event")
    label_sets = [
        (paths.curated(b), paths.labels(b) / "labels.parquet")
        for b in training_batches(paths, "retrained", seed_data(params))
    ]
    try:
        cfg = MiningConfig.from_params(params)
        model, summary = fit_trigger_on_labels(
            cfg,
            int(params["ingest"]["context_frames"]),
            label_sets,
            seed_model=paths.model("seed") / "onnx" / "model_float.onnx",
            ship_model=paths.model("retrained") / "onnx" / "model_int8.onnx",
            lab_sample=cfg.rare_event.lab_windows,
        )
        atomic_write_bytes(out / "rare_event.onnx", model)
    except ValueError as exc:  # e.g. mining bought no hard negative: nothing to learn, ship without it
        summary = {"error": str(exc)}
    atomic_write_json(out / "summary.json", summary)
    return record(out, "rare_event", started, summary)


TEMPLATES = (
    StageTemplate(
        "label_seed",
        label_seed,
        lambda p: [p.curated("seed"), p.truth("seed")],
        lambda p: [p.labels("seed")],
        ("labeling", "detector.stream_start", "ingest.context_frames", "ingest.window_stride", "frontend"),
    ),
    StageTemplate(
        "mine",
        mine,
        lambda p: [p.model("seed") / "onnx", p.curated("seed"), p.curated("field")],
        lambda p: [p.labels("field-picks")],
        ("mining", "detector", "ingest.context_frames", "frontend.hop", "frontend.baseband_fs_hz"),
        shards=Shards(mine_shards, mine_shard, mine_merge),
    ),
    StageTemplate(
        "label_field",
        label_field,
        lambda p: [p.labels("field-picks"), p.truth("field"), p.curated("field")],
        lambda p: [p.labels("field")],
        ("labeling", "mining.weak_label_confidence_min", "mining.self_learning", "ingest.sessions.gap_s"),
    ),
    StageTemplate(
        "rare_event",
        rare_event,
        lambda p: [
            p.labels("seed"),
            p.labels("field"),
            p.curated("seed"),
            p.curated("field"),
            p.model("seed") / "onnx",
            p.model("retrained") / "onnx",
            *lab_seed_outputs(p),
        ],
        lambda p: [p.model("rare_event")],
        ("mining", "ingest.context_frames", "turn.seed_data"),
    ),
)
