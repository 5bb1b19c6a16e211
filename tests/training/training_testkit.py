"""Shared test data for training tests: tiny params (small model, few epochs)."""

from __future__ import annotations

from config_testkit import repo_params

# the detector these tests were written against (the code defaults before every field became required)
DETECTOR = {
    "strict_threshold": 0.8,
    "lenient_threshold": 0.5,
    "occupied_window_s": 60.0,
    "hold_s": 5.0,
    "confirm_s": 2.0,
    "emission_off_s": 0.0,
    "duty_cycling": False,
    "lenient_reentry": True,
}

TINY_PARAMS = {
    "frontend": repo_params()["frontend"],  # 48 velocity bins, 64-sample hop at 2 kHz
    "ingest": {"context_frames": 32, "window_stride": 8},
    "training": {
        "seed": 7,
        "epochs": 10,
        "batch_size": 16,
        "learning_rate": 0.03,
        "weight_decay": 0.0001,
        "val_fraction": 0.34,
        "channels": 8,
        "embedding_dim": 8,
        "head": "global",
        "num_threads": 1,
        "progress_bar": False,
        "augment": {"gain_db": 3.0, "noise_db": 1.0, "velocity_shift_bins": 1},
        "target_false_alarms_per_hour": 0.5,
        "threshold_sources": [],
        "lenient_minor_recall": None,
        "lenient_false_alarms_per_hour": 5.0,
        "min_strict_threshold": 0.5,
        "min_lenient_threshold": 0.3,
        "export": {"opset": 17, "atol": 1.0e-4},
    },
    "quantize": {"calibration_windows": 64, "gate_windows": 64, "agreement_target": 0.95, "exclude_nodes": 2},
    "detector": DETECTOR,
}


def write_raw_batch(raw_dir, truth_dir, seed: int = 0) -> list[dict]:
    """A small raw batch (raw log contract) + truth: a walker capture, an empty one, a missing file,
    a wrong-dtype file and a malformed line. Returns the truth events."""
    import json
    from pathlib import Path

    import numpy as np

    from runtime.synthetic import ArrayGeometry, walker_echo

    raw_dir, truth_dir = Path(raw_dir), Path(truth_dir)
    (raw_dir / "iq").mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fs, carrier, n_mics, dur = 2000.0, 40000.0, 4, 12.0
    n = int(fs * dur)
    geom = ArrayGeometry(n_mics=n_mics)

    def noise():
        return (rng.normal(size=(n_mics, n)) + 1j * rng.normal(size=(n_mics, n))) * 1e-4

    static = (geom.steering(0.0, carrier, 343.0)[:, None] * np.ones(n)[None, :]).astype(np.complex128)
    walker = walker_echo(geom, n, fs, carrier, 343.0, 60.0, 1.2, 0.05)
    gate = np.zeros(n)
    gate[int(5 * fs) : int(9 * fs)] = 1.0
    captures = {
        "walk": (static + walker * gate[None, :] + noise()).astype(np.complex64),
        "empty": (static + noise()).astype(np.complex64),
    }
    lines = []
    for cid, iq in captures.items():
        np.save(raw_dir / "iq" / f"{cid}.npy", iq, allow_pickle=False)
    np.save(raw_dir / "iq" / "wrongdtype.npy", np.zeros((n_mics, 100), np.float32), allow_pickle=False)
    for cid in ["walk", "empty", "missing", "wrongdtype"]:
        lines.append(
            json.dumps(
                {
                    "capture_id": cid,
                    "device_id": "dev-0",
                    "profile": "speaker4",
                    "t_start": "2026-01-01T00:00:00.000Z",
                    "duration_s": dur,
                    "carrier_hz": carrier,
                    "fs_hz": fs,
                    "n_mics": n_mics,
                    "emission_db": -20.0,
                    "firmware": "0.0.0",
                    "trigger": "sample",
                    "playback_volume": 0,
                    "file": f"iq/{cid}.npy",
                }
            )
        )
    lines.append("{not json")
    (raw_dir / "captures.jsonl").write_text("\n".join(lines) + "\n")
    events = [
        {
            "capture_id": "walk",
            "t0_s": 5.0,
            "t1_s": 9.0,
            "event_type": "walk",
            "is_presence": True,
            "motion_class": "major",
        },
        {
            "capture_id": "empty",
            "t0_s": 2.0,
            "t1_s": 6.0,
            "event_type": "ceiling_fan",
            "is_presence": False,
            "motion_class": "none",
        },
        {
            "capture_id": "missing",
            "t0_s": 1.0,
            "t1_s": 2.0,
            "event_type": "walk",
            "is_presence": True,
            "motion_class": "major",
        },
    ]
    (truth_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return events


def band_energy_model(
    context_frames: int, n_bins: int, v_max: float, quiet_db: float, loud_db: float
) -> bytes:
    """Tiny contract-following ONNX: logit_major = mean dB over moving bins minus the midpoint of
    quiet/loud levels (scaled), other logits 0. Embedding = per-bin mean over frames [N, V]."""
    import sys
    from pathlib import Path

    import numpy as np

    sys.path.insert(0, str(Path(__file__).parents[1] / "runtime"))
    from runtime_tiny_onnx import build_linear_model

    v = np.abs(np.linspace(-v_max, v_max, n_bins))
    moving = (v >= 0.3).astype(np.float32)
    w = np.zeros((n_bins, 3), np.float32)
    w[:, 2] = 4.0 * moving / moving.sum() / max(loud_db - quiet_db, 1e-3) * 2
    b = np.array(
        [0.0, -10.0, -4.0 * (quiet_db + loud_db) / 2 / max(loud_db - quiet_db, 1e-3) * 2], np.float32
    )
    return build_linear_model(context_frames, n_bins, w, b)


def write_walker_batch(raw_dir, truth_dir, n_walk: int, n_empty: int, seed: int, duration_s: float = 12.0):
    """Raw batch of walker captures (one walk event each, random angle/speed/start) and empty rooms."""
    import json
    from pathlib import Path

    import numpy as np

    from runtime.synthetic import ArrayGeometry, walker_echo

    raw_dir, truth_dir = Path(raw_dir), Path(truth_dir)
    (raw_dir / "iq").mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fs, carrier, n_mics = 2000.0, 40000.0, 4
    n = int(fs * duration_s)
    geom = ArrayGeometry(n_mics=n_mics)
    static = geom.steering(0.0, carrier, 343.0)[:, None] * np.ones(n)[None, :]
    lines, events = [], []
    for k in range(n_walk + n_empty):
        cid = f"cap{k:02d}"
        noise = (rng.normal(size=(n_mics, n)) + 1j * rng.normal(size=(n_mics, n))) * 1e-4
        iq = static + noise
        if k < n_walk:
            t0 = float(rng.uniform(3.0, 5.0))
            t1 = t0 + float(rng.uniform(3.0, 5.0))
            gate = np.zeros(n)
            gate[int(t0 * fs) : int(t1 * fs)] = 1.0
            speed = float(rng.uniform(0.6, 1.5)) * rng.choice([-1, 1])
            iq = iq + walker_echo(geom, n, fs, carrier, 343.0, float(rng.uniform(0, 360)), speed, 0.05) * gate
            events.append(
                {
                    "capture_id": cid,
                    "t0_s": t0,
                    "t1_s": t1,
                    "event_type": "walk",
                    "is_presence": True,
                    "motion_class": "major",
                }
            )
        np.save(raw_dir / "iq" / f"{cid}.npy", iq.astype(np.complex64), allow_pickle=False)
        lines.append(
            json.dumps(
                {
                    "capture_id": cid,
                    "device_id": f"dev-{k % 2}",
                    "profile": "speaker4",
                    "t_start": "2026-01-01T00:00:00.000Z",
                    "duration_s": duration_s,
                    "carrier_hz": carrier,
                    "fs_hz": fs,
                    "n_mics": n_mics,
                    "emission_db": -20.0,
                    "firmware": "0.0.0",
                    "trigger": "sample",
                    "playback_volume": 0,
                    "file": f"iq/{cid}.npy",
                }
            )
        )
    (raw_dir / "captures.jsonl").write_text("\n".join(lines) + "\n")
    (truth_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def curate_with_truth_labels(
    raw_dir, truth_dir, curated_dir, labels_path, frontend: dict, context: int, stride: int
):
    """Stand-in for ingest + labeling: runtime features into a curated folder, labels from truth."""
    import json
    from pathlib import Path

    import numpy as np
    import polars as pl

    from runtime.frontend import FrontendConfig, extract_features, frame_end_times

    cfg = FrontendConfig.from_dict(frontend)
    raw_dir, curated_dir = Path(raw_dir), Path(curated_dir)
    events = [json.loads(x) for x in (Path(truth_dir) / "events.jsonl").read_text().splitlines() if x]
    frames_all, windows, labels, offset = [], [], [], 0
    for line in (raw_dir / "captures.jsonl").read_text().splitlines():
        rec = json.loads(line)
        iq = np.load(raw_dir / rec["file"], allow_pickle=False)
        frames = extract_features(iq, rec["fs_hz"], rec["carrier_hz"], cfg)
        times = frame_end_times(len(frames), cfg)
        frames_all.append(frames)
        evs = [e for e in events if e["capture_id"] == rec["capture_id"] and e["is_presence"]]
        for end in range(context - 1, len(frames), stride):
            t = times[end]
            label = 2 if any(e["t0_s"] + 0.5 <= t <= e["t1_s"] for e in evs) else 0
            wid = f"{rec['capture_id']}:{end}"
            windows.append(
                {
                    "window_id": wid,
                    "capture_id": rec["capture_id"],
                    "end_row": offset + end,
                    "end_frame": end,
                    "t_end_s": float(t),
                }
            )
            labels.append({"window_id": wid, "label": label, "source": "lab", "confidence": 1.0})
        offset += len(frames)
    curated_dir.mkdir(parents=True, exist_ok=True)
    np.save(curated_dir / "frames.npy", np.concatenate(frames_all).astype(np.float32), allow_pickle=False)
    pl.DataFrame(windows).write_parquet(curated_dir / "windows.parquet")
    Path(labels_path).parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(labels).write_parquet(labels_path)


def write_fleet_batch(raw_dir, truth_dir, seed: int = 3) -> None:
    """A raw batch of several devices for sharding: walker and empty captures of 12 s on three devices,
    back to back per device (one gap), a capture with no start time (a stream of its own, outside any
    device), a missing file and a malformed line."""
    import datetime as dt
    import json
    from pathlib import Path

    write_walker_batch(raw_dir, truth_dir, n_walk=4, n_empty=5, seed=seed)
    index = Path(raw_dir) / "captures.jsonl"
    records = [json.loads(line) for line in index.read_text().splitlines()]
    epoch = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    next_start: dict[str, float] = {}
    for k, rec in enumerate(records):
        rec["device_id"] = f"dev-{(k * 7) % 3}"  # devices interleaved in file order
        start = next_start.get(rec["device_id"], 0.0) + (30.0 if k == 7 else 0.0)  # one gap
        rec["t_start"] = (epoch + dt.timedelta(seconds=start)).isoformat(timespec="milliseconds")
        next_start[rec["device_id"]] = start + rec["duration_s"]
    del records[4]["t_start"]
    missing = {**records[0], "capture_id": "missing", "file": "iq/missing.npy", "device_id": "dev-1"}
    lines = [json.dumps(r) for r in records[:5]] + ["{not json"] + [json.dumps(r) for r in records[5:]]
    index.write_text("\n".join([*lines, json.dumps(missing)]) + "\n")
