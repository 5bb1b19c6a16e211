"""The detector a simulator benchmark runs: the last turn's bundle when there is one, else one trained
for the occasion through the real stage functions (flows.stages), so every figure comes from the
device pipeline. Shared by `flywheel bench runtime` (latency, duty cycle) and `bench mbdp` (music).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.params import deep_merge


@dataclass
class DeviceModel:
    model: bytes  # int8 ONNX
    frontend: dict[str, Any]
    detector: dict[str, Any]
    description: dict[str, Any]  # where it came from, for the bench JSON
    bundle: Path | None = None


def bench_section(section: dict, quick: bool) -> dict[str, Any]:
    """A bench's params section with its `quick` overrides merged in when quick."""
    b = copy.deepcopy(section)
    over = b.pop("quick", None) or {}
    return deep_merge(b, over) if quick else b


def bundle_model(params: dict, templates: list[str]) -> DeviceModel | None:
    """The first bundle of `templates` ("data/bundles/{turn}/bundle.tar") that exists, or None."""
    from runtime.detector import RARE_EVENT_THRESHOLD_KEY
    from training.evaluate import read_bundle_payload

    for template in templates or []:
        path = Path(str(template).format(turn=params["turn"]["id"]))
        if path.exists():
            model, frontend, detector = read_bundle_payload(path)
            # the rare-event trigger's threshold is the one key that is not the state machine's
            detector = {k: v for k, v in detector.items() if k != RARE_EVENT_THRESHOLD_KEY}
            return DeviceModel(model, frontend, detector, {"source": "bundle", "bundle": str(path)}, path)
    return None


def train_model(params: dict, t: dict, work: Path, training_preset: str = "seed", kinds=None) -> DeviceModel:
    """An int8 model through flows.stages on a small simulated batch, every window labeled from truth.

    t: devices, hours, seed (the training batch), eval_hours, eval_seed (held-out windows the export's
    int8 gate runs on), epochs, optional batch_size, calibration_windows, optional gate_windows.
    training_preset "seed" is the lab protocol; "eval" gives eval-like episodes, restricted to `kinds`.
    """
    from common.io import read_json
    from common.paths import Paths
    from flows import stages

    p = copy.deepcopy(params)
    p["simulate"]["batches"]["seed"] = {
        "preset": training_preset,
        "devices": int(t["devices"]),
        "hours": float(t["hours"]),
        "seed": int(t["seed"]),
    }
    p["simulate"]["batches"]["eval"] = {
        "preset": "eval",
        "devices": int(t.get("eval_devices", 1)),
        "hours": float(t["eval_hours"]),
        "seed": int(t["eval_seed"]),
    }
    if kinds is not None:
        p["simulate"]["eval"]["kinds"] = list(kinds)
    p["training"].update(epochs=int(t["epochs"]), progress_bar=False)
    if "batch_size" in t:
        p["training"]["batch_size"] = int(t["batch_size"])
    p["quantize"]["calibration_windows"] = int(t["calibration_windows"])
    if "gate_windows" in t:
        p["quantize"]["gate_windows"] = int(t["gate_windows"])
    paths = Paths(root=work / "data", turn=str(params["turn"]["id"]))
    started = time.perf_counter()
    for batch in ("seed", "eval"):
        stages.simulate(p, paths, batch)
        stages.ingest(p, paths, batch)
    stages.label_seed(p, paths)  # every window labeled from the truth, without error
    metrics = stages.train(p, paths, "seed")["summary"]
    stages.export(p, paths, "seed")
    return DeviceModel(
        (paths.model("seed") / "onnx" / "model_int8.onnx").read_bytes(),
        dict(p["frontend"]),
        read_json(paths.model("seed") / "checkpoint" / "detector.json"),
        {
            "source": f"trained (flows.stages on a {training_preset} batch, int8)",
            "training_batch": p["simulate"]["batches"]["seed"],
            "kinds": None if kinds is None else list(kinds),
            "epochs": int(t["epochs"]),
            "val_accuracy": metrics.get("val_accuracy"),
            "val_recall": metrics.get("val_recall"),
            "thresholds": metrics.get("thresholds"),
            "train_seconds": round(time.perf_counter() - started, 1),
        },
    )
