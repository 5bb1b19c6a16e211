"""Stage families `evaluate@<model>` and `evaluate_baseline`: detectors on the held-out eval sets.

Both eval sets (docs/evaluation.md): the stress mix (batch `eval`: float and int8 side by side, the
detection-error trade-off, the int8 gate) and household days (batch `household`: the int8 model as
shipped). Per-episode rows go beside every summary."""

from __future__ import annotations

import time

from common.io import atomic_write_json, atomic_write_jsonl, read_json
from common.paths import Paths
from flows.stages.base import HELD_OUT, MODELS, StageTemplate, record

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
    household days."""
    from runtime.frontend import FrontendConfig
    from training.evaluate import compare_models, evaluate_detector_rows

    started = time.perf_counter()
    out = paths.evaluation(model)
    onnx = paths.model(model) / "onnx"
    detector = read_json(paths.model(model) / "checkpoint" / "detector.json")
    frontend = FrontendConfig.from_dict(params["frontend"])
    both = compare_models(
        onnx / "model_float.onnx",
        onnx / "model_int8.onnx",
        frontend,
        detector,
        paths.raw("eval"),
        paths.truth("eval"),
        det_thresholds=params["evaluation"]["det_thresholds"],
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
    household, rows = evaluate_detector_rows(
        onnx / "model_int8.onnx", frontend, detector, paths.raw("household"), paths.truth("household")
    )
    atomic_write_json(out / "household.json", household)
    atomic_write_jsonl(out / "household_episodes.jsonl", rows)
    headline = _headline({**{v: both[v] for v in ("float", "int8")}, "household": household})
    return record(out, f"evaluate@{model}", started, {**headline, "int8_gate": gate})


def evaluate_baseline(params: dict, paths: Paths) -> dict:
    """The conventional detector (Doppler band energy against CFAR, runtime.cfar) on the same eval sets."""
    from runtime.cfar import CfarConfig
    from training.evaluate import evaluate_cfar_rows

    started = time.perf_counter()
    out = paths.evaluation("cfar")
    cfar = CfarConfig.from_params(params)  # runtime.cfar + the front-end's hop and axis
    result, rows = evaluate_cfar_rows(
        paths.raw("eval"),
        paths.truth("eval"),
        params["frontend"],
        cfar,
        det_thresholds_db=params["evaluation"]["cfar_det_thresholds_db"],
    )
    atomic_write_json(out / "cfar.json", result)
    atomic_write_jsonl(out / "episodes.jsonl", rows)
    household, rows = evaluate_cfar_rows(
        paths.raw("household"), paths.truth("household"), params["frontend"], cfar
    )
    atomic_write_json(out / "household.json", household)
    atomic_write_jsonl(out / "household_episodes.jsonl", rows)
    return record(out, "evaluate_baseline", started, _headline({"cfar": result, "household": household}))


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
    ),
    StageTemplate(
        "evaluate_baseline",
        evaluate_baseline,
        lambda p: _held_out(p),
        lambda p: [p.evaluation("cfar")],
        ("frontend", "runtime.cfar", "evaluation.cfar_det_thresholds_db"),
    ),
)
