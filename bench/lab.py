"""`flywheel bench lab`: detection on imported lab recordings by clip length, per stream-start mode.

Writes a synthetic lab session (fleet.lab_recording: 44.1 kHz WAVs with a 20 kHz tone; motion takes
in each length bucket of bench.lab.lengths_s, and takes with nobody moving), imports it with
`ingest.lab_import.import_lab` (carrier estimated from the spectrum), and runs a bundle's detector
over it (training.evaluate: each clip a stream of its own, its take one episode) once per
stream-start mode of runtime.detector (bench.lab.modes). Figures per mode: entry recall and median
latency per length bucket (training.metrics: the arrival is the motion's onset in the clip), false
triggers on the takes without motion, and the carrier estimate's worst error.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from common.io import atomic_write_bytes, atomic_write_text


def bucket_name(lo: float, hi: float) -> str:
    return f"{lo:g}-{hi:g}s"


def write_session(takes, src: Path) -> Path:
    """The takes as WAV files under src and their labels CSV; returns the CSV's path."""
    from fleet.lab_recording import labels_csv, render_take, wav_bytes

    for name, take in takes:
        atomic_write_bytes(src / name, wav_bytes(render_take(take), take.fs_hz))
    atomic_write_text(src.parent / "labels.csv", labels_csv(takes))
    return src.parent / "labels.csv"


def _bundle(params: dict) -> Path:
    for pattern in params["bench"]["lab"]["bundles"]:
        path = Path(pattern.format(turn=params["turn"]["id"]))
        if path.exists():
            return path
    raise FileNotFoundError(
        "bench lab needs a bundle: run a turn first (or list one in bench.lab.bundles); "
        f"tried {params['bench']['lab']['bundles']}"
    )


def run_bench(params: dict, quick: bool = False) -> dict:
    from fleet.lab_recording import lab_session
    from ingest.lab_import import import_lab
    from training.evaluate import (
        Evaluation,
        detector_config,
        metrics_of,
        pipeline_decider,
        read_bundle_payload,
        run_batch,
    )

    cfg = params["bench"]["lab"]
    lengths = [list(map(float, b)) for b in cfg["lengths_s"]]
    n = int(cfg["takes_quick" if quick else "takes"])
    takes = lab_session(lengths, n, n, int(cfg["seed"]))
    model, frontend, detector = read_bundle_payload(_bundle(params))
    figures: dict = {"takes": len(takes)}
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
        root = Path(tmp)
        csv_path = write_session(takes, root / "src")
        summary = import_lab(
            root / "src", root / "raw" / "lab", root / "truth" / "lab", params, labels_csv=csv_path
        )
        figures["imported"], figures["quarantined"] = summary["imported"], summary["quarantined"]
        by_name = dict(takes)
        figures["carrier_error_max_hz"] = max(
            abs(c["carrier_estimate_hz"] - by_name[c["source"]].carrier_hz) for c in summary["captures"]
        )
        durations = {c["capture_id"]: c["duration_s"] for c in summary["captures"]}
        for mode in cfg["modes"]:
            det = dataclasses.replace(detector_config(detector), stream_start=mode)
            decider, fs = pipeline_decider([model], frontend, det)
            evaluation = run_batch(decider, root / "raw" / "lab", root / "truth" / "lab", fs)
            for lo, hi in lengths:
                part = [
                    s for s in evaluation.streams
                    if any(e.is_presence for e in s.episodes) and lo <= durations[s.stream_id] < hi
                ]  # fmt: skip
                m, _ = metrics_of(Evaluation(part))
                figures[f"{mode}.entry_recall.{bucket_name(lo, hi)}"] = m["entry_recall"]
                figures[f"{mode}.latency_median_s.{bucket_name(lo, hi)}"] = m["entry_latency_median_s"]
            empty = [s for s in evaluation.streams if not any(e.is_presence for e in s.episodes)]
            m, _ = metrics_of(Evaluation(empty))
            figures[f"{mode}.false_triggers.empty_takes"] = m["false_triggers"]
            figures[f"{mode}.empty_takes"] = len(empty)
    return figures
