"""`flywheel bench ingest`: captures per second and peak memory on a synthetic batch of >= 24 device-hours.

The batch is synthesised here with plain numpy (noise + a Doppler tone per clip; a few distinct clips
hard-linked to every capture file, so disk use stays small while every capture is read and processed).
Each size is ingested in a fresh child process so its peak RSS is its own; two sizes show whether
memory grows with the batch.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def synthesize_batch(raw_dir: Path, devices: int, hours: float, cfg: dict, fs_hz: float) -> dict:
    """Write a valid raw batch; returns {n_captures, device_hours}."""
    rng = np.random.default_rng(int(cfg["seed"]))
    n_samples = round(float(cfg["capture_s"]) * fs_hz)
    n_mics = int(cfg["n_mics"])
    clips_dir = raw_dir.parent / f"{raw_dir.name}-clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    (raw_dir / "iq").mkdir(parents=True, exist_ok=True)
    t = np.arange(n_samples) / fs_hz
    clips = []
    for k in range(int(cfg["distinct_clips"])):
        doppler_hz = rng.uniform(-200.0, 200.0)
        noise = rng.standard_normal((n_mics, n_samples)) + 1j * rng.standard_normal((n_mics, n_samples))
        iq = 0.05 * noise + 1.0 + 0.1 * np.exp(2j * np.pi * doppler_hz * t)  # [n_mics, n]
        clips.append(clips_dir / f"clip-{k}.npy")
        np.save(clips[-1], iq.astype(np.complex64), allow_pickle=False)
    every_s = float(cfg["capture_every_s"])
    per_device = int(hours * 3600.0 // every_s)
    captures, dialogue = [], []
    for i in range(per_device):
        for d in range(devices):
            device, cid = f"bench-{d:03d}", f"bench-{d:03d}-{i:06d}"
            start = T0 + dt.timedelta(seconds=i * every_s + rng.uniform(0, 1))
            file = f"iq/{cid}.npy"
            os.link(clips[rng.integers(len(clips))], raw_dir / file)
            captures.append(
                {
                    "capture_id": cid, "device_id": device, "profile": "speaker4", "t_start": _iso(start),
                    "duration_s": n_samples / fs_hz, "carrier_hz": 40000.0, "fs_hz": fs_hz, "n_mics": n_mics,
                    "emission_db": -20.0, "firmware": "0.1.0", "trigger": "sample", "playback_volume": 0,
                    "file": file,
                }
            )  # fmt: skip
            if rng.random() < 0.2:
                ts = _iso(start + dt.timedelta(seconds=3))
                dialogue.append(
                    {
                        "event_id": f"ev-{cid}", "device_id": device, "ts": ts, "kind": "turn",
                        "utterance": "what time is it", "asr_confidence": 0.9, "intent": "time",
                        "nlu_confidence": 0.9, "response": "noon", "barge_in": False,
                    }
                )  # fmt: skip
    (raw_dir / "captures.jsonl").write_text("".join(json.dumps(c) + "\n" for c in captures))
    (raw_dir / "dialogue.jsonl").write_text("".join(json.dumps(e) + "\n" for e in dialogue))
    return {"n_captures": len(captures), "device_hours": devices * hours}


def _child_main() -> None:
    """Child process: ingest one batch, print {seconds, peak_rss_mb, summary counts} as JSON."""
    import resource

    from ingest.config import IngestConfig
    from ingest.pipeline import ingest_batch
    from runtime.frontend import FrontendConfig

    args = json.loads(sys.stdin.read())
    ing, frontend = (
        IngestConfig.from_params(args["params"]),
        FrontendConfig.from_dict(args["params"]["frontend"]),
    )
    start = time.perf_counter()
    summary = ingest_batch(args["raw_dir"], args["curated_root"], ing, frontend)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_kb / 1024.0, "ingested": summary["ingested"]}))


def _measure(params: dict, devices: int, hours: float, workdir: Path) -> dict:
    cfg = params["bench"]["ingest"]
    raw = workdir / "raw" / f"bench-{devices}x{hours:g}h"
    batch = synthesize_batch(raw, devices, hours, cfg, float(params["frontend"]["baseband_fs_hz"]))
    payload = json.dumps({"raw_dir": str(raw), "curated_root": str(workdir / "curated"), "params": params})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-c", "from bench.ingest import _child_main; _child_main()"],
        input=payload, capture_output=True, text=True, env=env, cwd=REPO_ROOT, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"bench child failed:\n{proc.stderr[-3000:]}")
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    if child["ingested"] != batch["n_captures"]:
        raise RuntimeError(f"bench ingested {child['ingested']} of {batch['n_captures']} captures")
    return {
        "device_hours": batch["device_hours"],
        "n_captures": batch["n_captures"],
        "seconds": child["seconds"],
        "captures_per_s": batch["n_captures"] / child["seconds"],
        "peak_rss_mb": child["peak_rss_mb"],
    }


def run_bench(params: dict, quick: bool = False) -> dict:
    """{captures_per_s, device_hours, peak_rss_mb, ...} for the full size, plus a smaller one to compare.

    quick=True uses params bench.ingest.quick (a few device-minutes) instead of >= 24 device-hours.
    """
    cfg = params["bench"]["ingest"]
    devices, hours = int(cfg["devices"]), float(cfg["hours"])
    if quick:
        devices, hours = int(cfg["quick"]["devices"]), float(cfg["quick"]["hours"])
    small_hours = hours * float(cfg["small_fraction"])
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        small = _measure(params, devices, small_hours, Path(tmp) / "small")
        full = _measure(params, devices, hours, Path(tmp) / "full")
    growth = full["peak_rss_mb"] - small["peak_rss_mb"]
    return full | {
        "small": small,
        "rss_growth_mb": growth,
        "rss_growth_mb_per_device_hour": growth / max(full["device_hours"] - small["device_hours"], 1e-9),
        "quick": quick,
    }
