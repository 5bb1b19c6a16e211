"""`flywheel bench lab`: detection on imported lab recordings by clip length, per stream-start mode.

Writes a synthetic lab session (fleet.lab_recording: 44.1 kHz WAVs with a 20 kHz tone; motion takes
in each length bucket of bench.lab.lengths_s, and takes with nobody moving), imports it with
`ingest.lab_import.import_lab` (carrier estimated from the spectrum), and runs a bundle's detector
over it (training.evaluate: each clip a stream of its own, its take one episode) once per
stream-start mode of runtime.detector (bench.lab.modes), and the same for seed models trained on a
lab session of their own (bench.lab.train: the lab-seed path, one model per stream-start mode it is
trained and run with). Figures per mode: entry recall and median latency per length bucket
(training.metrics: the arrival is the motion's onset in the clip), false triggers on the takes
without motion, and the carrier estimate's worst error.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from common.io import atomic_write_bytes, atomic_write_text
from ingest.config import IngestConfig, LabImportConfig
from ingest.lab_import import import_lab
from runtime.detector import DetectorConfig
from runtime.frontend import FrontendConfig


def bucket_name(lo: float, hi: float) -> str:
    return f"{lo:g}-{hi:g}s"


def write_session(takes, src: Path) -> Path:
    """The takes as WAV files under src and their labels CSV; returns the CSV's path."""
    from fleet.lab_recording import labels_csv, render_take, wav_bytes

    for name, take in takes:
        atomic_write_bytes(src / name, wav_bytes(render_take(take), take.fs_hz))
    atomic_write_text(src.parent / "labels.csv", labels_csv(takes))
    return src.parent / "labels.csv"


def _bundle(params: dict) -> Path | None:
    for pattern in params["bench"]["lab"]["bundles"]:
        path = Path(pattern.format(turn=params["turn"]["id"]))
        if path.exists():
            return path
    return None


def import_session(root: Path, name: str, takes, params: dict) -> tuple[Path, Path, dict]:
    """Write and import one session as batch `name` under root; (raw dir, truth dir, import summary)."""
    csv_path = write_session(takes, root / f"src-{name}")
    raw, truth = root / "raw" / name, root / "truth" / name
    summary = import_lab(
        root / f"src-{name}", raw, truth, LabImportConfig.from_params(params), labels_csv=csv_path
    )
    return raw, truth, summary


def mode_figures(evaluation, durations: dict, lengths, prefix: str) -> dict:
    """Entry recall and median latency per length bucket, false triggers on takes without motion."""
    from training.evaluate import Evaluation, metrics_of

    figures = {}
    for lo, hi in lengths:
        part = [
            s for s in evaluation.streams
            if any(e.is_presence for e in s.episodes) and lo <= durations[s.stream_id] < hi
        ]  # fmt: skip
        m, _ = metrics_of(Evaluation(part))
        figures[f"{prefix}.entry_recall.{bucket_name(lo, hi)}"] = m["entry_recall"]
        figures[f"{prefix}.latency_median_s.{bucket_name(lo, hi)}"] = m["entry_latency_median_s"]
    empty = [s for s in evaluation.streams if not any(e.is_presence for e in s.episodes)]
    m, _ = metrics_of(Evaluation(empty))
    figures[f"{prefix}.false_triggers.empty_takes"] = m["false_triggers"]
    figures[f"{prefix}.empty_takes"] = len(empty)
    return figures


def train_on_lab(root: Path, params: dict, mode: str, quick: bool) -> tuple[Path, dict]:
    """A seed model trained on a lab session of its own (the lab-seed path: ingest, label from the
    recordings' labels, train, export) with detector.stream_start = mode; (float ONNX, detector.json)."""
    import copy

    from common.io import atomic_write_parquet, read_json
    from flows.stages.lab_seed import windows_to_label
    from ingest.pipeline import ingest_batch
    from mining.labels import label_windows
    from training.config import TrainRun
    from training.datamodule import TrainingBatch
    from training.export import export_onnx
    from training.train import train_classifier

    cfg = params["bench"]["lab"]["train"]
    p = copy.deepcopy(params)
    p["detector"]["stream_start"] = mode
    p["training"].update({"epochs": int(cfg["epochs_quick" if quick else "epochs"]), "progress_bar": False})
    name = "labtrain"
    curated = root / "curated" / name
    if not curated.exists():
        from fleet.lab_recording import lab_session

        n = int(cfg["takes_quick" if quick else "takes"])
        takes = lab_session(
            [list(map(float, b)) for b in params["bench"]["lab"]["lengths_s"]], n, n, int(cfg["seed"])
        )
        raw, _, _ = import_session(root, name, takes, p)
        ingest_batch(
            raw, root / "curated", IngestConfig.from_params(p), FrontendConfig.from_dict(p["frontend"])
        )
    windows = windows_to_label(curated, p)
    labels = label_windows(
        windows, root / "truth" / name, source="lab", error_rate=0.0, seed=0, batch_id=name
    )
    labels_path = root / "labels" / f"{name}-{mode}" / "labels.parquet"
    atomic_write_parquet(labels_path, labels)
    out = root / "models" / mode
    run = TrainRun.from_params(p)
    train_classifier([TrainingBatch(curated, labels_path)], run, out)
    export_onnx(out / "model.ckpt", out / "model_float.onnx", run.training.export, run.training.seed)
    return out / "model_float.onnx", read_json(out / "detector.json")


def run_bench(params: dict, quick: bool = False) -> dict:
    from fleet.lab_recording import lab_session
    from training.evaluate import pipeline_decider, read_bundle_payload, run_batch

    cfg = params["bench"]["lab"]
    lengths = [list(map(float, b)) for b in cfg["lengths_s"]]
    n = int(cfg["takes_quick" if quick else "takes"])
    takes = lab_session(lengths, n, n, int(cfg["seed"]))
    figures: dict = {"takes": len(takes)}
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
        root = Path(tmp)
        raw, truth, summary = import_session(root, "lab", takes, params)
        figures["imported"], figures["quarantined"] = summary["imported"], summary["quarantined"]
        by_name = dict(takes)
        figures["carrier_error_max_hz"] = max(
            abs(c["carrier_estimate_hz"] - by_name[c["source"]].carrier_hz) for c in summary["captures"]
        )
        durations = {c["capture_id"]: c["duration_s"] for c in summary["captures"]}
        bundle = _bundle(params)
        figures["bundle"] = str(bundle)
        if bundle is not None:  # the turn's detector (trained on the simulated seed set) on lab takes
            model, frontend, detector = read_bundle_payload(bundle)
            for mode in cfg["modes"]:
                det = dataclasses.replace(DetectorConfig.from_json(detector), stream_start=mode)
                decider, fs = pipeline_decider([model], frontend, det)
                evaluation = run_batch(decider, raw, truth, fs)
                figures.update(mode_figures(evaluation, durations, lengths, f"bundle.{mode}"))
        for mode in cfg["train"]["modes"]:  # seed models trained on a lab session of their own
            onnx, detector = train_on_lab(root, params, mode, quick)
            decider, fs = pipeline_decider([onnx], params["frontend"], detector)
            evaluation = run_batch(decider, raw, truth, fs)
            figures.update(mode_figures(evaluation, durations, lengths, f"lab_trained.{mode}"))
    return figures
