"""`flywheel bench model`: onnxruntime float and int8 windows/s on one core, budget figures, int8 agreement.

Trains the params-sized PresenceNet briefly on a synthetic curated batch (training.synthetic), exports
and quantizes it, then measures. Pass float_onnx/int8_onnx to measure existing models instead (the
agreement is then measured on synthetic windows of the right shape). c_windows_per_s: the bundle's C
reference inference (deploy.firmware_c_emit) compiled with gcc -O2, timed on the same windows, one core
(None with the reason when no C compiler is available or the model is not supported by the C).
Sizes: params.yaml bench.model (`quick` overrides for --quick).
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.models import bench_section
from training.budget import analyse_model, check_budget, load_profile, peak_activation_bytes


def _windows_per_s(model_path: Path, windows: np.ndarray, batch: int, min_s: float) -> float:
    from runtime.onnx_session import make_session

    sess = make_session(model_path)  # the device's session: spec QDQ, no CPU-specific int8 fusions
    names = ["logits", "embedding"]
    sess.run(names, {"features": windows[:batch]})  # warm-up
    done, t0 = 0, time.perf_counter()
    while True:
        for start in range(0, len(windows) - batch + 1, batch):
            sess.run(names, {"features": windows[start : start + batch]})
            done += batch
        elapsed = time.perf_counter() - t0
        if elapsed >= min_s:
            return done / elapsed


def c_windows_per_s(model_int8: str | Path, inputs: np.ndarray, n_windows: int, work_dir: Path) -> dict:
    """Compile the C reference with -O2 and time n_windows inferences on one core (harness bench mode)."""
    from deploy.firmware_c_emit import compile_c, firmware_payload, run_selftest
    from deploy.packaging import expected_logits

    work_dir.mkdir(parents=True, exist_ok=True)
    files = firmware_payload(model_int8, {}, {}, inputs, expected_logits(Path(model_int8), inputs))
    for name, blob in files.items():
        (work_dir / Path(name).name).write_bytes(blob)
    exe = compile_c(work_dir, work_dir / "presence_selftest", opt="-O2")
    figures = run_selftest(exe, work_dir / "test_vectors.bin", max_lsb=1 << 20, bench_windows=n_windows)
    return {"c_windows_per_s": figures.get("windows_per_s"), "c_max_lsb_vs_reference": figures.get("max_lsb")}


def _c_figures(int8_onnx: Path, windows: np.ndarray, n_windows: int, work_dir: Path) -> dict:
    from deploy.firmware_c import UnsupportedModelError

    try:
        return c_windows_per_s(int8_onnx, windows[: min(len(windows), 64)], max(n_windows, 256), work_dir)
    except (FileNotFoundError, UnsupportedModelError, RuntimeError) as exc:  # no gcc / unsupported: report
        return {"c_windows_per_s": None, "c_windows_per_s_missing": str(exc)[:300]}


def run_bench(
    params: dict,
    quick: bool = False,
    float_onnx: str | Path | None = None,
    int8_onnx: str | Path | None = None,
) -> dict:
    """Measure and return the figures of `flywheel bench model` (see the module docstring)."""
    from training.config import ExportConfig, QuantizeConfig, TrainRun
    from training.datamodule import TrainingBatch, gather_windows, load_window_index
    from training.export import export_onnx
    from training.quantize import agreement, quantize_int8
    from training.synthetic import make_synthetic_batch
    from training.train import train_classifier

    tr = params["training"]
    bench = bench_section(params["bench"]["model"], quick)
    n_windows = int(bench["windows"])
    context = int(params["ingest"]["context_frames"])
    n_bins = int(params["frontend"]["n_velocity_bins"])
    min_s = float(bench["min_seconds"])  # each windows/s figure times at least this long
    out: dict = {"quick": quick}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        eval_curated, eval_labels = make_synthetic_batch(
            tmp, "bench-eval", n_captures=int(bench["eval_captures"]), frames_per_capture=256,
            context_frames=context, window_stride=1, n_bins=n_bins, seed=int(bench["eval_seed"]),
        )  # fmt: skip
        index = load_window_index([TrainingBatch(eval_curated, eval_labels)], context)
        pos = np.resize(np.arange(len(index)), n_windows)
        windows = gather_windows(index, pos, context)  # [n_windows, T, V]
        if float_onnx is None or int8_onnx is None:
            p = copy.deepcopy(params)
            p["training"]["epochs"] = int(bench["epochs"])
            p["training"]["progress_bar"] = False
            n_caps = int(bench["captures"])
            train_batch = TrainingBatch(*make_synthetic_batch(
                tmp, "bench-train", n_captures=n_caps, frames_per_capture=256, context_frames=context,
                window_stride=int(params["ingest"]["window_stride"]), n_bins=n_bins, seed=int(tr["seed"]),
            ))  # fmt: skip
            t0 = time.perf_counter()
            train_classifier([train_batch], TrainRun.from_params(p), tmp / "model")
            out["train_seconds"] = time.perf_counter() - t0
            float_onnx, int8_onnx = tmp / "model.onnx", tmp / "model_int8.onnx"
            export_onnx(
                tmp / "model" / "model.ckpt", float_onnx, ExportConfig.from_params(p), int(tr["seed"])
            )
            calib = gather_windows(index, np.arange(0, len(index), 3), context)
            report = quantize_int8(float_onnx, calib, int8_onnx, QuantizeConfig.from_params(p))
            out["quantize_method"] = report["method"]
            out["quantize_gate_passed"] = report["passed"]
        float_onnx, int8_onnx = Path(float_onnx), Path(int8_onnx)
        out["float_windows_per_s"] = _windows_per_s(float_onnx, windows, 1, min_s)
        out["int8_windows_per_s"] = _windows_per_s(int8_onnx, windows, 1, min_s)
        out["float_windows_per_s_batch256"] = _windows_per_s(float_onnx, windows, min(256, n_windows), min_s)
        out["int8_windows_per_s_batch256"] = _windows_per_s(int8_onnx, windows, min(256, n_windows), min_s)
        out["int8_float_agreement"] = agreement(float_onnx, int8_onnx, windows)
        profile_name = params["package"]["profile"]
        figures = analyse_model(str(int8_onnx))
        try:
            budget = check_budget(str(int8_onnx), profile_name)
        except Exception as exc:  # over budget is a finding to report, not a crash of the benchmark
            budget = {"within_budget": False, "error": str(exc)}
        profile = load_profile(profile_name)
        out.update(
            {
                "macs_per_inference": figures["macs_per_inference"],
                "int8_weight_bytes": figures["int8_weight_bytes"],
                "weight_storage_bytes": figures["weight_storage_bytes"],
                "peak_activation_bytes": peak_activation_bytes(figures, profile),
                "params": figures["params"],
                "profile": profile_name,
                "macs_per_s_budget": profile["detector_macs_per_s"],
                "weight_bytes_budget": profile["weight_bytes"],
                "activation_bytes_budget": profile["activation_bytes"],
                "within_budget": budget.get("within_budget", False),
                "budget_error": budget.get("error"),
                **_c_figures(int8_onnx, windows, n_windows, tmp / "c"),
                "n_windows": n_windows,
                "data": "synthetic curated batch (training.synthetic)",
            }
        )
    return out
