"""`flywheel bench scale`: what the heavy stages cost, on one core and spread over workers.

One run measures, on the same shards (independent simulated devices of the eval mix):
  * one core: simulate, ingest and evaluate each shard in this process, one after another, and
    divide device-hours by the CPU seconds used (this process and its children) → device-hours per
    CPU-second of each stage, and the evaluation's real-time factor (stream seconds per CPU second);
  * on 1 and 2 workers with the thread runner and the Dask runner (flows/runners.py, a LocalCluster
    of worker processes): every shard's stage is a Prefect task; device-hours per worker-second
    (wall seconds × workers: a CPU-second where each worker holds one core) and the speed-up.
The detector is the last turn's bundle when there is one, else a stand-in trained here (bench/models.py).
docs/scale.md turns these figures into what a fleet needs (`fleet_needs`).
"""

from __future__ import annotations

import copy
import resource
import tempfile
import time
from pathlib import Path

from bench.models import DeviceModel, bench_section, bundle_model, train_model

STAGES = ("simulate", "ingest", "evaluate")


def cpu_seconds() -> float:
    """User + system CPU of this process and of its finished children (simulate's device processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def per_cpu_second(device_hours: float, seconds: float) -> float:
    """Device-hours processed per CPU (or worker) second: the one definition every figure here uses."""
    return device_hours / seconds if seconds > 0 else float("nan")


def fleet_needs(
    rates: dict[str, float],
    devices: int,
    minutes_per_day: float,
    hours_per_day: float,
    bytes_per_device_hour: float,
) -> dict:
    """Cores a fleet's daily uploads keep busy for `hours_per_day`, from device-hours per CPU-second."""
    device_hours = devices * minutes_per_day / 60.0
    cpu_s = {stage: device_hours / rate for stage, rate in rates.items()}
    total = sum(cpu_s.values())
    return {
        "device_hours_per_day": device_hours,
        "cpu_hours_per_day": {stage: s / 3600.0 for stage, s in cpu_s.items()},
        "cpu_hours_per_day_total": total / 3600.0,
        "workers_for_hours_per_day": total / 3600.0 / hours_per_day,
        "raw_gb_per_day": device_hours * bytes_per_device_hour / 1e9,
    }


def _shard_params(params: dict, cfg: dict) -> dict:
    p = copy.deepcopy(params)
    p["simulate"]["workers"] = 1  # one shard is one device on one core; the runner spreads shards
    return p


def run_shard_stage(
    stage: str, shard: int, params: dict, cfg: dict, work: str, model_file: str | None, detector: dict | None
) -> dict:
    """One stage on one shard (device), through the same package functions the turn's stages call."""
    root = Path(work)
    raw, truth = root / "raw" / f"shard-{shard:03d}", root / "truth" / f"shard-{shard:03d}"
    if stage == "simulate":
        from fleet.simulate import simulate_batch

        summary = simulate_batch(
            str(cfg["preset"]), 1, float(cfg["hours"]), int(cfg["seed"]) + shard, raw, truth,
            batch_id=raw.name, sim_params=params["simulate"], calibration=params["calibration"]["config"],
        )  # fmt: skip
        return {"device_hours": float(cfg["hours"]), "captures": int(summary["n_captures"])}
    if stage == "ingest":
        from ingest.config import IngestConfig
        from ingest.pipeline import ingest_batch
        from runtime.frontend import FrontendConfig

        ing, frontend = IngestConfig.from_params(params), FrontendConfig.from_dict(params["frontend"])
        summary = ingest_batch(raw, root / "curated", ing, frontend)
        return {"device_hours": float(cfg["hours"]), "captures": int(summary["ingested"])}
    from training.evaluate import evaluate_detector

    result = evaluate_detector(model_file, params["frontend"], detector, raw, truth)
    return {"device_hours": float(cfg["hours"]), "stream_hours": float(result["stream_hours"])}


def _one_core(params: dict, cfg: dict, work: Path, model_file: str, detector: dict) -> dict:
    figures: dict = {}
    for stage in STAGES:
        hours = stream_h = cpu = 0.0
        for shard in range(int(cfg["shards"])):
            before = cpu_seconds()
            out = run_shard_stage(stage, shard, params, cfg, str(work), model_file, detector)
            cpu += cpu_seconds() - before
            hours += out["device_hours"]
            stream_h += out.get("stream_hours", 0.0)
        figures[f"one_core.{stage}.device_hours_per_cpu_s"] = per_cpu_second(hours, cpu)
        figures[f"one_core.{stage}.cpu_s_per_device_hour"] = cpu / hours
        if stage == "evaluate":
            figures["evaluate.real_time_factor"] = stream_h * 3600.0 / cpu
    return figures


def _runner_grid(params: dict, b: dict, work: Path, model_file: str, detector: dict) -> dict:
    from flows.env import configure_environment

    configure_environment(Path.cwd())
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    from flows.runners import make_task_runner, runner_config

    cfg = b["shards"]
    shard_task = task(run_shard_stage, name="shard-stage", cache_policy=NO_CACHE)

    @flow(name="bench-scale")
    def stages_on_shards(out: str) -> dict:
        walls = {}
        for stage in STAGES:
            started = time.perf_counter()
            futures = [
                shard_task.with_options(task_run_name=f"{stage}-{s}").submit(
                    stage, s, params, cfg, out, model_file, detector
                )
                for s in range(int(cfg["shards"]))
            ]
            hours = sum(f.result()["device_hours"] for f in futures)
            walls[stage] = (hours, time.perf_counter() - started)
        return walls

    figures: dict = {}
    for kind in b["runners"]:
        for workers in b["workers"]:
            config = runner_config(params, kind, int(workers))
            out = work / f"{kind}-{workers}"
            started = time.perf_counter()
            walls = stages_on_shards.with_options(task_runner=make_task_runner(config))(str(out))
            figures[f"{kind}.w{workers}.flow_wall_s"] = time.perf_counter() - started
            for stage, (hours, wall) in walls.items():
                figures[f"{kind}.w{workers}.{stage}.device_hours_per_worker_s"] = per_cpu_second(
                    hours, wall * int(workers)
                )
                figures[f"{kind}.w{workers}.{stage}.wall_s"] = wall
    for kind in b["runners"]:
        for stage in STAGES:
            one, two = (figures.get(f"{kind}.w{w}.{stage}.wall_s") for w in (1, 2))
            if one and two:
                figures[f"{kind}.{stage}.speedup_2_workers"] = one / two
    return figures


def run_bench(params: dict, quick: bool = False) -> dict:
    from common.params import deep_merge

    b = bench_section(params["bench"]["scale"], quick)
    cfg = b["shards"]
    p = _shard_params(params, cfg)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        tmp_path = Path(tmp)
        det: DeviceModel | None = bundle_model(params, b["bundles"])
        if det is None:
            det = train_model(params, b["train"], tmp_path / "train")
        model_file = tmp_path / "model_int8.onnx"
        model_file.write_bytes(det.model)
        p["frontend"] = deep_merge(p["frontend"], det.frontend)
        figures = {"detector": det.description, "shards": dict(cfg)}
        figures.update(_one_core(p, cfg, tmp_path / "one-core", str(model_file), det.detector))
        figures.update(_runner_grid(p, b, tmp_path / "runners", str(model_file), det.detector))
        raw_bytes = sum(f.stat().st_size for f in (tmp_path / "one-core" / "raw").rglob("*") if f.is_file())
    hours = float(cfg["hours"]) * int(cfg["shards"])
    figures["raw_bytes_per_device_hour"] = raw_bytes / hours
    fleet = b["fleet"]
    rates = {s: figures[f"one_core.{s}.device_hours_per_cpu_s"] for s in fleet["stages"]}
    needs = fleet_needs(rates, int(fleet["devices"]), float(fleet["minutes_per_day"]),
                        float(fleet["hours_per_day"]), figures["raw_bytes_per_device_hour"])  # fmt: skip
    figures.update({f"fleet.{k}": v for k, v in needs.items() if not isinstance(v, dict)})
    figures.update({f"fleet.cpu_hours_per_day.{k}": v for k, v in needs["cpu_hours_per_day"].items()})
    return figures
