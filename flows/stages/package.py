"""Stage `package`: the release gate picks a model and a signed bundle is built around it."""

from __future__ import annotations

import time

from common.io import atomic_write_json, read_json
from common.paths import Paths
from flows.stages.base import MODELS, StageTemplate, lab_seed_outputs, record, seed_data, training_batches

RELEASE_FIGURES = (  # the shipped model's figures on the stress eval batch, in the manifest
    "false_triggers_per_empty_hour",
    "entry_recall",
    "entry_latency_median_s",
    "entry_latency_p95_s",
    "false_absences_per_occupied_hour",
)


def _release_evidence(paths: Paths, model: str):
    from deploy.release_gate import ModelEvidence

    gate = read_json(paths.evaluation(model) / "int8_gate.json")
    return ModelEvidence(model, read_json(paths.evaluation(model) / "int8.json"), bool(gate["passed"]))


def release_decision(params: dict, paths: Paths) -> tuple[dict, dict]:
    """The release gate over the turn's models (deploy.release_gate): (decision, the shipped model's
    int8 evaluation on the eval batch)."""
    from deploy.release_gate import ReleaseRules, decide_release

    rules = ReleaseRules.from_dict(params["package"]["release"])
    evidence = {m: _release_evidence(paths, m) for m in ("retrained", "seed")}
    decision = decide_release(evidence["retrained"], evidence["seed"], rules)
    return decision, evidence[decision["shipped"]].evaluation


def package(params: dict, paths: Paths) -> dict:
    """Sign a bundle: the model the release gate picks (int8), rare-event trigger, front-end/detector/MBDP/
    calibration configs, test vectors, lineage; release_gate.json beside it says which model and why."""
    import numpy as np
    import polars as pl

    from common.params import params_hash
    from deploy.packaging import package_bundle
    from flows.lineage import data_hashes, git_revision
    from mining.pool import gather_windows, open_frames
    from mining.rare_event import detector_with_trigger
    from runtime.calibration import CalibrationConfig
    from runtime.mbdp import bundle_tuning

    started = time.perf_counter()
    pk = params["package"]
    release, evaluation = release_decision(params, paths)
    shipped = release["shipped"]
    model_dir = paths.model(shipped)
    rows = pl.read_parquet(paths.curated("eval") / "windows.parquet", columns=["end_row"])[
        "end_row"
    ].to_numpy()
    pick = np.linspace(0, len(rows) - 1, num=min(len(rows), int(pk["test_vectors"]))).astype(np.int64)
    test_inputs = gather_windows(
        open_frames(paths.curated("eval")), rows[pick], int(params["ingest"]["context_frames"])
    )
    batches = training_batches(paths, shipped, seed_data(params))
    trained_on = [p for b in batches for p in (paths.curated(b), paths.labels(b))]
    detector = read_json(model_dir / "checkpoint" / "detector.json")
    extra: dict = {}
    trigger = read_json(paths.model("rare_event") / "summary.json")
    if "threshold" in trigger:
        extra["rare_event.onnx"] = paths.model("rare_event") / "rare_event.onnx"
        detector = detector_with_trigger(detector, trigger["threshold"])
    calibration = CalibrationConfig.from_dict(params["calibration"]["config"])
    manifest = package_bundle(
        model_int8=model_dir / "onnx" / "model_int8.onnx",
        frontend=params["frontend"],
        detector=detector,
        mbdp=bundle_tuning(pk["profile"]),
        calibration=calibration.to_dict(),
        test_inputs=test_inputs,
        metrics={k: evaluation.get(k) for k in RELEASE_FIGURES},
        lineage={
            "git_revision": git_revision(),
            "data_hashes": data_hashes(trained_on),
            # the params this stage is handed (its declared keys): what the bundle's own contents depend on
            "params_hash": params_hash(params),
        },
        package_params={**pk, "self_test_atol": params["deploy"]["self_test_atol"]},
        out_path=paths.bundle,
        extra_files=extra,
        release={"model": shipped, "candidate": release["candidate"], "reason": release["reason"]},
    )
    atomic_write_json(paths.bundle_dir / "release_gate.json", release)
    summary = {
        "version": manifest["version"],
        "release_counter": manifest["release_counter"],
        "files": len(manifest["files"]),
        "model": shipped,
        "release_gate": release["reason"],
        "rare_event_trigger": "threshold" in trigger,
    }
    return record(paths.bundle_dir, "package", started, summary)


TEMPLATES = (
    StageTemplate(
        "package",
        package,
        lambda p: [
            *(p.model(m) / part for m in MODELS for part in ("checkpoint", "onnx")),
            p.model("rare_event"),
            *(p.evaluation(m) for m in MODELS),
            p.curated("eval"),
            *(p.curated(b) for b in training_batches(p, "retrained")),  # hashed into the lineage
            *(p.labels(b) for b in training_batches(p, "retrained")),
            *lab_seed_outputs(p),
        ],
        lambda p: [p.bundle_dir],
        (
            "package",
            "frontend",
            "calibration.config",
            "deploy.self_test_atol",
            "ingest.context_frames",
            "turn.seed_data",
        ),
    ),
)
