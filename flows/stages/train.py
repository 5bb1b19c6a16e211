"""Stage families `train@<model>` and `export@<model>`: a checkpoint, then float and int8 ONNX."""

from __future__ import annotations

import time

from common.io import atomic_write_json
from common.paths import Paths
from flows.stages.base import MODELS, StageTemplate, lab_seed_outputs, record, seed_data, training_batches


def train(params: dict, paths: Paths, model: str) -> dict:
    from training.config import TrainRun
    from training.datamodule import TrainingBatch
    from training.train import train_classifier

    started = time.perf_counter()
    batches = [
        TrainingBatch(paths.curated(b), paths.labels(b) / "labels.parquet")
        for b in training_batches(paths, model, seed_data(params))
    ]
    out = paths.model(model) / "checkpoint"
    metrics = train_classifier(batches, TrainRun.from_params(params), out)
    return record(out, f"train@{model}", started, metrics)


def export(params: dict, paths: Paths, model: str) -> dict:
    """Float ONNX, int8 QDQ ONNX (calibrated on training windows) and the DSP budget check."""
    from training.budget import check_budget
    from training.config import ExportConfig, QuantizeConfig
    from training.export import export_onnx
    from training.quantize import quantize_int8

    started = time.perf_counter()
    out = paths.model(model) / "onnx"
    q = QuantizeConfig.from_params(params)
    seed = int(params["training"]["seed"])
    export_onnx(
        paths.model(model) / "checkpoint" / "model.ckpt",
        out / "model_float.onnx",
        ExportConfig.from_params(params),
        seed,
    )
    # calibration: a seeded sample of training windows, spread over every batch the model learned from
    calibration = _sample_windows(
        params, paths, training_batches(paths, model, seed_data(params)), q.calibration_windows
    )
    gate = _sample_windows(params, paths, ("eval",), q.gate_windows)
    profile = params["package"]["profile"]
    quant = quantize_int8(
        out / "model_float.onnx", calibration, out / "model_int8.onnx", q, gate_windows=gate, profile=profile
    )
    budget = check_budget(out / "model_int8.onnx", profile)
    atomic_write_json(out / "quantization.json", quant)
    atomic_write_json(out / "budget.json", budget)
    return record(out, f"export@{model}", started, {"quantization": quant, "budget": budget})


def _sample_windows(params: dict, paths: Paths, batches: tuple[str, ...], n: int):
    """A seeded sample of n windows spread over the curated batches."""
    import numpy as np
    import polars as pl

    from mining.pool import gather_windows, open_frames

    context = int(params["ingest"]["context_frames"])
    rng = np.random.default_rng(int(params["training"]["seed"]))
    parts = []
    for b in batches:
        rows = pl.read_parquet(paths.curated(b) / "windows.parquet", columns=["end_row"])[
            "end_row"
        ].to_numpy()
        take = np.sort(rng.choice(len(rows), size=min(len(rows), n // len(batches)), replace=False))
        parts.append(gather_windows(open_frames(paths.curated(b)), rows[take], context))
    return np.concatenate(parts)


TEMPLATES = (
    StageTemplate(
        "train",
        train,
        lambda p, m: (
            [p.curated(b) for b in training_batches(p, m)]
            + [p.labels(b) for b in training_batches(p, m)]
            + lab_seed_outputs(p)
        ),
        lambda p, m: [p.model(m) / "checkpoint"],
        (
            "training",
            "detector",
            "ingest.context_frames",
            "ingest.window_stride",
            "frontend",
            "turn.seed_data",
        ),
        items=MODELS,
    ),
    StageTemplate(
        "export",
        export,
        lambda p, m: [
            p.model(m) / "checkpoint",
            *(p.curated(b) for b in (*training_batches(p, m), "eval")),
            *lab_seed_outputs(p),
        ],
        lambda p, m: [p.model(m) / "onnx"],
        (
            "quantize",
            "package.profile",
            "training.seed",
            "training.export",
            "ingest.context_frames",
            "turn.seed_data",
        ),
        items=MODELS,
    ),
)
