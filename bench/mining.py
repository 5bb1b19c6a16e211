"""`flywheel bench mining`: pool scoring throughput, selection over 1M windows (time, peak RSS), enrichment.

- score_windows_per_s: onnxruntime (2 threads, batched) on context windows with a classifier exported
  by training from synthetic data (or bench.mining.model, a trained ONNX file, when set).
- selection_1m_seconds / selection_1m_peak_rss_mb: the flywheel quota mix over a synthetic pool of
  bench.mining.pool_windows windows with 32-dim embeddings, run in a fresh child process so its peak
  RSS (VmHWM; ru_maxrss where /proc is missing) is the selection's own, compared against memory_limit_mb.
- rare_event_enrichment: a flywheel-only run of the experiment (bench/experiment.py) on the quick
  fleet: rare share of uploads with the trained trigger / with the factory policy.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def synthetic_context(n: int, dim: int, n_labeled: int, n_devices: int, seed: int):
    """A MiningContext over a synthetic pool: scores, embeddings [n, dim], weak flags, device ids."""
    from mining.strategies import MiningContext

    rng = np.random.default_rng(seed)
    p_present = rng.beta(0.5, 2.0, size=n).astype(np.float32)
    devices = np.array([f"dev-{i:04d}" for i in range(n_devices)])
    return MiningContext(
        p_present=p_present,
        p_major=(p_present * rng.random(n, dtype=np.float32)),
        embeddings=rng.standard_normal((n, dim), dtype=np.float32),
        labeled_embeddings=rng.standard_normal((n_labeled, dim), dtype=np.float32),
        weak_none=rng.random(n) < 0.05,
        weak_present=rng.random(n) < 0.05,
        device_ids=devices[rng.integers(0, n_devices, size=n)],
        strict_threshold=0.8,
        lenient_threshold=0.5,
        uncertainty_band=0.25,
        rng=np.random.default_rng(seed + 1),
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    Linux's ru_maxrss survives exec: a child started by a big parent (torch loaded, a model trained) reports
    at least the parent's RSS at fork. VmHWM, the high-water mark of the process's own memory map, does not.
    """
    import resource

    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def selection_child(config_json: str) -> dict:
    """Runs in the child process: build the pool, select, report time and this process's peak RSS."""
    from mining.strategies import select_with_quotas

    c = json.loads(config_json)
    ctx = synthetic_context(c["n"], c["dim"], c["labeled"], c["devices"], c["seed"])
    t0 = time.perf_counter()
    picks = select_with_quotas(ctx, c["budget"], c["quotas"])
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "picks": len(picks),
        "unique": len({i for i, _ in picks}),
    }


def measure_selection(params: dict, n: int) -> dict:
    bp = params["bench"]["mining"]
    config = {
        "n": n,
        "dim": int(bp["embedding_dim"]),
        "labeled": int(bp["labeled"]),
        "devices": int(bp["devices"]),
        "seed": int(bp["seed"]),
        "budget": int(bp["budget"]),
        "quotas": params["mining"]["quotas"],
    }
    code = (
        "import sys, json; from bench.mining import selection_child; "
        "print(json.dumps(selection_child(sys.argv[1])))"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(config)], cwd=root, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_model(params: dict, work: Path) -> Path:
    """An exported classifier: bench.mining.model when set, else one trained briefly on synthetic data."""
    from training.config import TrainRun
    from training.datamodule import TrainingBatch
    from training.export import export_onnx
    from training.synthetic import make_synthetic_batch
    from training.train import train_classifier

    given = params["bench"]["mining"].get("model")
    if given:
        return Path(given)
    p = copy.deepcopy(params)
    p["training"].update({"epochs": 1, "progress_bar": False})
    curated, labels = make_synthetic_batch(
        work, n_captures=6, context_frames=int(p["ingest"]["context_frames"]), seed=int(p["mining"]["seed"])
    )
    run = TrainRun.from_params(p)
    train_classifier([TrainingBatch(curated, labels)], run, work / "ckpt")
    export_onnx(work / "ckpt" / "model.ckpt", work / "model.onnx", run.training.export, run.training.seed)
    return work / "model.onnx"


def measure_scoring(params: dict, model: Path, n: int) -> float:
    from runtime.classifier import OnnxClassifier

    bp = params["bench"]["mining"]
    clf = OnnxClassifier(model, batch_size=int(bp["score_batch"]), n_threads=int(bp["score_threads"]))
    rng = np.random.default_rng(int(bp["seed"]))
    shape = (n, int(params["ingest"]["context_frames"]), int(params["frontend"]["n_velocity_bins"]))
    windows = rng.normal(-60.0, 5.0, size=shape).astype(np.float32)
    clf.predict(windows[: int(bp["score_batch"])])  # warm-up: session allocations
    t0 = time.perf_counter()
    clf.predict(windows)
    return n / (time.perf_counter() - t0)


def measure_enrichment(params: dict, work: Path, quick: bool) -> dict:
    from bench.experiment import run_experiment

    p = copy.deepcopy(params)
    q = p["experiment"].setdefault("quick", {})
    q["strategies"] = ["flywheel"]
    q["seeds"] = 1
    results = run_experiment(p, work / "experiment", turns=1 if quick else None, quick=True)
    return results.get("rare_event") or {}


def run_bench(params: dict, quick: bool = False) -> dict:
    from common.params import deep_merge

    bp = params["bench"]["mining"]
    sized = deep_merge(bp, bp.get("quick", {})) if quick else bp
    p = {**params, "bench": {**params["bench"], "mining": sized}}
    with tempfile.TemporaryDirectory(prefix="mining-bench-") as tmp:
        work = Path(tmp)
        model = bench_model(p, work / "model")
        scoring = measure_scoring(p, model, int(sized["score_windows"]))
        selection = measure_selection(p, int(sized["pool_windows"]))
        rare = measure_enrichment(p, work, quick)
    return {
        "score_windows_per_s": scoring,
        "score_threads": int(sized["score_threads"]),
        "selection_pool_windows": int(sized["pool_windows"]),
        "selection_1m_seconds": selection["seconds"],
        "selection_1m_peak_rss_mb": selection["peak_rss_mb"],
        "selection_within_memory_limit": selection["peak_rss_mb"] <= float(sized["memory_limit_mb"]),
        "selection_picks": selection["picks"],
        "rare_event_enrichment": rare.get("enrichment"),
        "rare_share_factory": (rare.get("factory") or {}).get("rare_share"),
        "rare_share_with_trigger": (rare.get("rare_trigger") or {}).get("rare_share"),
        "rare_event_enrichment_vs_sample": rare.get("enrichment_vs_sample"),
        "rare_captures_ratio": rare.get("rare_captures_ratio"),
    }
