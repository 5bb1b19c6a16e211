"""Stage families `evaluate@<model>` and `evaluate_baseline`: detectors on the held-out eval sets.

Both eval sets (docs/evaluation.md): the stress mix (batch `eval`: float and int8 side by side, the
detection-error trade-off, the int8 gate) and household days (batch `household`: the int8 model as
shipped). Per-episode rows go beside every summary. Both stages split by device (Shards): each device's
streams of either eval set are one shard, merged in device order."""

from __future__ import annotations

import time

from common.io import atomic_write_json, atomic_write_jsonl, read_json
from common.paths import Paths
from flows.stages.base import HELD_OUT, MODELS, Shards, StageTemplate, by_batch, record

HEADLINE = (  # the figures each stage record carries (training.metrics)
    "false_triggers_per_empty_hour",
    "false_triggers_per_device_day",
    "entry_recall",
    "entry_latency_median_s",
    "entry_latency_p95_s",
    "false_absences_per_occupied_hour",
)


def evaluate(params: dict, paths: Paths, model: str) -> dict:
    """Float and int8 detectors of one model on the stress eval batch, same counting rules, side by side:
    figures with the detection-error trade-off, per-episode rows, the int8 gate; then the int8 model on
    household days. (Its shards in one process: evaluate_shards, evaluate_shard, evaluate_merge.)"""
    started = time.perf_counter()
    parts = [evaluate_shard(params, paths, s, model) for s in evaluate_shards(params, paths, model)]
    return evaluate_merge(params, paths, parts, started, model)


def evaluate_shards(params: dict, paths: Paths, model: str) -> list[dict]:
    """One shard per device of each eval set (training.evaluate.list_shards)."""
    return _held_out_shards(paths)


def evaluate_shard(params: dict, paths: Paths, shard: dict, model: str) -> dict:
    """One device's streams: float and int8 side by side on the stress mix, the int8 model on household
    days."""
    from runtime.frontend import FrontendConfig
    from training.evaluate import run_models_shard

    onnx = paths.model(model) / "onnx"
    detector = read_json(paths.model(model) / "checkpoint" / "detector.json")
    frontend = FrontendConfig.from_dict(params["frontend"])
    batch = shard["batch"]
    if batch == "eval":
        models = {"float": onnx / "model_float.onnx", "int8": onnx / "model_int8.onnx"}
        thresholds = params["evaluation"]["det_thresholds"]
    else:
        models, thresholds = {"int8": onnx / "model_int8.onnx"}, ()
    part = run_models_shard(
        models, frontend, detector, paths.raw(batch), paths.truth(batch), shard["shard"], thresholds
    )
    return {"batch": batch, "part": part}


def evaluate_merge(params: dict, paths: Paths, parts: list[dict], started: float, model: str) -> dict:
    from training.evaluate import compare_figures, merge_shards, models_figures

    out = paths.evaluation(model)
    detector = read_json(paths.model(model) / "checkpoint" / "detector.json")
    groups = by_batch(parts)
    both = compare_figures(
        merge_shards(groups["eval"], paths.raw("eval")), detector, params["evaluation"]["det_thresholds"]
    )
    for variant in ("float", "int8"):
        atomic_write_json(out / f"{variant}.json", both[variant])
    atomic_write_jsonl(out / "episodes.jsonl", both["rows"]["int8"])
    gate = {
        "decision_agreement": both["decision_agreement"],
        "target": float(params["quantize"]["agreement_target"]),
        "n_frames": both["n_frames"],
    }
    gate["passed"] = gate["decision_agreement"] is not None and gate["decision_agreement"] >= gate["target"]
    atomic_write_json(out / "int8_gate.json", gate)
    int8 = models_figures(merge_shards(groups["household"], paths.raw("household")), ["int8"], detector)
    household, rows = int8["int8"]["metrics"], int8["int8"]["rows"]
    atomic_write_json(out / "household.json", household)
    atomic_write_jsonl(out / "household_episodes.jsonl", rows)
    headline = _headline({**{v: both[v] for v in ("float", "int8")}, "household": household})
    return record(out, f"evaluate@{model}", started, {**headline, "int8_gate": gate})


def evaluate_baseline(params: dict, paths: Paths) -> dict:
    """The conventional detector (Doppler band energy against CFAR, runtime.cfar) on the same eval sets.
    (Its shards in one process: baseline_shards, baseline_shard, baseline_merge.)"""
    started = time.perf_counter()
    parts = [baseline_shard(params, paths, s) for s in baseline_shards(params, paths)]
    return baseline_merge(params, paths, parts, started)


def baseline_shards(params: dict, paths: Paths) -> list[dict]:
    return _held_out_shards(paths)


def baseline_shard(params: dict, paths: Paths, shard: dict) -> dict:
    from runtime.cfar import CfarConfig
    from training.evaluate import run_cfar_shard

    cfar = CfarConfig.from_params(params)  # runtime.cfar + the front-end's hop and axis
    batch = shard["batch"]
    thresholds = params["evaluation"]["cfar_det_thresholds_db"] if batch == "eval" else ()
    part = run_cfar_shard(
        paths.raw(batch), paths.truth(batch), params["frontend"], cfar, shard["shard"], thresholds
    )
    return {"batch": batch, "part": part}


def baseline_merge(params: dict, paths: Paths, parts: list[dict], started: float) -> dict:
    from runtime.cfar import CfarConfig
    from training.evaluate import cfar_figures, merge_shards

    out = paths.evaluation("cfar")
    cfar = CfarConfig.from_params(params)
    groups = by_batch(parts)
    result, rows = cfar_figures(
        merge_shards(groups["eval"], paths.raw("eval")),
        params["frontend"],
        cfar,
        det_thresholds_db=params["evaluation"]["cfar_det_thresholds_db"],
    )
    atomic_write_json(out / "cfar.json", result)
    atomic_write_jsonl(out / "episodes.jsonl", rows)
    household, rows = cfar_figures(
        merge_shards(groups["household"], paths.raw("household")), params["frontend"], cfar
    )
    atomic_write_json(out / "household.json", household)
    atomic_write_jsonl(out / "household_episodes.jsonl", rows)
    return record(out, "evaluate_baseline", started, _headline({"cfar": result, "household": household}))


def _held_out_shards(paths: Paths) -> list[dict]:
    from training.evaluate import list_shards

    return [{"batch": b, "shard": s} for b in HELD_OUT for s in list_shards(paths.raw(b))]


def _headline(results: dict) -> dict:
    return {name: {k: r.get(k) for k in HEADLINE} for name, r in results.items()}


def _held_out(p: Paths) -> list:
    return [d for b in HELD_OUT for d in (p.raw(b), p.truth(b))]


TEMPLATES = (
    StageTemplate(
        "evaluate",
        evaluate,
        lambda p, m: [p.model(m) / "checkpoint", p.model(m) / "onnx", *_held_out(p)],
        lambda p, m: [p.evaluation(m)],
        ("frontend", "evaluation.det_thresholds", "quantize.agreement_target"),
        items=MODELS,
        shards=Shards(evaluate_shards, evaluate_shard, evaluate_merge),
    ),
    StageTemplate(
        "evaluate_baseline",
        evaluate_baseline,
        lambda p: _held_out(p),
        lambda p: [p.evaluation("cfar")],
        ("frontend", "runtime.cfar", "evaluation.cfar_det_thresholds_db"),
        shards=Shards(baseline_shards, baseline_shard, baseline_merge),
    ),
)
