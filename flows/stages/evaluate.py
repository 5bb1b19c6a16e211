"""Stage families `evaluate@<model>` and `evaluate_baseline`: detectors on the held-out eval batch."""

from __future__ import annotations

import time

from common.io import atomic_write_json, read_json
from common.paths import Paths
from flows.stages.base import MODELS, StageTemplate, record


def evaluate(params: dict, paths: Paths, model: str) -> dict:
    """Float and int8 detectors of one model on the held-out eval batch, same counting rules, side by side."""
    from runtime.frontend import FrontendConfig
    from training.evaluate import compare_models

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
    )
    for variant in ("float", "int8"):
        atomic_write_json(out / f"{variant}.json", both[variant])
    gate = {
        "decision_agreement": both["decision_agreement"],
        "target": float(params["quantize"]["agreement_target"]),
        "n_frames": both["n_frames"],
    }
    gate["passed"] = gate["decision_agreement"] is not None and gate["decision_agreement"] >= gate["target"]
    atomic_write_json(out / "int8_gate.json", gate)
    headline = _headline({v: both[v] for v in ("float", "int8")})
    return record(out, f"evaluate@{model}", started, {**headline, "int8_gate": gate})


def evaluate_baseline(params: dict, paths: Paths) -> dict:
    """The conventional detector (Doppler band energy against CFAR) on the same eval batch."""
    from runtime.cfar import CfarConfig
    from runtime.frontend import FrontendConfig
    from training.evaluate import evaluate_cfar

    started = time.perf_counter()
    out = paths.evaluation("cfar")
    result = evaluate_cfar(
        paths.raw("eval"),
        paths.truth("eval"),
        FrontendConfig.from_dict(params["frontend"]),
        CfarConfig.from_params(params),  # runtime.cfar + the front-end's hop and axis
    )
    atomic_write_json(out / "cfar.json", result)
    return record(out, "evaluate_baseline", started, _headline({"cfar": result}))


def _headline(results: dict) -> dict:
    keys = ("false_alarms_per_hour", "recall_major", "recall_minor", "median_latency_s")
    return {name: {k: r.get(k) for k in keys} for name, r in results.items()}


TEMPLATES = (
    StageTemplate(
        "evaluate",
        evaluate,
        lambda p, m: [p.model(m) / "checkpoint", p.model(m) / "onnx", p.raw("eval"), p.truth("eval")],
        lambda p, m: [p.evaluation(m)],
        ("frontend", "quantize.agreement_target"),
        items=MODELS,
    ),
    StageTemplate(
        "evaluate_baseline",
        evaluate_baseline,
        lambda p: [p.raw("eval"), p.truth("eval")],
        lambda p: [p.evaluation("cfar")],
        ("frontend", "runtime.cfar"),
    ),
)
